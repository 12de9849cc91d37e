package account_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/account"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/regulation"
	"github.com/authgate/authgate/gateway/secretbox"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
	"github.com/authgate/authgate/gateway/totp"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

const (
	cookieName = "authgate_session"
	issuer     = "Test Panel"
	// goodPassword is every test user's password.
	goodPassword = "correct horse battery"
)

type backend struct {
	name string
	open func(t *testing.T, now func() time.Time) store.Store
}

var redisPrefix atomic.Int64

func backends() []backend {
	return []backend{
		{"embedded", func(t *testing.T, now func() time.Time) store.Store {
			st, err := embedded.Open(filepath.Join(t.TempDir(), "a.db"), embedded.Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		}},
		{"redis", func(t *testing.T, _ func() time.Time) store.Store {
			srv := redistest.Start(t, redistest.Options{})
			st := redisstore.New(srv.Client(t), redisstore.Options{KeyPrefix: fmt.Sprintf("acct%d", redisPrefix.Add(1))})
			return st
		}},
	}
}

// eachBackend runs fn on a fresh environment per store backend.
func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			fn(t, newEnv(t, b))
		})
	}
}

// env is a gateway's account area with real parts: store, sessions,
// factor, secretbox, password hashing, settings, audit, templates, CSRF
// and auth's RequireUser, behind an httptest server.
type env struct {
	t     *testing.T
	st    store.Store
	clock *testkit.Clock
	mgr   *session.Manager
	totp  *factor.TOTP
	rec   *factor.Recovery
	box   *secretbox.Box
	pw    *password.Hasher
	src   *settings.Source
	srv   *httptest.Server
}

func newEnv(t *testing.T, b backend) *env {
	t.Helper()
	clk := testkit.NewClock(time.Now().UTC().Truncate(time.Second))
	st := b.open(t, clk.Now)
	box, err := secretbox.New(secretbox.Key{7, 7, 7})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t: t, st: st, clock: clk, box: box,
		mgr:  session.New(st, session.Options{CookieName: "authgate_session", IdleTimeout: time.Hour, MaxLifetime: 12 * time.Hour}, clk.Now, nil),
		totp: factor.NewTOTP(box, st, totp.DefaultOptions(), clk.Now, nil),
		rec:  factor.NewRecovery([]byte("recovery key"), nil),
		pw:   password.NewHasher(password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, nil),
		// maxAge 1 ns: every request sees the latest setting.
		src: settings.New(st, settings.Values{Mode: settings.ModeOn}, time.Nanosecond, clk.Now),
	}
	pages, err := templates.ParsePages()
	if err != nil {
		t.Fatal(err)
	}
	renderer, err := web.NewRenderer(pages)
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.New(st, zerolog.Nop(), clk.Now)
	reg := regulation.New(st, rec, regulation.Options{Window: 15 * time.Minute, Ban: 15 * time.Minute}, clk.Now)
	ah := auth.New(auth.Deps{Users: st, Settings: e.src, Sessions: e.mgr, Errors: renderer, Logger: zerolog.Nop()})
	acct := account.New(account.Deps{
		Users: st, Sessions: st, Regulator: reg, Settings: e.src, SessionManager: e.mgr,
		TOTP: e.totp, Recovery: e.rec, Box: box, Passwords: password.NewLimited(e.pw, password.NewLimiter(2, -1, 0)), Audit: rec, Pages: renderer,
		Logger: zerolog.Nop(), Now: clk.Now,
	}, account.Options{DefaultIssuer: issuer})
	// Form tokens are bound to the session cookie, as in the gateway.
	csrf := middleware.NewCSRF(middleware.CSRFOptions{
		SessionCookie: func(*http.Request) string { return e.mgr.CookieName(false) },
		Reject: func(w http.ResponseWriter, r *http.Request) {
			renderer.RenderError(w, r, web.Errorf(http.StatusForbidden, "Your form expired. Go back, reload the page and try again.", nil))
		},
	})
	mux := http.NewServeMux()
	protected := ah.RequireUser(acct.Handler())
	mux.Handle("/.authgate/account", protected)
	mux.Handle("/.authgate/account/", protected)
	// What a page rendered now would put in its forms (browser.csrfToken).
	mux.HandleFunc("GET "+csrfTokenPath, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, middleware.CSRFToken(r))
	})
	e.srv = httptest.NewServer(middleware.SecurityHeaders()(middleware.MaxBody(64 << 10)(csrf.Middleware()(mux))))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) ctx() context.Context { return context.Background() }

