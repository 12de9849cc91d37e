package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"html"
	"io"
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

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/secretbox"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
	"github.com/authgate/authgate/gateway/users"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// The real parts satisfy what the admin area declares.
var (
	_ Users     = (*users.Service)(nil)
	_ Upstreams = (*proxy.Proxy)(nil)
	_ Hasher    = (*password.Hasher)(nil)
	_ Pages     = (*web.Renderer)(nil)
	_ Sessions  = (*session.Manager)(nil)
	_ Box       = (*secretbox.Box)(nil)
)

// newClock is a settable clock close to the wall clock (Redis expires
// sessions in real time).
func newClock() *testkit.Clock { return testkit.NewClock(time.Now().UTC().Truncate(time.Second)) }

type opener func(t testing.TB, c *testkit.Clock) store.Store

func openEmbedded(t testing.TB, c *testkit.Clock) store.Store {
	t.Helper()
	return openEmbeddedIn(t, t.TempDir(), c)
}

func openEmbeddedIn(t testing.TB, dir string, c *testkit.Clock) store.Store {
	t.Helper()
	st, err := embedded.Open(filepath.Join(dir, "authgate.db"), embedded.Options{Now: c.Now})
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func openRedis(t testing.TB, _ *testkit.Clock) store.Store {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	st := redisstore.New(srv.Client(t), redisstore.Options{KeyPrefix: "admintest"})
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// backends runs fn on every store backend.
func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range []struct {
		name string
		open opener
	}{{"embedded", openEmbedded}, {"redis", openRedis}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, b.open))
		})
	}
}

// env is a running admin area over a real store, settings, audit
// recorder, renderer, CSRF middleware and proxy.
type env struct {
	st       store.Store
	clk      *testkit.Clock
	set      *settings.Source
	svc      *users.Service
	proxy    *proxy.Proxy
	upstream *httptest.Server
	srv      *httptest.Server
	hasher   *password.Hasher
	sessMgr  *session.Manager
	box      *secretbox.Box
	logs     *testkit.SyncBuffer
	loadedAt time.Time
	caFile   string
}

const (
	sessionCookie = "test_session"
	clientIP      = "192.0.2.10"
	configPath    = "/etc/authgate/authgate.yaml"
	oldPassword   = "old-password-123"
)

func newEnv(t testing.TB, open opener) *env {
	t.Helper()
	e := &env{clk: newClock(), logs: &testkit.SyncBuffer{}}
	e.st = open(t, e.clk)
	log := zerolog.New(e.logs)
	rec := audit.New(e.st, log, e.clk.Now)
	e.set = settings.New(e.st, settings.Values{Mode: settings.ModeOn}, time.Hour, e.clk.Now)
	e.svc = users.NewService(e.st, e.set, rec, "Legacy Admin", e.clk.Now)
	e.hasher = password.NewHasher(password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, nil)

	e.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panel/broken" {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(e.upstream.Close)
	up, _ := url.Parse(e.upstream.URL)
	tlsUp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure ok")
	}))
	t.Cleanup(tlsUp.Close)
	e.caFile = filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsUp.Certificate().Raw})
	if err := os.WriteFile(e.caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	secureUp, _ := url.Parse(tlsUp.URL)
	var err error
	e.proxy, err = proxy.New(proxy.Options{Routes: []proxy.Route{
		{Name: "panel", Host: "panel.example.com", PathPrefix: "/panel", Upstream: up, Policy: "two_factor",
			AllowUsers: []string{"root"}, AllowGroups: []string{"ops", "<b>wheel</b>"}, PreserveHost: true},
		{Name: "secure-app", PathPrefix: "/app", Upstream: secureUp,
			CAFile: e.caFile, ServerName: "example.com"},
	}, Logger: log, Now: e.clk.Now})
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	t.Cleanup(e.proxy.Close)

	pages, err := templates.ParsePages()
	if err != nil {
		t.Fatalf("ParsePages: %v", err)
	}
	rd, err := web.NewRenderer(pages)
	if err != nil {
		t.Fatalf("NewRenderer: %v", err)
	}
	e.sessMgr, e.box = newHold(t, e.st, e.clk)
	e.loadedAt = e.clk.Now().Add(-time.Hour)
	h := New(Deps{Users: e.svc, Bans: e.svc, Upstreams: e.proxy, Hasher: e.hasher, Pages: rd, Now: e.clk.Now,
		Sessions: e.sessMgr, Box: e.box},
		Options{ConfigPath: configPath, ConfigLoadedAt: e.loadedAt})
	e.srv = httptest.NewServer(middleware.Logger(log)(withCSRF(requireUser(e.st)(h.Handler()))))
	t.Cleanup(e.srv.Close)
	return e
}

