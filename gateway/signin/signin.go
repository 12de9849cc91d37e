package signin

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/passkey"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/totp"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// Pages served besides auth's LoginPage, VerifyPage and EnrollPage.
const (
	RecoveryPage = "/.authgate/recovery"
	LogoutPage   = "/.authgate/logout"
)

// Public messages: the same text for every failure of a step.
const (
	msgBadLogin    = "The username or password is incorrect."
	msgBadCode     = "The security code is invalid."
	msgTooMany     = "Too many invalid codes. Please sign in again."
	msgUnavailable = "Sign-in is unavailable right now. Please try again shortly."
)

// UserStore reads and updates accounts.
type UserStore interface {
	GetUser(ctx context.Context, name string) (store.User, error)
	UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error)
}

// SettingsSource yields the current 2FA mode and Issuer.
type SettingsSource interface {
	Current(ctx context.Context) (settings.Values, error)
}

// Sessions creates, moves, saves and ends sessions and their cookies (a
// *session.Manager; see its contract).
type Sessions interface {
	FromRequest(r *http.Request, secure bool) (id string, s store.Session, err error)
	Create(ctx context.Context, tmpl store.Session) (id string, s store.Session, err error)
	// Move takes old, commits (if not nil), and creates the session upd
	// makes of it under a new id; an error matching session.ErrNoSession
	// when another request moved or ended old first.
	Move(ctx context.Context, old store.Session, commit func(context.Context) error, upd func(*store.Session)) (id string, s store.Session, err error)
	Save(ctx context.Context, s store.Session) error
	Destroy(ctx context.Context, idHash string) error
	SetCookie(w http.ResponseWriter, id string, s store.Session, secure bool)
	ClearCookie(w http.ResponseWriter, secure bool)
}

// SessionLoader loads a request's session and its user, judged under the
// current 2FA mode (an *auth.Gate: the loader the gate decides with).
type SessionLoader interface {
	SignedIn(r *http.Request, secure bool) (session.Signed, error)
}

// Passwords checks and (re)hashes passwords.
type Passwords interface {
	Verify(encoded, password string) (bool, error)
	VerifyDummy(password string)
	NeedsRehash(encoded string) bool
	Hash(password string) (string, error)
}

// Codes checks TOTP codes (consuming their step) and issues secrets (a
// *factor.TOTP).
type Codes interface {
	Check(ctx context.Context, user string, sealed []byte, drift int, code string) (factor.Result, error)
	NewSecret(user string) ([]byte, error)
	Describe(user, issuer string, sealed []byte) (factor.Enrolment, error)
	Options() totp.Options
}

// RecoveryCodes matches recovery codes (a *factor.Recovery).
type RecoveryCodes interface {
	// Match returns the index in hashes of code, or -1.
	Match(user string, hashes []string, code string) int
}

// Auditor records sign-in events.
type Auditor interface {
	Record(ctx context.Context, ev store.AuditEvent)
}

// Pages renders the sign-in pages and errors.
type Pages interface {
	Render(w http.ResponseWriter, r *http.Request, status int, name string, data any)
	RenderError(w http.ResponseWriter, r *http.Request, err error)
}

// Deps are the collaborators of the Handler.
type Deps struct {
	Users    UserStore
	Settings SettingsSource
	Sessions Sessions
	// Loader reads the session of the second-factor pages (the Gate).
	Loader    SessionLoader
	Passwords Passwords
	TOTP      Codes
	Recovery  RecoveryCodes
	Audit     Auditor
	Pages     Pages
	// Passkeys runs passkey ceremonies (nil: passkeys unavailable).
	Passkeys Passkeys
	// PasskeyOwner finds the account a passkey's user handle names
	// (passwordless sign-in).
	PasskeyOwner passkey.Lookup
	// Regulator reserves every proof attempt before its check and keeps
	// bans (required).
	Regulator Regulator
	// HashSlots bounds concurrent password hashing at login (nil: none).
	HashSlots HashSlots
	// Metrics counts sign-in attempts and bans (nil: none).
	Metrics LoginMetrics
	// CSRFToken returns the token to embed in forms (middleware.CSRF).
	CSRFToken func(r *http.Request) string
	Logger    zerolog.Logger
	Now       func() time.Time
}

// Options tune the flow.
type Options struct {
	// DefaultIssuer is used when the Issuer setting is empty (host of
	// public_url, else the machine's host name).
	DefaultIssuer string
	// RedirectHosts are hosts (besides the current one) that rd may name.
	RedirectHosts []string
	// Title heads the sign-in pages (ui.title); "" shows the Issuer in
	// force (the Settings page's, else DefaultIssuer).
	Title string
	// LogoURL is the path the sign-in pages show the logo from
	// (ui.logo_file); "" shows none.
	LogoURL string
	// PublicHost is named on the sign-in pages ("Sign in to …") when the
	// request's host is unknown: public_url's host, or "".
	PublicHost string
}

