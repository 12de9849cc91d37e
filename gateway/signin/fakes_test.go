package signin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/regulation"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/totp"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// In-memory fakes of the interfaces the sign-in pages declare. The
// session loader is the real auth.Gate over the same fakes.

type fakeUsers struct {
	mu  sync.Mutex
	m   map[string]store.User
	err error
}

func (f *fakeUsers) GetUser(_ context.Context, name string) (store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return store.User{}, f.err
	}
	u, ok := f.m[name]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	return u.Clone(), nil
}

func (f *fakeUsers) UpdateUser(_ context.Context, name string, fn func(*store.User) error) (store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.m[name]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	u = u.Clone()
	if err := fn(&u); err != nil {
		return store.User{}, err
	}
	f.m[name] = u
	return u.Clone(), nil
}

func (f *fakeUsers) get(name string) store.User {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[name].Clone()
}

type fakeSettings struct{ mode string }

func (f *fakeSettings) Current(context.Context) (settings.Values, error) {
	return settings.Values{Mode: f.mode, Issuer: "Test Gateway"}, nil
}

// fakeSessions keeps sessions by id; the cookie is "sid" (over http),
// the id hash "hash-<id>".
type fakeSessions struct {
	mu  sync.Mutex
	m   map[string]store.Session
	seq int
	now func() time.Time
}

func (f *fakeSessions) FromRequest(r *http.Request, secure bool) (string, store.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := r.Cookie(sessionCookie(secure))
	if err != nil {
		return "", store.Session{}, session.ErrNoSession
	}
	s, ok := f.m[c.Value]
	if !ok {
		return "", store.Session{}, session.ErrNoSession
	}
	return c.Value, s, nil
}

func sessionCookie(secure bool) string {
	if secure {
		return "__Host-sid"
	}
	return "sid"
}

func (f *fakeSessions) create(tmpl store.Session) (string, store.Session) {
	f.seq++
	id := fmt.Sprintf("s%d", f.seq)
	tmpl.IDHash = "hash-" + id
	tmpl.CreatedAt = f.now()
	tmpl.ExpiresAt = tmpl.CreatedAt.Add(time.Hour)
	f.m[id] = tmpl
	return id, tmpl
}

func (f *fakeSessions) Create(_ context.Context, tmpl store.Session) (string, store.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, s := f.create(tmpl)
	return id, s, nil
}

// Move follows session.Manager.Move: take, commit, create; the same
// transition check.
func (f *fakeSessions) Move(ctx context.Context, old store.Session, commit func(context.Context) error, upd func(*store.Session)) (string, store.Session, error) {
	f.mu.Lock()
	id := strings.TrimPrefix(old.IDHash, "hash-")
	cur, ok := f.m[id]
	delete(f.m, id)
	f.mu.Unlock()
	if !ok || cur.Stage != old.Stage || cur.TwoFactor != old.TwoFactor || cur.UserEpoch != old.UserEpoch {
		return "", store.Session{}, session.ErrNoSession
	}
	if commit != nil {
		if err := commit(ctx); err != nil {
			return "", store.Session{}, err
		}
	}
	tmpl := old
	upd(&tmpl)
	if err := session.CheckTransition(old, tmpl); err != nil {
		return "", store.Session{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	nid, s := f.create(tmpl)
	return nid, s, nil
}

func (f *fakeSessions) Save(_ context.Context, s store.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := strings.TrimPrefix(s.IDHash, "hash-")
	if _, ok := f.m[id]; !ok {
		return session.ErrNoSession
	}
	f.m[id] = s
	return nil
}

func (f *fakeSessions) Destroy(_ context.Context, idHash string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, strings.TrimPrefix(idHash, "hash-"))
	return nil
}

func (f *fakeSessions) SetCookie(w http.ResponseWriter, id string, _ store.Session, secure bool) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie(secure), Value: id, Path: "/", HttpOnly: true})
}

func (f *fakeSessions) ClearCookie(w http.ResponseWriter, secure bool) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie(secure), Path: "/", MaxAge: -1})
}

func (f *fakeSessions) get(id string) (store.Session, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.m[id]
	return s, ok
}

func (f *fakeSessions) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// fakePasswords: a hash is "hash:" + the password.
type fakePasswords struct {
	mu      sync.Mutex
	dummies int
}

func (f *fakePasswords) Verify(encoded, pw string) (bool, error) {
	if !strings.HasPrefix(encoded, "hash:") {
		return false, errors.New("unusable hash")
	}
	return encoded == "hash:"+pw, nil
}

func (f *fakePasswords) VerifyDummy(string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dummies++
}

func (f *fakePasswords) NeedsRehash(string) bool { return false }

func (f *fakePasswords) Hash(pw string) (string, error) { return "hash:" + pw, nil }

// fakeCodes accepts goodCode for a secret "sealed-<user>", once per
// user (then ErrReplayed); driftedCode is ErrDrifted, anything else
// ErrInvalid.
type fakeCodes struct {
	mu   sync.Mutex
	used map[string]bool
}

