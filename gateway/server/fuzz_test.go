package server_test

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/store"
)

// FuzzLoginForm posts arbitrary bodies and content types to the login
// handler (behind the real middleware chain, CSRF token included): no
// 5xx, never a session without alice's exact password, never a redirect
// off this origin, never the password echoed.
func FuzzLoginForm(f *testing.F) {
	dir := f.TempDir()
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.SecretKeyFile = filepath.Join(dir, "secret.key")
	cfg.Store.Path = filepath.Join(dir, "authgate.db")
	cfg.Password.Argon2 = config.Argon2{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}
	cfg.TwoFactor.Mode = "off"
	cfg.TwoFactor.Issuer = "Fuzz"
	cfg.Routes = []config.Route{{Name: "p", PathPrefix: "/", Upstream: "http://127.0.0.1:9", Policy: config.PolicyTwoFactor}}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		f.Fatal(err)
	}
	srv, err := server.New(context.Background(), &cfg, zerolog.Nop(), server.Options{NoControlSocket: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	h, err := hasher().Hash("correct horse")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now().UTC()
	if err := srv.Store().CreateUser(context.Background(), store.User{Name: "alice", PasswordHash: h, Role: store.RoleUser, CreatedAt: now, UpdatedAt: now}); err != nil {
		f.Fatal(err)
	}
	// The CSRF cookie and token.
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://gw.example/.authgate/login", nil))
	m := csrfRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		f.Fatalf("no csrf token: %d", rec.Code)
	}
	tok := html.UnescapeString(m[1] + m[2])
	// The token is bound to the cookie the page came with.
	var csrfCookie string
	for _, c := range rec.Result().Cookies() {
		if c.Name == "authgate_csrf" {
			csrfCookie = c.Value
		}
	}
	if csrfCookie == "" || csrfCookie == tok {
		f.Fatalf("csrf cookie %q, token %q", csrfCookie, tok)
	}
	reference := func() string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "http://gw.example/.authgate/login", strings.NewReader("csrf_token="+tok+"&username=&password=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", "authgate_csrf="+csrfCookie)
		srv.Handler().ServeHTTP(rec, req)
		return rec.Body.String()
	}()

	form := "application/x-www-form-urlencoded"
	for _, s := range []struct{ body, ct string }{
		{"username=alice&password=correct+horse", form},
		{"username=alice&password=correct+horse&rd=%2F%2Fevil.example", form},
		{"username=alice&password=correct+horse&rd=%2Fdashboard%3Fx%3D1", form},
		{"username=+alice+&password=correct+horse", form},
		{"username=alice&password=wrong", form},
		{"username=alice&username=bob&password=correct+horse", form},
		{"username=%ff%fe&password=%00", form},
		{"username=alice&password=" + strings.Repeat("p", 2000), form},
		{"username=alice&password=correct+horse", "multipart/form-data; boundary=x"},
		{"--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nalice\r\n--x--\r\n", "multipart/form-data; boundary=x"},
		{`{"username":"alice","password":"correct horse"}`, "application/json"},
		{"username=alice;password=correct+horse", form},
		{"%zz=1&username=alice&password=correct+horse", form},
	} {
		f.Add(s.body, s.ct)
	}
	f.Fuzz(func(t *testing.T, body, ct string) {
		req := httptest.NewRequest("POST", "http://gw.example/.authgate/login", strings.NewReader("csrf_token="+tok+"&"+body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Origin", "http://gw.example")
		req.Header.Set("Cookie", "authgate_csrf="+csrfCookie)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q (%q): status %d", body, ct, rec.Code)
		}
		res := rec.Result()
		var session *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == "authgate_session" && c.MaxAge >= 0 && c.Value != "" {
				session = c
			}
		}
		// The form as net/http reads it for the handler (well-formed
		// pairs around a bad one are kept; multipart bodies too).
		preq := httptest.NewRequest("POST", "http://gw.example/", strings.NewReader("csrf_token="+tok+"&"+body))
		preq.Header.Set("Content-Type", ct)
		_ = preq.ParseMultipartForm(1 << 20)
		vals := preq.PostForm
		if session != nil {
			if strings.TrimSpace(vals.Get("username")) != "alice" || vals.Get("password") != "correct horse" {
				t.Fatalf("%q (%q): a session without alice's password", body, ct)
			}
		}
		if loc := res.Header.Get("Location"); loc != "" {
			if !(strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, `/\`)) &&
				!strings.HasPrefix(loc, "http://gw.example/") {
				t.Fatalf("%q: redirect off the origin: %q", body, loc)
			}
		}
		if pw := vals.Get("password"); len(pw) >= 16 && !strings.Contains(vals.Get("username"), pw) {
			if esc := html.EscapeString(pw); strings.Contains(rec.Body.String(), esc) && !strings.Contains(reference, esc) {
				t.Fatalf("%q: the password is echoed", body)
			}
		}
	})
}
