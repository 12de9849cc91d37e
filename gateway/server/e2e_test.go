package server_test

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/totp"
)

// upstream echoes what it received as JSON.
type seen struct {
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
}

func newUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Headers: r.Header})
	}))
	t.Cleanup(up.Close)
	return up
}

type gateway struct {
	URL   string
	srv   *server.Server
	clock *testkit.Clock
	cfg   *config.Config
	http  *httptest.Server
}

type gwOpts struct {
	driver string // embedded|redis
	mode   string
	tls    bool
	routes []config.Route
	logw   io.Writer      // receives the gateway's log
	clock  *testkit.Clock // shared with other instances; nil: a new one at time.Now()
	// localhost serves the gateway at http://localhost:PORT with that as
	// public_url: the one plain-http origin browsers offer passkeys on.
	localhost bool
}

func startGateway(t *testing.T, o gwOpts) *gateway {
	t.Helper()
	return startGatewayWith(t, o, nil)
}

// startGatewayWith lets a test adjust the config before it is validated.
func startGatewayWith(t *testing.T, o gwOpts, adjust func(*config.Config)) *gateway {
	t.Helper()
	cfg := config.Defaults()
	dir := t.TempDir()
	cfg.DataDir = dir
	cfg.SecretKeyFile = filepath.Join(dir, "secret.key")
	cfg.Store.Path = filepath.Join(dir, "authgate.db")
	cfg.Store.Driver = "embedded"
	if o.driver == "redis" {
		rs := redistest.Start(t, redistest.Options{})
		cfg.Store.Driver = "redis"
		cfg.Store.Redis.Addrs = []string{rs.Addr()}
	}
	cfg.Password.Argon2 = config.Argon2{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}
	if o.mode != "" {
		cfg.TwoFactor.Mode = o.mode
	}
	var ln net.Listener
	if o.localhost {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		cfg.PublicURL = fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	}
	cfg.TwoFactor.Issuer = "Test Panel"
	cfg.Routes = o.routes
	if cfg.Routes == nil {
		cfg.Routes = []config.Route{{Name: "panel", PathPrefix: "/", Upstream: newUpstream(t).URL, Policy: config.PolicyTwoFactor,
			IdentityHeaders: config.IdentityHeaders{User: "Remote-User", Groups: "Remote-Groups"}}}
	}
	if adjust != nil {
		adjust(&cfg)
	}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	clk := o.clock
	if clk == nil {
		clk = testkit.NewClock(time.Now())
	}
	var logw io.Writer = io.Discard
	if os.Getenv("AUTHGATE_TEST_LOG") != "" {
		logw = os.Stderr
	}
	if o.logw != nil {
		logw = o.logw
	}
	srv, err := server.New(context.Background(), &cfg, zerolog.New(logw), server.Options{Now: clk.Now, NoControlSocket: true})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	var hs *httptest.Server
	switch {
	case o.tls:
		hs = httptest.NewTLSServer(srv.Handler())
	case ln != nil:
		hs = httptest.NewUnstartedServer(srv.Handler())
		_ = hs.Listener.Close()
		hs.Listener = ln
		hs.Start()
	default:
		hs = httptest.NewServer(srv.Handler())
	}
	t.Cleanup(func() { hs.Close(); _ = srv.Close() })
	u := hs.URL
	if ln != nil {
		u = cfg.PublicURL
	}
	return &gateway{URL: u, srv: srv, clock: clk, cfg: &cfg, http: hs}
}

func (g *gateway) addUser(t *testing.T, name, pw string, groups ...string) {
	t.Helper()
	h, err := password.NewHasher(password.Params{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}, nil).Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := g.srv.Store().CreateUser(context.Background(), store.User{Name: name, PasswordHash: h, Role: store.RoleUser, Groups: groups, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t   *testing.T
	c   *http.Client
	g   *gateway
	hdr http.Header
}

func (g *gateway) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	// A copy: httptest's Client() is one shared value, and every browser
	// needs its own jar.
	cc := *g.http.Client()
	c := &cc
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, c: c, g: g, hdr: http.Header{"Accept": {"text/html,application/xhtml+xml"}}}
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (b *browser) do(method, path string, form url.Values, extra http.Header) resp {
	b.t.Helper()
	req := b.request(method, path, form, extra)
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: string(data), header: res.Header}
}