const (
	goodCode    = "123456"
	driftedCode = "654321"
)

func (f *fakeCodes) Check(_ context.Context, user string, sealed []byte, _ int, code string) (factor.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case string(sealed) != "sealed-"+user:
		return factor.Result{}, fmt.Errorf("factor: open secret: wrong user")
	case code == driftedCode:
		return factor.Result{}, factor.ErrDrifted
	case code != goodCode:
		return factor.Result{}, factor.ErrInvalid
	case f.used[user]:
		return factor.Result{}, factor.ErrReplayed
	}
	if f.used == nil {
		f.used = map[string]bool{}
	}
	f.used[user] = true
	return factor.Result{Step: 42}, nil
}

func (f *fakeCodes) NewSecret(user string) ([]byte, error) { return []byte("sealed-" + user), nil }

func (f *fakeCodes) Describe(user, issuer string, sealed []byte) (factor.Enrolment, error) {
	return factor.Enrolment{Issuer: issuer, KeyURL: "otpauth://totp/" + url.PathEscape(issuer+":"+user), KeyGrouped: "ABCD EFGH",
		QRDataURI: "data:image/png;base64,AAAA"}, nil
}

func (f *fakeCodes) Options() totp.Options { return totp.DefaultOptions() }

// fakeRecovery: a stored hash is "h:" + the code.
type fakeRecovery struct{}

func (fakeRecovery) Match(_ string, hashes []string, code string) int {
	for i, h := range hashes {
		if h == "h:"+code {
			return i
		}
	}
	return -1
}

type fakeAudit struct {
	mu     sync.Mutex
	events []store.AuditEvent
}

func (f *fakeAudit) Record(_ context.Context, ev store.AuditEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
}

func (f *fakeAudit) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		out = append(out, e.Action)
	}
	return out
}

// fakePages writes "page=<name> error=<public message>" and keeps the
// common part (the form token) of the last page rendered.
type fakePages struct {
	mu   sync.Mutex
	last templates.Common
}

func (f *fakePages) Render(w http.ResponseWriter, _ *http.Request, status int, name string, data any) {
	var c templates.Common
	msg := ""
	switch d := data.(type) {
	case templates.LoginPage:
		c, msg = d.Common, d.Error
	case templates.VerifyPage:
		c, msg = d.Common, d.Error
	case templates.EnrollPage:
		c, msg = d.Common, d.Error
	case templates.RecoveryLoginPage:
		c, msg = d.Common, d.Error
	case templates.LogoutPage:
		c, msg = d.Common, d.Error
	}
	f.mu.Lock()
	f.last = c
	f.mu.Unlock()
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "page=%s error=%s", name, msg)
}

func (f *fakePages) RenderError(w http.ResponseWriter, _ *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "error"
	if we, ok := errors.AsType[*web.Error](err); ok {
		status, msg = we.Status, we.Message
	}
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "page=error error=%s", msg)
}

// fakeLimits is a regulation.Store in memory: counters without expiry
// (a test is shorter than any window) and bans until their end.
type fakeLimits struct {
	mu       sync.Mutex
	counters map[string]int64
	bans     map[string]store.Ban
	now      func() time.Time
}

func (f *fakeLimits) Incr(_ context.Context, key string, delta int64, _ time.Duration) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counters[key] += delta
	return f.counters[key], nil
}

func (f *fakeLimits) ResetCounter(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.counters, key)
	return nil
}

func (f *fakeLimits) PutBan(_ context.Context, b store.Ban, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bans[b.Key] = b
	return nil
}

func (f *fakeLimits) GetBan(_ context.Context, key string) (store.Ban, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bans[key]
	if !ok || !f.now().Before(b.Until) {
		return store.Ban{}, store.ErrNotFound
	}
	return b, nil
}

func (f *fakeLimits) DeleteBan(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.bans, key)
	return nil
}

func (f *fakeLimits) ListBans(context.Context, int) ([]store.Ban, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Ban
	for _, b := range f.bans {
		out = append(out, b)
	}
	return out, nil
}

type fakeMetrics struct {
	mu       sync.Mutex
	attempts []string
}

func (f *fakeMetrics) LoginAttempt(factor, result string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, factor+":"+result)
}

func (f *fakeMetrics) BanStarted(string) {}

// world is the sign-in pages over fakes, behind RealClient (the client
// address counts) and the gateway's CSRF middleware. Users: alice
// (password "alice-pw", TOTP, recovery codes "r1" and "r2"), bob
// ("bob-pw", no TOTP).
type world struct {
	t        *testing.T
	now      time.Time
	users    *fakeUsers
	settings *fakeSettings
	sessions *fakeSessions
	pw       *fakePasswords
	codes    *fakeCodes
	audit    *fakeAudit
	pages    *fakePages
	metrics  *fakeMetrics
	h        http.Handler
}