// Handler serves the sign-in pages.
type Handler struct {
	d   Deps
	o   Options
	mux *http.ServeMux
}

// New builds a Handler.
func New(d Deps, o Options) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	h := &Handler{d: d, o: o, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET "+auth.LoginPage, h.loginPage)
	h.mux.HandleFunc("POST "+auth.LoginPage, h.loginSubmit)
	h.mux.HandleFunc("GET "+auth.VerifyPage, h.verifyPage)
	h.mux.HandleFunc("POST "+auth.VerifyPage, h.verifySubmit)
	h.mux.HandleFunc("GET "+RecoveryPage, h.recoveryPage)
	h.mux.HandleFunc("POST "+RecoveryPage, h.recoverySubmit)
	h.mux.HandleFunc("GET "+auth.EnrollPage, h.enrollPage)
	h.mux.HandleFunc("POST "+auth.EnrollPage, h.enrollSubmit)
	h.mux.HandleFunc("POST "+PasskeyBeginPage, h.passkeyBegin)
	h.mux.HandleFunc("POST "+PasskeyEnrollBeginPage, h.passkeyEnrollBegin)
	h.mux.HandleFunc("POST "+PasswordlessBeginPage, h.passwordlessBegin)
	h.mux.HandleFunc("POST "+PasswordlessSignInPage, h.passwordlessSubmit)
	h.mux.HandleFunc("GET "+templates.PasskeyScriptPath, h.script)
	h.mux.HandleFunc("GET "+LogoutPage, h.logoutPage)
	h.mux.HandleFunc("POST "+LogoutPage, h.logoutSubmit)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.d.Pages.RenderError(w, r, notFound())
	})
	return h
}

// Handler returns the handler of the sign-in pages (and a 404 page for
// any other path it is given).
func (h *Handler) Handler() http.Handler { return h.mux }

func client(r *http.Request) middleware.Client { return auth.Client(r) }

func secure(r *http.Request) bool { return client(r).Scheme == "https" }

func (h *Handler) log(r *http.Request) *zerolog.Logger {
	if l := zerolog.Ctx(r.Context()); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &h.d.Logger
}

// decision logs one auth decision and annotates the access log.
func (h *Handler) decision(r *http.Request, user, route, result, reason string) {
	auth.LogDecision(r, h.log(r), user, route, result, reason)
}

// audit records an auth event for user (actor and target alike: at the
// login pages the user acts on their own account).
func (h *Handler) audit(r *http.Request, action, user, detail string) {
	h.d.Audit.Record(r.Context(), store.AuditEvent{Actor: user, Action: action, Target: user, IP: client(r).IP.String(), Detail: detail})
}

func (h *Handler) common(r *http.Request, title string) commonData {
	tok := ""
	if h.d.CSRFToken != nil {
		tok = h.d.CSRFToken(r)
	}
	return commonData{Title: title, CSRFToken: tok, Product: templates.Product, Brand: h.brand(r)}
}

// brand is the sign-in pages' header: ui.title, else the Issuer in force
// (so a new Issuer set on the Settings page shows at once), the host the
// request came to, and the logo.
func (h *Handler) brand(r *http.Request) *templates.Brand {
	title := h.o.Title
	if title == "" {
		title = h.o.DefaultIssuer
		// A store outage must not keep the page from rendering: the
		// step itself fails closed on it.
		if v, err := h.d.Settings.Current(r.Context()); err == nil {
			title = h.issuer(v)
		}
	}
	host := client(r).Host
	if host == "" {
		host = h.o.PublicHost
	}
	return &templates.Brand{Title: title, Host: host, LogoURL: h.o.LogoURL}
}

func (h *Handler) issuer(v settings.Values) string {
	if v.Issuer != "" {
		return v.Issuer
	}
	return h.o.DefaultIssuer
}

// needsSecondFactor decides whether a login must pass a second factor.
func needsSecondFactor(mode string, u store.User) bool {
	switch mode {
	case settings.ModeRequired:
		return true
	case settings.ModeOn:
		return u.HasSecondFactor()
	default:
		return false
	}
}

// redirectTarget validates rd against the current host and the allow list.
func (h *Handler) redirectTarget(r *http.Request, rd string) string {
	return auth.SafeRedirect(rd, client(r).Host, h.o.RedirectHosts)
}
