package auth

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// Prefix is where the gateway's own pages live; nothing under it is ever
// forwarded upstream.
const Prefix = "/.authgate/"

// Public messages: the same text for every failure of a step.
const (
	msgBadLogin    = "The username or password is incorrect."
	msgBadCode     = "The security code is invalid."
	msgTooMany     = "Too many invalid codes. Please sign in again."
	msgUnavailable = "Sign-in is unavailable right now. Please try again shortly."
)

// UserStore is what auth needs to read and update accounts.
type UserStore interface {
	GetUser(ctx context.Context, name string) (store.User, error)
	UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error)
}

// SettingsSource yields the current 2FA mode and Issuer.
type SettingsSource interface {
	Current(ctx context.Context) (settings.Values, error)
}

// Passwords checks and (re)hashes passwords.
type Passwords interface {
	Verify(encoded, password string) (bool, error)
	VerifyDummy(password string)
	NeedsRehash(encoded string) bool
	Hash(password string) (string, error)
}

// Auditor records auth events.
type Auditor interface {
	Record(ctx context.Context, ev store.AuditEvent)
}

// Upstreams routes and forwards proxied requests.
type Upstreams interface {
	Match(host, canonicalPath string) (*proxy.Route, bool)
	Forward(w http.ResponseWriter, r *http.Request, rt *proxy.Route, id *proxy.Identity)
}

// Pages renders the gateway's pages and errors.
type Pages interface {
	Render(w http.ResponseWriter, r *http.Request, status int, name string, data any)
	RenderError(w http.ResponseWriter, r *http.Request, err error)
}

// Deps are the collaborators of the Handler.
type Deps struct {
	Users     UserStore
	Settings  SettingsSource
	Sessions  *session.Manager
	Passwords Passwords
	// TOTP checks codes (consuming their step) and issues secrets.
	TOTP *factor.TOTP
	// Recovery checks recovery codes and makes new ones.
	Recovery  *factor.Recovery
	Audit     Auditor
	Upstreams Upstreams
	Pages     Pages
	// Regulator reserves every proof attempt before its check and keeps
	// bans (required).
	Regulator Regulator
	// HashSlots bounds concurrent password hashing at login (nil: none).
	HashSlots HashSlots
	// Metrics counts sign-in attempts and bans (nil: none).
	Metrics LoginMetrics
	// Streams tracks forwarded requests with a session while they run,
	// to end those whose session no longer passes (nil: none is).
	Streams Streams
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

// Handler serves the challenge pages and gates proxied requests.
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
	h.mux.HandleFunc("GET /.authgate/login", h.loginPage)
	h.mux.HandleFunc("POST /.authgate/login", h.loginSubmit)
	h.mux.HandleFunc("GET /.authgate/verify", h.verifyPage)
	h.mux.HandleFunc("POST /.authgate/verify", h.verifySubmit)
	h.mux.HandleFunc("GET /.authgate/recovery", h.recoveryPage)
	h.mux.HandleFunc("POST /.authgate/recovery", h.recoverySubmit)
	h.mux.HandleFunc("GET /.authgate/enroll", h.enrollPage)
	h.mux.HandleFunc("POST /.authgate/enroll", h.enrollSubmit)
	h.mux.HandleFunc("GET /.authgate/logout", h.logoutPage)
	h.mux.HandleFunc("POST /.authgate/logout", h.logoutSubmit)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.d.Pages.RenderError(w, r, notFound())
	})
	return h
}

// Pages returns the handler of the /.authgate/ pages.
func (h *Handler) Pages() http.Handler { return h.mux }

// IsGatewayPath reports whether a canonical path belongs to the gateway.
// The first segment is compared case-insensitively so "/.AUTHGATE/x" can
// never be forwarded upstream as an unprotected look-alike.
func IsGatewayPath(p string) bool {
	return len(p) >= len(Prefix)-1 && strings.EqualFold(p[:len(Prefix)-1], Prefix[:len(Prefix)-1]) &&
		(len(p) == len(Prefix)-1 || p[len(Prefix)-1] == '/')
}

func client(r *http.Request) middleware.Client {
	c, ok := middleware.ClientFrom(r.Context())
	if !ok {
		// Without RealClient nothing is trusted: plain values only.
		c = middleware.Client{Scheme: "http", Host: strings.ToLower(r.Host)}
		if r.TLS != nil {
			c.Scheme = "https"
		}
	}
	return c
}

func secure(r *http.Request) bool { return client(r).Scheme == "https" }

func (h *Handler) log(r *http.Request) *zerolog.Logger {
	if l := zerolog.Ctx(r.Context()); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &h.d.Logger
}

// decision logs one auth decision and annotates the access log.
func (h *Handler) decision(r *http.Request, user, route, result, reason string) {
	middleware.SetUser(r.Context(), user)
	middleware.SetResult(r.Context(), result)
	var ev *zerolog.Event
	switch result {
	case "allow":
		// Every proxied request: the access log line carries the user,
		// route and result; a second line per request would only double
		// the log (and its cost).
		return
	case "login":
		ev = h.log(r).Info()
	default:
		ev = h.log(r).Warn()
	}
	ev.Str("event", "auth").Str("user", user).Str("route", route).Str("result", result).
		Str("reason", reason).Str("client_ip", client(r).IP.String()).Msg("auth decision")
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
		return u.HasTOTP()
	default:
		return false
	}
}

// redirectTarget validates rd against the current host and the allow list.
func (h *Handler) redirectTarget(r *http.Request, rd string) string {
	return SafeRedirect(rd, client(r).Host, h.o.RedirectHosts)
}