func newWorld(t *testing.T, mode string) *world {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	w := &world{
		t:   t,
		now: now,
		users: &fakeUsers{m: map[string]store.User{
			"alice": {Name: "alice", PasswordHash: "hash:alice-pw", TOTPSecret: []byte("sealed-alice"), RecoveryCodes: []string{"h:r1", "h:r2"}, AuthEpoch: 1},
			"bob":   {Name: "bob", PasswordHash: "hash:bob-pw", AuthEpoch: 1},
		}},
		settings: &fakeSettings{mode: mode},
		sessions: &fakeSessions{m: map[string]store.Session{}, now: clock},
		pw:       &fakePasswords{},
		codes:    &fakeCodes{},
		audit:    &fakeAudit{},
		pages:    &fakePages{},
		metrics:  &fakeMetrics{},
	}
	limits := &fakeLimits{counters: map[string]int64{}, bans: map[string]store.Ban{}, now: clock}
	gate := auth.New(auth.Deps{Users: w.users, Settings: w.settings, Sessions: w.sessions, Errors: w.pages, Logger: zerolog.Nop()})
	h := New(Deps{
		Users:     w.users,
		Settings:  w.settings,
		Sessions:  w.sessions,
		Loader:    gate,
		Passwords: w.pw,
		TOTP:      w.codes,
		Recovery:  fakeRecovery{},
		Audit:     w.audit,
		Pages:     w.pages,
		Regulator: regulation.New(limits, nil, regulation.Options{MaxFailures: 5, MaxPerSession: 3}, clock),
		Metrics:   w.metrics,
		CSRFToken: middleware.CSRFToken,
		Logger:    zerolog.Nop(),
		Now:       clock,
	}, Options{DefaultIssuer: "gw.example"})
	csrf := middleware.NewCSRF(middleware.CSRFOptions{SessionCookie: func(*http.Request) string { return sessionCookie(false) }})
	w.h = middleware.RealClient(nil)(csrf.Middleware()(h.Handler()))
	return w
}

// browser keeps cookies and the last CSRF token rendered into a form.
type browser struct {
	w     *world
	jar   map[string]string
	token string
}

func (w *world) browser() *browser { return &browser{w: w, jar: map[string]string{}} }

func (b *browser) do(method, target string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		form = cloneForm(form)
		if _, set := form[middleware.CSRFField]; !set && b.token != "" {
			form.Set(middleware.CSRFField, b.token)
		}
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, "http://gw.example"+target, body)
	r.RemoteAddr = "192.0.2.7:50000"
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.jar {
		r.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	rec := httptest.NewRecorder()
	b.w.h.ServeHTTP(rec, r)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.jar, c.Name)
		} else {
			b.jar[c.Name] = c.Value
		}
	}
	if tok := b.w.lastToken(); tok != "" {
		b.token = tok
	}
	return rec
}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// get loads a page as a browser does, picking up its form token.
func (b *browser) get(target string) *httptest.ResponseRecorder {
	return b.do(http.MethodGet, target, nil)
}

func (b *browser) post(target string, form url.Values) *httptest.ResponseRecorder {
	return b.do(http.MethodPost, target, form)
}

func (w *world) lastToken() string {
	w.pages.mu.Lock()
	defer w.pages.mu.Unlock()
	tok := w.pages.last.CSRFToken
	w.pages.last = templates.Common{}
	return tok
}

// session is the browser's current session, if any.
func (b *browser) session() (store.Session, bool) {
	id, ok := b.jar["sid"]
	if !ok {
		return store.Session{}, false
	}
	return b.w.sessions.get(id)
}

// signIn gets the login page and posts the password.
func (b *browser) signIn(user, pw, rd string) *httptest.ResponseRecorder {
	b.get(auth.LoginPage)
	return b.post(auth.LoginPage, url.Values{"username": {user}, "password": {pw}, "rd": {rd}})
}

func wantRedirect(t *testing.T, rec *httptest.ResponseRecorder, status int, location string) {
	t.Helper()
	if rec.Code != status || rec.Header().Get("Location") != location {
		t.Fatalf("got %d %q (%s), want %d %q", rec.Code, rec.Header().Get("Location"), rec.Body, status, location)
	}
}

func wantPage(t *testing.T, rec *httptest.ResponseRecorder, status int, page, msg string) {
	t.Helper()
	if want := "page=" + page + " error=" + msg; rec.Code != status || rec.Body.String() != want {
		t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body, status, want)
	}
}

// What the gateway wires in satisfies the interfaces the pages declare.
var (
	_ UserStore      = store.Store(nil)
	_ SettingsSource = (*settings.Source)(nil)
	_ Sessions       = (*session.Manager)(nil)
	_ SessionLoader  = (*auth.Gate)(nil)
	_ Passwords      = (*password.Hasher)(nil)
	_ Codes          = (*factor.TOTP)(nil)
	_ RecoveryCodes  = (*factor.Recovery)(nil)
	_ Pages          = (*web.Renderer)(nil)
	_ Regulator      = (*regulation.Regulator)(nil)
	_ HashSlots      = (*password.Limiter)(nil)
	_ LoginMetrics   = (*metrics.Metrics)(nil)
)