// newHold returns the session manager and box that hold a reset's
// temporary password in the admin's session (the sessions login makes
// live 12 hours).
func newHold(t testing.TB, st store.Store, c *testkit.Clock) (*session.Manager, *secretbox.Box) {
	t.Helper()
	key, err := secretbox.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	m := session.New(st, session.Options{CookieName: sessionCookie, IdleTimeout: 12 * time.Hour, MaxLifetime: 12 * time.Hour}, c.Now, rand.Reader)
	return m, box
}

// requireUser stands in for auth's RequireUser: a complete session from
// the store (cookie test_session holds the raw id), its user, the audit
// actor; anyone else goes to the login page.
func requireUser(st store.Store) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ck, err := r.Cookie(sessionCookie)
			if err != nil {
				http.Redirect(w, r, "/.authgate/login", http.StatusSeeOther)
				return
			}
			s, err := st.GetSession(r.Context(), idHash(ck.Value))
			if err != nil || s.Stage != store.StageFull {
				http.Redirect(w, r, "/.authgate/login", http.StatusSeeOther)
				return
			}
			u, err := st.GetUser(r.Context(), s.User)
			if err != nil {
				http.Redirect(w, r, "/.authgate/login", http.StatusSeeOther)
				return
			}
			// The mode as auth's RequireUser would judge it: the stored
			// setting, "on" (the default) when none was set.
			mode, err := st.GetSetting(r.Context(), settings.KeyMode)
			if err != nil {
				mode = settings.ModeOn
			}
			ctx := auth.WithCurrent(r.Context(), auth.Current{Session: s, User: u, Mode: mode})
			ctx = audit.WithActor(ctx, u.Name, clientIP)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

func idHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// user describes an account created directly in the store.
type user struct {
	name   string
	role   string
	groups []string
	totp   bool
	// passkeys is how many passkeys the user has (see passkeysFor).
	passkeys int
}

func (e *env) addUser(t testing.TB, u user) {
	t.Helper()
	hash, err := e.hasher.Hash(oldPassword)
	if err != nil {
		t.Fatal(err)
	}
	e.addUserHash(t, u, hash)
}

func (e *env) addUserHash(t testing.TB, u user, hash string) {
	t.Helper()
	if u.role == "" {
		u.role = store.RoleUser
	}
	now := e.clk.Now()
	su := store.User{Name: u.name, PasswordHash: hash, Role: u.role, Groups: u.groups, CreatedAt: now, UpdatedAt: now}
	if u.totp {
		su.TOTPSecret = []byte("sealed-secret-of-" + u.name)
		su.TOTPEnrolledAt = now.Add(-48 * time.Hour)
		su.TOTPLastUsedAt = now.Add(-time.Hour)
		for i := range 10 {
			su.RecoveryCodes = append(su.RecoveryCodes, fmt.Sprintf("hash-%s-%d", u.name, i))
		}
		su.RecoveryCodesAt = su.TOTPEnrolledAt
	}
	if u.passkeys > 0 {
		su.PasskeyUserID = []byte("handle-of-" + u.name)
		su.Passkeys = passkeysFor(u.name, u.passkeys, now)
	}
	if err := e.st.CreateUser(context.Background(), su); err != nil {
		t.Fatalf("create user %q: %v", u.name, err)
	}
}

// passkeysFor returns n passkeys of user name: the first a passkey
// (discoverable) used an hour before now, the others security keys never
// used.
func passkeysFor(name string, n int, now time.Time) []store.Passkey {
	var out []store.Passkey
	for i := range n {
		p := store.Passkey{
			ID:        []byte(fmt.Sprintf("credential-%s-%d", name, i)),
			Name:      fmt.Sprintf("Key %d", i+1),
			PublicKey: []byte(fmt.Sprintf("public-key-%s-%d", name, i)),
			CreatedAt: now.Add(-time.Duration(i+1) * 24 * time.Hour),
		}
		if i == 0 {
			p.Name, p.Discoverable, p.LastUsedAt = "Phone", true, now.Add(-time.Hour)
		}
		out = append(out, p)
	}
	return out
}

func (e *env) getUser(t testing.TB, name string) store.User {
	t.Helper()
	u, err := e.st.GetUser(context.Background(), name)
	if err != nil {
		t.Fatalf("get user %q: %v", name, err)
	}
	return u
}

func (e *env) sessions(t testing.TB, name string) int {
	t.Helper()
	ss, err := e.st.ListUserSessions(context.Background(), name)
	if err != nil {
		t.Fatalf("list sessions of %q: %v", name, err)
	}
	return len(ss)
}

// agent is one browser signed in as a user.
type agent struct {
	e      *env
	name   string
	client *http.Client
}