// request builds a request as b sends it: its headers, then extra, and
// for a form the content type and a same-origin Origin.
func (b *browser) request(method, path string, form url.Values, extra http.Header) *http.Request {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.g.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range b.hdr {
		req.Header[k] = v
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.g.URL)
	}
	return req
}

func (b *browser) get(path string) resp { return b.do("GET", path, nil, nil) }

var csrfRE = regexp.MustCompile(`name="csrf_token"\s+value="([^"]+)"|value="([^"]+)"\s+name="csrf_token"`)

// post fetches the form page first (for the CSRF token) then submits.
func (b *browser) post(formPage, action string, form url.Values) resp {
	b.t.Helper()
	page := b.get(formPage)
	m := csrfRE.FindStringSubmatch(page.body)
	if m == nil {
		b.t.Fatalf("no csrf token on %s (status %d): %s", formPage, page.status, page.body)
	}
	tok := m[1] + m[2]
	form.Set("csrf_token", html.UnescapeString(tok))
	return b.do("POST", action, form, nil)
}

func mustStatus(t *testing.T, r resp, want int, what string) {
	t.Helper()
	if r.status != want {
		if m := formErrorRE.FindStringSubmatch(r.body); m != nil {
			t.Fatalf("%s: status %d, want %d; the page says: %s", what, r.status, want, m[1])
		}
		t.Fatalf("%s: status %d, want %d; body: %.500s", what, r.status, want, r.body)
	}
}

// formErrorRE finds the message a page shows in its error box.
var formErrorRE = regexp.MustCompile(`<div id="form-error"[^>]*>([^<]*)</div>`)

func location(r resp) string { return r.header.Get("Location") }

var secretRE = regexp.MustCompile(`secret=([A-Z2-7]+)`)

var recoveryCodeRE = regexp.MustCompile(`<code>[2-9A-Z]{5}-[2-9A-Z]{5}</code>`)

func codeFor(t *testing.T, secretB32 string, at time.Time) string {
	t.Helper()
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secretB32)
	if err != nil {
		t.Fatal(err)
	}
	c, err := totp.Code(raw, at, totp.Options{Period: 30, Digits: 6, Algorithm: "SHA1", Skew: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enroll logs alice in on a fresh gateway and sets up 2FA, returning the
// secret.
func enroll(t *testing.T, g *gateway, b *browser) string {
	t.Helper()
	r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "rd": {"/dashboard?tab=1"}})
	mustStatus(t, r, http.StatusSeeOther, "login")
	if location(r) != "/.authgate/enroll" {
		t.Fatalf("login redirected to %q, want enrolment", location(r))
	}
	page := b.get("/.authgate/enroll")
	mustStatus(t, page, http.StatusOK, "enroll page")
	for _, want := range []string{"data:image/png;base64,", `autocomplete="one-time-code"`, `inputmode="numeric"`, "Test Panel"} {
		if !strings.Contains(page.body, want) {
			t.Fatalf("enroll page lacks %q", want)
		}
	}
	m := secretRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no secret on enroll page")
	}
	// Before the code is confirmed nothing upstream is reachable.
	mustStatus(t, b.get("/dashboard"), http.StatusFound, "pending session on a route")
	r = b.post("/.authgate/enroll", "/.authgate/enroll", url.Values{"code": {"000000"}})
	mustStatus(t, r, http.StatusUnauthorized, "wrong enrolment code")
	if !strings.Contains(r.body, "The security code is invalid.") {
		t.Fatalf("wrong code message missing: %.300s", r.body)
	}
	r = b.post("/.authgate/enroll", "/.authgate/enroll", url.Values{"code": {codeFor(t, m[1], g.clock.Now())}})
	mustStatus(t, r, http.StatusSeeOther, "enrol")
	// Next: the first recovery codes, shown once, leading on to rd.
	if want := "/.authgate/account/recovery/first?rd=" + url.QueryEscape("/dashboard?tab=1"); location(r) != want {
		t.Fatalf("after enrolment went to %q, want %q", location(r), want)
	}
	codes := b.get(location(r))
	mustStatus(t, codes, http.StatusOK, "first recovery codes")
	if n := len(recoveryCodeRE.FindAllString(codes.body, -1)); n != 10 {
		t.Fatalf("first codes page shows %d codes, want 10", n)
	}
	if !strings.Contains(codes.body, `href="/dashboard?tab=1"`) {
		t.Fatalf("first codes page does not lead on to rd: %.500s", codes.body)
	}
	// Only once: a second visit goes straight on.
	again := b.get(location(r))
	mustStatus(t, again, http.StatusSeeOther, "first codes again")
	if location(again) != "/dashboard?tab=1" {
		t.Fatalf("second visit went to %q", location(again))
	}
	return m[1]
}