// addUser creates a user with goodPassword.
func (e *env) addUser(name, role string) store.User {
	e.t.Helper()
	hash, err := e.pw.Hash(goodPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	u := store.User{Name: name, PasswordHash: hash, Role: role, CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	if err := e.st.CreateUser(e.ctx(), u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// enrol gives the user a TOTP secret (and, if codes > 0, that many
// recovery codes) directly in the store, as an earlier set-up would have.
// It returns the raw secret and the plaintext codes.
func (e *env) enrol(name string, codes int) ([]byte, []string) {
	e.t.Helper()
	sealed, err := e.totp.NewSecret(name)
	if err != nil {
		e.t.Fatal(err)
	}
	plain, hashes, err := e.rec.Generate(name)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.UpdateUser(e.ctx(), name, func(u *store.User) error {
		u.TOTPSecret = sealed
		u.TOTPEnrolledAt = e.clock.Now()
		u.RecoveryCodes = hashes[:codes]
		if codes > 0 {
			u.RecoveryCodesAt = e.clock.Now()
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	raw, err := e.box.Open(sealed, []byte(name))
	if err != nil {
		e.t.Fatal(err)
	}
	return raw, plain[:codes]
}

func (e *env) user(name string) store.User {
	e.t.Helper()
	u, err := e.st.GetUser(e.ctx(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// code returns the current code of raw and moves the clock one period on,
// so the next code is a fresh step (codes are single use per user).
func (e *env) code(raw []byte) string {
	e.t.Helper()
	c, err := totp.Code(raw, e.clock.Now(), totp.DefaultOptions())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) tick() { e.clock.Advance(30 * time.Second) }

func (e *env) setMode(mode string) {
	e.t.Helper()
	if err := e.src.SetMode(e.ctx(), mode); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) sessions(name string) []store.Session {
	e.t.Helper()
	list, err := e.st.ListUserSessions(e.ctx(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func (e *env) audit() []store.AuditEvent {
	e.t.Helper()
	evs, err := e.st.ListAudit(e.ctx(), store.AuditChanges, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func (e *env) hasAudit(action, target string) bool {
	for _, ev := range e.audit() {
		if ev.Action == action && ev.Target == target && ev.Actor == target {
			return true
		}
	}
	return false
}

// browser is one signed-in browser: a cookie jar with a complete session.
type browser struct {
	e    *env
	c    *http.Client
	jar  *cookiejar.Jar
	base *url.URL
	// idHash is the session's store key when signed in.
	idHash string
}

// signIn starts a complete session for name, as the login flow would,
// and returns a browser carrying its cookie.
func (e *env) signIn(name, ip, ua string) *browser {
	e.t.Helper()
	u := e.user(name)
	vals, err := e.src.Current(e.ctx())
	if err != nil {
		e.t.Fatal(err)
	}
	// As a sign-in would: under the user's epoch and the current mode.
	id, s, err := e.mgr.Create(e.ctx(), store.Session{User: name, Stage: store.StageFull, TwoFactor: u.HasTOTP(), IP: ip, UserAgent: ua,
		UserEpoch: u.AuthEpoch, Mode: vals.Mode})
	if err != nil {
		e.t.Fatal(err)
	}
	b := e.anonymous()
	b.jar.SetCookies(b.base, []*http.Cookie{{Name: cookieName, Value: id, Path: "/"}})
	b.idHash = s.IDHash
	return b
}

func (e *env) anonymous() *browser {
	e.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	base, _ := url.Parse(e.srv.URL)
	return &browser{e: e, jar: jar, base: base, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (r response) location() string { return r.header.Get("Location") }

func (b *browser) do(req *http.Request) response {
	b.e.t.Helper()
	req.Header.Set("Accept", "text/html")
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	out := response{status: res.StatusCode, header: res.Header, body: string(body)}
	if strings.Contains(strings.ToLower(out.body), "<script") {
		b.e.t.Errorf("%s %s: response contains a script element", req.Method, req.URL.Path)
	}
	return out
}

func (b *browser) get(path string) response {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

// csrfTokenPath answers with the CSRF token of the asking browser's
// session (test-only).
const csrfTokenPath = "/.authgate/test/csrf-token"

// csrfToken returns the token the browser's pages carry now (bound to its
// session): the value every form sends back.
func (b *browser) csrfToken() string {
	b.e.t.Helper()
	r := b.get(csrfTokenPath)
	if r.status != http.StatusOK || r.body == "" {
		b.e.t.Fatalf("no CSRF token: %d %q", r.status, r.body)
	}
	return r.body
}

// post submits a form with the CSRF token, as the page's form would.
func (b *browser) post(path string, form url.Values) response {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", b.csrfToken())
	return b.postRaw(path, form)
}

func (b *browser) postRaw(path string, form url.Values) response {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// cookieID is the session id the browser now holds.
func (b *browser) cookieID() string {
	for _, c := range b.jar.Cookies(b.base) {
		if c.Name == cookieName {
			return c.Value
		}
	}
	return ""
}

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; location %q; body:\n%s", r.status, status, r.location(), r.body)
	}
}

func wantBody(t *testing.T, r response, frags ...string) {
	t.Helper()
	for _, f := range frags {
		if !strings.Contains(r.body, f) {
			t.Errorf("page lacks %q; body:\n%s", f, r.body)
		}
	}
}

func wantNotBody(t *testing.T, r response, frags ...string) {
	t.Helper()
	for _, f := range frags {
		if strings.Contains(r.body, f) {
			t.Errorf("page unexpectedly contains %q", f)
		}
	}
}

var (
	keyRe  = regexp.MustCompile(`id="totp-key"[^>]*>([A-Z2-7 ]+)<`)
	codeRe = regexp.MustCompile(`<li><code>([A-Z0-9]{5}-[A-Z0-9]{5})</code></li>`)
)

// pageKey decodes the set-up key shown on the page, as a user typing it
// into an app would.
func pageKey(t *testing.T, r response) []byte {
	t.Helper()
	m := keyRe.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no key on the page:\n%s", r.body)
	}
	raw, err := totp.DecodeSecret(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func pageCodes(t *testing.T, r response) []string {
	t.Helper()
	var codes []string
	for _, m := range codeRe.FindAllStringSubmatch(r.body, -1) {
		codes = append(codes, m[1])
	}
	return codes
}
