package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
	"github.com/authgate/authgate/middleware"
)

// The gate's share of an authenticated request (route match, session,
// user, policy, allow list; not the proxying), for each store with and
// without the session cache:
//
//	go test -run '^$' -bench Authorize -benchmem ./gateway/auth

// oneRoute is an Upstreams with one two_factor route and no forwarding.
type oneRoute struct{ rt *proxy.Route }

func (o oneRoute) Match(host, path string) (*proxy.Route, bool) { return o.rt, true }
func (o oneRoute) Forward(http.ResponseWriter, *http.Request, *proxy.Route, *proxy.Identity) {
}

func BenchmarkAuthorize(b *testing.B) {
	emb := func() store.Store {
		st, err := embedded.Open(filepath.Join(b.TempDir(), "a.db"), embedded.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	srv := redistest.Start(b, redistest.Options{})
	seq := 0
	rds := func() *redisstore.Store {
		seq++
		return redisstore.New(redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}}),
			redisstore.Options{KeyPrefix: "bench" + string(rune('a'+seq))})
	}
	cachedRedis := func() store.Store {
		r := rds()
		c := cache.New(r, cache.Options{Feed: func(ctx context.Context, h cache.Handler) { r.Invalidations(ctx, h) }}, nil)
		deadline := time.Now().Add(5 * time.Second)
		for !c.Serving() {
			if time.Now().After(deadline) {
				b.Fatal("the cache did not subscribe")
			}
			time.Sleep(5 * time.Millisecond)
		}
		return c
	}
	for _, bc := range []struct {
		name string
		open func() store.Store
	}{
		{"embedded", emb},
		{"embedded-cached", func() store.Store {
			return cache.New(emb(), cache.Options{SoleWriter: true}, nil)
		}},
		{"redis", func() store.Store { return rds() }},
		{"redis-cached", cachedRedis},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := bc.open()
			b.Cleanup(func() { _ = st.Close() })
			benchAuthorize(b, st)
		})
	}
}

func benchAuthorize(b *testing.B, st store.Store) {
	ctx := context.Background()
	now := time.Now().UTC()
	if err := st.CreateUser(ctx, store.User{Name: "alice", Role: store.RoleUser, Groups: []string{"ops"},
		TOTPSecret: []byte("sealed secret"), RecoveryCodes: []string{"a", "b", "c"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	sessions := session.New(st, session.Options{CookieName: "authgate_session", IdleTimeout: time.Hour, MaxLifetime: 12 * time.Hour}, nil, nil)
	id, _, err := sessions.Create(ctx, store.Session{User: "alice", Stage: store.StageFull, TwoFactor: true})
	if err != nil {
		b.Fatal(err)
	}
	h := New(Deps{
		Users:     st,
		Settings:  settings.New(st, settings.Values{Mode: settings.ModeRequired}, 2*time.Second, nil),
		Sessions:  sessions,
		Upstreams: oneRoute{&proxy.Route{Name: "panel", Policy: "two_factor", AllowGroups: []string{"ops"}}},
		Logger:    zerolog.Nop(),
	})
	r := httptest.NewRequest(http.MethodGet, "http://panel.example/frontend/style.css", nil)
	r.Header.Set("Cookie", "authgate_session="+id)
	r = r.WithContext(middleware.WithClient(r.Context(), middleware.Client{
		IP: netip.MustParseAddr("192.0.2.10"), Peer: netip.MustParseAddr("192.0.2.10"), Scheme: "http", Host: "panel.example",
	}))
	tg := target{Host: "panel.example", Path: "/frontend/style.css"}
	for range 3 { // warm: settings read, cache filled
		if v := h.authorize(r, tg); v.kind != verdictAllow {
			b.Fatalf("verdict %+v", v)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if v := h.authorize(r, tg); v.kind != verdictAllow {
			b.Fatalf("verdict %+v", v)
		}
	}
}
