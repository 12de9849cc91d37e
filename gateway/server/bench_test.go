package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
)

// The whole gateway on the hot path: a signed-in browser's GET through
// every middleware, the gate and the proxy to a real loopback upstream
// answering 1 KiB, next to a bare httputil.ReverseProxy doing the same
// forwarding (the floor authgate is measured against):
//
//	go test -run '^$' -bench Hot -benchmem ./gateway/server
var hotBody = strings.Repeat("x", 1024)

func hotUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		_, _ = io.WriteString(w, hotBody)
	}))
	b.Cleanup(up.Close)
	return up
}

// hotGateway starts a gateway on driver with one two_factor route and
// returns its handler and the cookie of a complete session.
func hotGateway(b *testing.B, driver string) (http.Handler, *http.Cookie) {
	b.Helper()
	cfg := config.Defaults()
	dir := b.TempDir()
	cfg.DataDir = dir
	cfg.SecretKeyFile = filepath.Join(dir, "secret.key")
	cfg.Store.Path = filepath.Join(dir, "authgate.db")
	cfg.Store.Driver = "embedded"
	if driver == "redis" {
		rs := redistest.Start(b, redistest.Options{})
		cfg.Store.Driver = "redis"
		cfg.Store.Redis.Addrs = []string{rs.Addr()}
	}
	cfg.TwoFactor.Mode = "on"
	cfg.Routes = []config.Route{{Name: "panel", PathPrefix: "/", Upstream: hotUpstream(b).URL, Policy: config.PolicyTwoFactor,
		IdentityHeaders: config.IdentityHeaders{User: "Remote-User", Groups: "Remote-Groups"}}}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(context.Background(), &cfg, zerolog.New(io.Discard), server.Options{NoControlSocket: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	ctx := context.Background()
	now := time.Now().UTC()
	if err := srv.Store().CreateUser(ctx, store.User{Name: "alice", PasswordHash: "x", Role: store.RoleUser, Groups: []string{"ops"},
		TOTPSecret: []byte("sealed"), CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	id := strings.Repeat("A", 43)
	if err := srv.Store().PutSession(ctx, store.Session{IDHash: session.HashID(id), User: "alice", Stage: store.StageFull,
		TwoFactor: true, TwoFactorAt: now, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}, time.Hour); err != nil {
		b.Fatal(err)
	}
	return srv.Handler(), &http.Cookie{Name: cfg.Session.CookieName, Value: id}
}

func hotRequest(c *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://panel.example/frontend/style.css?v=3", nil)
	r.RemoteAddr = "192.0.2.10:51234"
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	r.Header.Set("Accept", "text/css,*/*;q=0.1")
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

func runHot(b *testing.B, h http.Handler, c *http.Cookie) {
	b.Helper()
	if w := serveHot(h, c); w.Code != http.StatusOK || w.Body.String() != hotBody {
		b.Fatalf("status %d, %d bytes: not the upstream's answer", w.Code, w.Body.Len())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if w := serveHot(h, c); w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func serveHot(h http.Handler, c *http.Cookie) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hotRequest(c))
	return w
}

func BenchmarkHotPath(b *testing.B) {
	for _, driver := range []string{"embedded", "redis"} {
		b.Run(driver, func(b *testing.B) {
			h, c := hotGateway(b, driver)
			runHot(b, h, c)
		})
	}
	b.Run("bare-reverseproxy", func(b *testing.B) {
		u, err := url.Parse(hotUpstream(b).URL)
		if err != nil {
			b.Fatal(err)
		}
		rp := &httputil.ReverseProxy{
			Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
			Transport:     &http.Transport{MaxIdleConnsPerHost: 1024},
			FlushInterval: -1,
		}
		runHot(b, rp, nil)
	})
}
