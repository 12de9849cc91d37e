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

	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/stream"
	"github.com/authgate/authgate/middleware"
)

// What tracking a forwarded request (streams.go) adds to the gate's
// share of an ordinary short request: ServeHTTP with and without Streams, on
// the cached embedded store, forwarding to nothing:
//
//	go test -run '^$' -bench GateStreams -benchmem ./gateway/auth
func BenchmarkGateStreams(b *testing.B) {
	for _, bc := range []struct {
		name    string
		streams Streams
	}{
		{"untracked", nil},
		{"tracked", stream.New(stream.Options{Logger: zerolog.Nop()})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h, r := gateBench(b, bc.streams)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// gateBench is a Gate on a fresh cached embedded store with alice
// signed in, and her request to a two_factor route (a browser's headers).
func gateBench(b *testing.B, streams Streams) (*Gate, *http.Request) {
	b.Helper()
	ctx := context.Background()
	raw, err := embedded.Open(filepath.Join(b.TempDir(), "a.db"), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	st := cache.New(raw, cache.Options{SoleWriter: true}, nil)
	b.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC()
	if err := st.CreateUser(ctx, store.User{Name: "alice", Role: store.RoleUser, Groups: []string{"ops"},
		TOTPSecret: []byte("sealed secret"), CreatedAt: now, UpdatedAt: now}); err != nil {
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
		Streams:   streams,
		Untouched: sessions.WithoutTouch(),
		Logger:    zerolog.Nop(),
	})
	r := httptest.NewRequest(http.MethodGet, "http://panel.example/frontend/style.css?v=3", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	r.Header.Set("Accept", "text/css,*/*;q=0.1")
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	r.Header.Set("Cookie", "authgate_session="+id)
	r = r.WithContext(middleware.WithClient(r.Context(), middleware.Client{
		IP: netip.MustParseAddr("192.0.2.10"), Peer: netip.MustParseAddr("192.0.2.10"), Scheme: "http", Host: "panel.example",
	}))
	return h, r
}
