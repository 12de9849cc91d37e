package auth

import (
	"context"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
)

// Prefix is where the gateway's own pages live; nothing under it is ever
// forwarded upstream.
const Prefix = "/.authgate/"

// The sign-in pages a challenge sends a browser to (served by
// gateway/signin).
const (
	LoginPage  = "/.authgate/login"
	VerifyPage = "/.authgate/verify"
	EnrollPage = "/.authgate/enroll"
)

// msgUnavailable is the public message of a decision the store or the
// settings kept from being made (503).
const msgUnavailable = "Sign-in is unavailable right now. Please try again shortly."

// Users reads accounts.
type Users interface {
	GetUser(ctx context.Context, name string) (store.User, error)
}

// SettingsSource yields the current 2FA mode.
type SettingsSource interface {
	Current(ctx context.Context) (settings.Values, error)
}

// Sessions reads a request's session and ends void ones (a
// *session.Manager).
type Sessions interface {
	// FromRequest returns the cookie value and the session, or an error
	// matching session.ErrNoSession when there is none usable.
	FromRequest(r *http.Request, secure bool) (id string, s store.Session, err error)
	Destroy(ctx context.Context, idHash string) error
}

// Upstreams routes and forwards proxied requests (a *proxy.Proxy).
type Upstreams interface {
	Match(host, canonicalPath string) (*proxy.Route, bool)
	Forward(w http.ResponseWriter, r *http.Request, rt *proxy.Route, id *proxy.Identity)
}

// ErrorPages renders the error page of a refusal (a *web.Error: 400,
// 403, 404, 503).
type ErrorPages interface {
	RenderError(w http.ResponseWriter, r *http.Request, err error)
}

// Deps are the collaborators of the Gate.
type Deps struct {
	Users    Users
	Settings SettingsSource
	Sessions Sessions
	// Upstreams routes and forwards (needed by ServeHTTP and ForwardAuth;
	// RequireUser alone does without).
	Upstreams Upstreams
	Errors    ErrorPages
	// Streams tracks forwarded requests with a session while they run,
	// to end those whose session no longer passes (nil: none is).
	Streams Streams
	// Untouched reads sessions as Sessions does but never refreshes their
	// last use (session.Manager.WithoutTouch): the re-checks of running
	// requests (Streams) read through it, so an open tunnel is not
	// activity. Required with Streams.
	Untouched Sessions
	Logger    zerolog.Logger
}

// Gate decides whether a request may pass: proxied requests (ServeHTTP),
// a proxy's forward-auth question (ForwardAuth) and the gateway pages
// behind a complete session (RequireUser). It renders no page of its own
// besides the error page.
type Gate struct {
	d Deps
}

// New builds a Gate. Streams without Untouched is a wiring mistake that
// would let an open tunnel keep its session alive: it panics at start
// rather than fall back to the touching reader.
func New(d Deps) *Gate {
	if d.Streams != nil && d.Untouched == nil {
		panic("auth: Deps.Streams needs Deps.Untouched")
	}
	return &Gate{d: d}
}

// IsGatewayPath reports whether a canonical path belongs to the gateway.
// The first segment is compared case-insensitively so "/.AUTHGATE/x" can
// never be forwarded upstream as an unprotected look-alike.
func IsGatewayPath(p string) bool {
	return len(p) >= len(Prefix)-1 && strings.EqualFold(p[:len(Prefix)-1], Prefix[:len(Prefix)-1]) &&
		(len(p) == len(Prefix)-1 || p[len(Prefix)-1] == '/')
}

// Client is the client of r as middleware.RealClient resolved it; without
// RealClient nothing is trusted and plain values of r are used.
func Client(r *http.Request) middleware.Client {
	c, ok := middleware.ClientFrom(r.Context())
	if !ok {
		c = middleware.Client{Scheme: "http", Host: strings.ToLower(r.Host)}
		if r.TLS != nil {
			c.Scheme = "https"
		}
	}
	return c
}

func secure(r *http.Request) bool { return Client(r).Scheme == "https" }

func (g *Gate) log(r *http.Request) *zerolog.Logger {
	if l := zerolog.Ctx(r.Context()); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &g.d.Logger
}

// LogDecision logs one auth decision to l and annotates the access log:
// the one "auth decision" line of the gate and of the sign-in pages.
// result "allow" (every proxied request) only annotates: the access log
// line carries the user, route and result, and a second line per request
// would only double the log (and its cost).
func LogDecision(r *http.Request, l *zerolog.Logger, user, route, result, reason string) {
	middleware.SetUser(r.Context(), user)
	middleware.SetResult(r.Context(), result)
	var ev *zerolog.Event
	switch result {
	case "allow":
		return
	case "login":
		ev = l.Info()
	default:
		ev = l.Warn()
	}
	ev.Str("event", "auth").Str("user", user).Str("route", route).Str("result", result).
		Str("reason", reason).Str("client_ip", Client(r).IP.String()).Msg("auth decision")
}

func (g *Gate) decision(r *http.Request, user, route, result, reason string) {
	LogDecision(r, g.log(r), user, route, result, reason)
}

func notFound() *web.Error {
	return web.Errorf(http.StatusNotFound, "There is nothing here.", nil)
}

func unavailable(cause error) *web.Error {
	return web.Errorf(http.StatusServiceUnavailable, msgUnavailable, cause)
}

func badRequest(err error) *web.Error {
	return web.Errorf(http.StatusBadRequest, "The request could not be understood.", err)
}