func TestEndToEnd(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			g := startGateway(t, gwOpts{driver: driver, mode: "required"})
			g.addUser(t, "alice", "correct horse", "ops", "web")
			b := g.browser(t)

			// 1. No session: a browser is sent to the login page with rd.
			r := b.get("/dashboard?tab=1")
			mustStatus(t, r, http.StatusFound, "anonymous")
			if location(r) != "/.authgate/login?rd="+url.QueryEscape("/dashboard?tab=1") {
				t.Fatalf("redirect to %q", location(r))
			}
			// A non-browser gets 401.
			api := b.do("GET", "/api/x", nil, http.Header{"Accept": {"application/json"}})
			mustStatus(t, api, http.StatusUnauthorized, "anonymous api")

			// 2. Wrong password and unknown user: same message.
			for _, cred := range [][2]string{{"alice", "wrong"}, {"nobody", "correct horse"}} {
				r = b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {cred[0]}, "password": {cred[1]}})
				mustStatus(t, r, http.StatusUnauthorized, "bad login "+cred[0])
				if !strings.Contains(r.body, "The username or password is incorrect.") {
					t.Fatalf("bad login message missing for %s", cred[0])
				}
			}

			// 3. Password then enrolment (mode required).
			secret := enroll(t, g, b)

			// 4. Upstream reached with identity; spoofed headers stripped;
			// the gateway cookie never sent upstream.
			r = b.do("GET", "/dashboard?tab=1", nil, http.Header{"Remote-User": {"root"}, "Remote_User": {"root"}, "X-Forwarded-User": {"root"}, "Cookie": {"panel=keep"}})
			mustStatus(t, r, http.StatusOK, "proxied")
			var s seen
			if err := json.Unmarshal([]byte(r.body), &s); err != nil {
				t.Fatalf("upstream body: %v: %s", err, r.body)
			}
			if got := s.Headers["Remote-User"]; len(got) != 1 || got[0] != "alice" {
				t.Fatalf("Remote-User upstream = %v", got)
			}
			if got := s.Headers["Remote-Groups"]; len(got) != 1 || got[0] != "ops,web" {
				t.Fatalf("Remote-Groups upstream = %v", got)
			}
			for k := range s.Headers {
				if k == "Remote_user" || k == "X-Forwarded-User" {
					t.Fatalf("spoofed header %s reached upstream", k)
				}
			}
			if ck := strings.Join(s.Headers["Cookie"], ";"); strings.Contains(ck, "authgate") || !strings.Contains(ck, "panel=keep") {
				t.Fatalf("cookies upstream = %q", ck)
			}
			if s.Path != "/dashboard" || s.Query != "tab=1" {
				t.Fatalf("upstream saw %s?%s", s.Path, s.Query)
			}

			// 5. Cookie flags on plain HTTP.
			u, _ := url.Parse(g.URL)
			var sessCookie *http.Cookie
			for _, c := range b.c.Jar.Cookies(u) {
				if c.Name == "authgate_session" {
					sessCookie = c
				}
			}
			if sessCookie == nil {
				t.Fatal("no session cookie")
			}

			// 6. Logout: GET confirms only, POST ends the session server-side.
			mustStatus(t, b.get("/.authgate/logout"), http.StatusOK, "logout page")
			mustStatus(t, b.get("/dashboard"), http.StatusOK, "still signed in after GET logout")
			r = b.post("/.authgate/logout", "/.authgate/logout", url.Values{})
			mustStatus(t, r, http.StatusSeeOther, "logout")
			if page := b.get(location(r)); !strings.Contains(page.body, "You have been signed out.") {
				t.Fatalf("no signed-out notice after logout (went to %q)", location(r))
			}
			mustStatus(t, b.get("/dashboard"), http.StatusFound, "after logout")
			// The old cookie value is dead server-side too.
			old := g.browser(t)
			old.c.Jar.SetCookies(u, []*http.Cookie{{Name: "authgate_session", Value: sessCookie.Value}})
			mustStatus(t, old.get("/dashboard"), http.StatusFound, "old cookie after logout")

			// 7. Second login: verify step; the enrolment code's step is
			// used, so the same code is refused (replay).
			r = b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "rd": {"/x"}})
			mustStatus(t, r, http.StatusSeeOther, "second login")
			if location(r) != "/.authgate/verify" {
				t.Fatalf("second login went to %q", location(r))
			}
			mustStatus(t, b.get("/x"), http.StatusFound, "half-authenticated")
			r = b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, g.clock.Now())}})
			mustStatus(t, r, http.StatusUnauthorized, "replayed code")
			if !strings.Contains(r.body, "The security code is invalid.") {
				t.Fatal("replay message missing")
			}
			g.clock.Advance(30 * time.Second)
			code := codeFor(t, secret, g.clock.Now())
			r = b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {code}})
			mustStatus(t, r, http.StatusSeeOther, "verify")
			if location(r) != "/x" {
				t.Fatalf("after verify went to %q", location(r))
			}
			mustStatus(t, b.get("/x"), http.StatusOK, "after verify")

			// 8. The same code from another browser (another login) fails.
			b2 := g.browser(t)
			r = b2.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}})
			mustStatus(t, r, http.StatusSeeOther, "login 2")
			r = b2.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {code}})
			mustStatus(t, r, http.StatusUnauthorized, "code replayed from another browser")
		})
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	g := startGateway(t, gwOpts{mode: "off", tls: true})
	g.addUser(t, "alice", "correct horse")
	b := g.browser(t)
	b.hdr.Set("Origin", g.URL)
	r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}})
	mustStatus(t, r, http.StatusSeeOther, "login")
	sc := r.header.Values("Set-Cookie")
	var found string
	for _, c := range sc {
		if strings.HasPrefix(c, "__Host-authgate_session=") {
			found = c
		}
	}
	if found == "" {
		t.Fatalf("no __Host- session cookie in %q", sc)
	}
	for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(found, attr) {
			t.Fatalf("cookie %q lacks %s", found, attr)
		}
	}
	if strings.Contains(found, "Domain=") {
		t.Fatalf("__Host- cookie with Domain: %q", found)
	}
	mustStatus(t, b.get("/"), http.StatusOK, "proxied over TLS")
}