// login opens a complete session for name whose second factor passed at
// twoFactorAt (zero: none) and returns a browser holding it.
func (e *env) login(t testing.TB, name string, twoFactorAt time.Time) *agent {
	t.Helper()
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	id := hex.EncodeToString(raw)
	now := e.clk.Now()
	s := store.Session{
		IDHash: idHash(id), User: name, Stage: store.StageFull,
		TwoFactor: !twoFactorAt.IsZero(), TwoFactorAt: twoFactorAt,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour),
		IP: clientIP, UserAgent: "test",
	}
	if err := e.st.PutSession(context.Background(), s, 12*time.Hour); err != nil {
		t.Fatalf("put session: %v", err)
	}
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(e.srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: id, Path: "/"}})
	a := &agent{e: e, name: name, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	return a
}

// admin creates an admin with 2FA and a fresh second factor.
func (e *env) admin(t testing.TB, name string) *agent {
	t.Helper()
	e.addUser(t, user{name: name, role: store.RoleAdmin, totp: true})
	return e.login(t, name, e.clk.Now())
}

type response struct {
	status   int
	location string
	body     string
}

func (a *agent) do(t testing.TB, req *http.Request) response {
	t.Helper()
	res, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, location: res.Header.Get("Location"), body: string(b)}
}

func (a *agent) get(t testing.TB, path string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.do(t, req)
}

// csrfTokenPath answers with the CSRF token of the asking browser's
// session (test-only).
const csrfTokenPath = "/.authgate/test/csrf-token"

// withCSRF puts the CSRF middleware in front of h as the gateway does
// (tokens bound to the session cookie), plus csrfTokenPath.
func withCSRF(h http.Handler) http.Handler {
	csrf := middleware.NewCSRF(middleware.CSRFOptions{SessionCookie: func(*http.Request) string { return sessionCookie }})
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET "+csrfTokenPath, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, middleware.CSRFToken(r))
	})
	return csrf.Middleware()(mux)
}

// csrfToken returns the token the browser's pages carry now: the value
// every form sends back.
func (a *agent) csrfToken(t testing.TB) string {
	t.Helper()
	r := a.get(t, csrfTokenPath)
	if r.status != http.StatusOK || r.body == "" {
		t.Fatalf("no CSRF token: %d %q", r.status, r.body)
	}
	return r.body
}

// post submits a form with the CSRF token, as the page's form would.
func (a *agent) post(t testing.TB, path string, form url.Values) response {
	t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = append([]string(nil), v...)
	}
	f.Set("csrf_token", a.csrfToken(t))
	return a.postRaw(t, path, f)
}

func (a *agent) postRaw(t testing.TB, path string, form url.Values) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.do(t, req)
}

// follow GETs a redirect's target.
func (a *agent) follow(t testing.TB, r response) response {
	t.Helper()
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/") {
		t.Fatalf("want a 303 to a local page, got %d %q\n%s", r.status, r.location, r.body)
	}
	return a.get(t, r.location)
}

// auditEvents returns the stored events of both trails, newest first.
func (e *env) auditEvents(t testing.TB) []store.AuditEvent {
	t.Helper()
	evs, err := e.svc.Audit(context.Background(), users.AuditAll, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// hasEvent reports whether an event with action, target and actor exists.
func (e *env) hasEvent(t testing.TB, action, target, actor string) bool {
	t.Helper()
	for _, ev := range e.auditEvents(t) {
		if ev.Action == action && ev.Target == target && ev.Actor == actor {
			return true
		}
	}
	return false
}

var (
	msgRe      = regexp.MustCompile(`(?s)<div id="form-(error|notice)" class="msg (?:error|notice)" role="(?:alert|status)">(.*?)</div>`)
	rowNameRe  = regexp.MustCompile(`<th scope="row" class="name">([^<]*)`)
	hiddenRe   = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	tempPassRe = regexp.MustCompile(`<code class="key" id="temp-password" aria-label="Temporary password">([^<]+)</code>`)
)

// message returns the page's error or notice text (unescaped).
func message(body, kind string) string {
	for _, m := range msgRe.FindAllStringSubmatch(body, -1) {
		if m[1] == kind {
			return html.UnescapeString(m[2])
		}
	}
	return ""
}

// rowNames returns the user names of the users table, in order.
func rowNames(body string) []string {
	var out []string
	for _, m := range rowNameRe.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(strings.TrimSpace(m[1])))
	}
	return out
}

// hidden returns the values of the page's hidden fields named name.
func hidden(body, name string) []string {
	var out []string
	for _, m := range hiddenRe.FindAllStringSubmatch(body, -1) {
		if m[1] == name {
			out = append(out, html.UnescapeString(m[2]))
		}
	}
	return out
}

func zerologNop() zerolog.Logger { return zerolog.Nop() }

func cryptoReader() io.Reader { return rand.Reader }

func rendererFor(t testing.TB) *web.Renderer {
	t.Helper()
	pages, err := templates.ParsePages()
	if err != nil {
		t.Fatal(err)
	}
	rd, err := web.NewRenderer(pages)
	if err != nil {
		t.Fatal(err)
	}
	return rd
}