func TestPasswordOnlySessionCannotReachTwoFactorRoute(t *testing.T) {
	up := newUpstream(t)
	g := startGateway(t, gwOpts{mode: "on", routes: []config.Route{
		{Name: "open", PathPrefix: "/public", Upstream: up.URL, Policy: config.PolicyBypass},
		{Name: "pw", PathPrefix: "/docs", Upstream: up.URL, Policy: config.PolicyPassword},
		{Name: "panel", PathPrefix: "/", Upstream: up.URL, Policy: config.PolicyTwoFactor},
	}})
	g.addUser(t, "bob", "correct horse")
	b := g.browser(t)
	mustStatus(t, b.get("/public/x"), http.StatusOK, "bypass route")
	// mode on + no 2FA set up: password alone gives a full session...
	r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"bob"}, "password": {"correct horse"}})
	mustStatus(t, r, http.StatusSeeOther, "login")
	mustStatus(t, b.get("/docs/a"), http.StatusOK, "password route")
	// ...which does not reach a two_factor route: it is sent to enrol.
	r = b.get("/admin")
	mustStatus(t, r, http.StatusFound, "two_factor route with password session")
	if !strings.HasPrefix(location(r), "/.authgate/enroll") {
		t.Fatalf("sent to %q", location(r))
	}
}

func TestUpstreamDownShowsGatewayPage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	g := startGateway(t, gwOpts{mode: "off", routes: []config.Route{{Name: "dead", PathPrefix: "/", Upstream: dead, Policy: config.PolicyPassword}}})
	g.addUser(t, "alice", "correct horse")
	b := g.browser(t)
	mustStatus(t, b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}}), http.StatusSeeOther, "login")
	r := b.get("/")
	mustStatus(t, r, http.StatusBadGateway, "dead upstream")
	if strings.Contains(r.body, "127.0.0.1") || strings.Contains(r.body, "connection refused") {
		t.Fatalf("502 page leaks internals: %s", r.body)
	}
}
