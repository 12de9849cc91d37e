package admin

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// Paths served by the Handler.
const (
	Prefix       = "/.authgate/admin"
	SettingsPath = Prefix + "/settings"
	UsersPath    = Prefix + "/users"
	DisablePath  = UsersPath + "/disable"
	RevokePath   = UsersPath + "/revoke"
	ResetPath    = UsersPath + "/reset-password"
	// TempPasswordPath shows, once, the temporary password of the reset
	// that redirected there.
	TempPasswordPath = UsersPath + "/temp-password"
	RolePath         = UsersPath + "/role"
	UpstreamsPath    = Prefix + "/upstreams"
	AuditPath        = Prefix + "/audit"
)

// Defaults for Options.
const (
	DefaultStepUpWindow  = 10 * time.Minute
	DefaultPageSize      = 50
	DefaultAuditPageSize = 50
	// DefaultResultFor is how long a temporary password waits in the
	// admin's session for its one showing.
	DefaultResultFor    = 5 * time.Minute
	DefaultHealthWindow = proxy.HealthWindow
	// maxBulk caps how many users one bulk action may name.
	maxBulk = 500
)

// Users is the user management the admin area needs (a
// *users.Service). Every change it makes is audited there, with the
// actor from the request context.
type Users interface {
	Page(ctx context.Context, f users.Filter) (users.UserPage, error)
	DisableTwoFactor(ctx context.Context, names []string) ([]string, error)
	ResetPassword(ctx context.Context, name, passwordHash string) error
	SetRole(ctx context.Context, name, role string) error
	RevokeSessions(ctx context.Context, name string) (int, error)
	Settings(ctx context.Context) (users.SettingsInfo, error)
	SetMode(ctx context.Context, mode string) error
	SetIssuer(ctx context.Context, issuer string) error
	Audit(ctx context.Context, view users.AuditView, since time.Time, limit int) ([]store.AuditEvent, error)
}

// Upstreams lists the configured routes and their live health (a
// *proxy.Proxy).
type Upstreams interface {
	Routes() []proxy.Route
	Health() []proxy.RouteHealth
}

// Sessions writes back the signed-in admin's session (a
// *session.Manager): it holds the one-time result of a reset until the
// page the reset redirects to has shown it.
type Sessions interface {
	Save(ctx context.Context, s store.Session) error
}

// Box seals what the admin's session holds (a *secretbox.Box).
type Box interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Hasher hashes a password for storage (a *password.Hasher).
type Hasher interface {
	Hash(pw string) (string, error)
}

// Pages renders pages and errors (a *web.Renderer).
type Pages interface {
	Render(w http.ResponseWriter, r *http.Request, status int, name string, data any)
	RenderError(w http.ResponseWriter, r *http.Request, err error)
}

// Deps are the parts the admin area uses.
type Deps struct {
	Users     Users
	Upstreams Upstreams
	Hasher    Hasher
	Pages     Pages
	// Sessions and Box hold a reset's temporary password, sealed, in the
	// admin's session between the POST and its result page (nil: resets
	// are refused).
	Sessions Sessions
	Box      Box
	// Bans lists and lifts sign-in bans (nil: no Bans tab).
	Bans Bans
	// Clock is the server clock check shown on the Settings page (nil:
	// shown as not configured).
	Clock Clock
	// Drift is the clock-drift evidence (Settings page, users' rows) and
	// the resync action (nil: not shown).
	Drift Drift
	// Now is the clock (default time.Now); Rand the source of temporary
	// passwords (default crypto/rand).
	Now  func() time.Time
	Rand io.Reader
}

// Options tune the admin area.
type Options struct {
	// ConfigPath and ConfigLoadedAt are shown on the upstreams page.
	ConfigPath     string
	ConfigLoadedAt time.Time
	// StepUpWindow is how recent an admin's second factor must be
	// (default 10 minutes).
	StepUpWindow time.Duration
	// PageSize is the number of users per page (default 50).
	PageSize int
	// AuditPageSize is how many audit events a page of the Audit tab
	// shows unless the admin picks another size (default 50).
	AuditPageSize int
	// ResultFor is how long a reset's temporary password can be shown
	// after the reset (default 5 minutes); it is shown at most once.
	ResultFor time.Duration
	// HealthWindow is the window of the health counters, as shown
	// (default proxy.HealthWindow).
	HealthWindow time.Duration
}

// Handler serves the admin area.
type Handler struct {
	d   Deps
	o   Options
	mux *http.ServeMux
}

// New returns the admin area's handler.
func New(d Deps, o Options) *Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	if o.StepUpWindow <= 0 {
		o.StepUpWindow = DefaultStepUpWindow
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.AuditPageSize <= 0 {
		o.AuditPageSize = DefaultAuditPageSize
	}
	if o.ResultFor <= 0 {
		o.ResultFor = DefaultResultFor
	}
	if o.HealthWindow <= 0 {
		o.HealthWindow = DefaultHealthWindow
	}
	h := &Handler{d: d, o: o, mux: http.NewServeMux()}
	m := h.mux
	toSettings := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, SettingsPath, http.StatusSeeOther)
	}
	m.HandleFunc("GET "+Prefix, toSettings)
	m.HandleFunc("GET "+Prefix+"/{$}", toSettings)
	m.HandleFunc("GET "+SettingsPath, h.settingsPage)
	m.HandleFunc("POST "+SettingsPath, h.saveSettings)
	m.HandleFunc("GET "+UsersPath, h.usersPage)
	m.HandleFunc("POST "+DisablePath, h.disable)
	m.HandleFunc("POST "+RevokePath, h.revoke)
	m.HandleFunc("POST "+ResetPath, h.resetPassword)
	m.HandleFunc("GET "+TempPasswordPath, h.tempPasswordPage)
	m.HandleFunc("POST "+RolePath, h.setRole)
	m.HandleFunc("POST "+ResyncPath, h.resync)
	m.HandleFunc("GET "+UpstreamsPath, h.upstreamsPage)
	m.HandleFunc("GET "+AuditPath, h.auditPage)
	m.HandleFunc("GET "+BansPath, h.bansPage)
	m.HandleFunc("POST "+LiftBanPath, h.liftBan)
	m.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusNotFound, "There is no such page in the admin area.", nil))
	})
	return h
}

// Handler returns the http.Handler for everything under Prefix. Mount it
// behind auth's RequireUser and the CSRF middleware.
func (h *Handler) Handler() http.Handler {
	return http.HandlerFunc(h.serve)
}

var errNoUser = errors.New("admin: no signed-in user in the request context (RequireUser missing)")

// serve authorises every request: admins only, with a fresh second
// factor; then dispatches.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	c, ok := auth.CurrentFrom(r.Context())
	if !ok {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusUnauthorized, "Please sign in first.", errNoUser))
		return
	}
	if c.User.Role != store.RoleAdmin {
		middleware.LoggerFrom(r.Context()).Warn().Str("user", c.User.Name).Str("path", r.URL.Path).
			Msg("admin area refused: not an admin")
		middleware.SetResult(r.Context(), "forbidden")
		h.d.Pages.Render(w, r, http.StatusForbidden, templates.PageAdminForbidden, templates.AdminForbiddenPage{
			Common: h.common(r, "Administrators only"),
			Nav:    templates.Nav{User: c.User.Name},
		})
		return
	}
	if !auth.FreshSecondFactor(c, h.d.Now(), h.o.StepUpWindow) {
		// Outside mode off the admin area is never weaker than what it
		// protects: a session that has not passed a second factor is
		// sent to pass one (or, for an admin without an authenticator,
		// to set one up first); one that passed it too long ago steps
		// up. After the code, come back here; a POST cannot be replayed
		// by a redirect, so it comes back to the page its form was on.
		rd := r.URL.RequestURI()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rd = returnPage(r.URL.Path)
		}
		loc := auth.SecondFactorOwed(c, rd)
		if loc == "" {
			loc = auth.StepUpURL(rd)
		}
		middleware.SetResult(r.Context(), "step_up")
		http.Redirect(w, r, loc, http.StatusSeeOther)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// returnPage is the page a POST to path was sent from.
func returnPage(path string) string {
	if strings.HasPrefix(path, UsersPath+"/") {
		return UsersPath
	}
	if path == SettingsPath {
		return SettingsPath
	}
	if path == LiftBanPath {
		return BansPath
	}
	return SettingsPath
}

// current returns the signed-in admin (serve checked it exists).
func current(r *http.Request) auth.Current {
	c, _ := auth.CurrentFrom(r.Context())
	return c
}

func (h *Handler) common(r *http.Request, title string) templates.Common {
	return templates.Common{Title: title, CSRFToken: middleware.CSRFToken(r), Product: templates.Product}
}

func (h *Handler) nav(r *http.Request, active string) templates.Nav {
	return templates.Nav{User: current(r).User.Name, IsAdmin: true, Active: active}
}

// Public messages for service errors.
const (
	msgLastAdmin = "That would leave no admin: make another user admin first."
	msgNoUser    = "No such user."
	msgConflict  = "Someone else changed this user at the same moment. Please try again."
	msgInvalid   = "That request was not valid."
)

// publicError maps a service error to a status and public message; ok is
// false for errors that are not the client's (store down…), which the
// caller renders as the generic error page.
func publicError(err error) (status int, msg string, ok bool) {
	switch {
	case errors.Is(err, users.ErrLastAdmin):
		return http.StatusConflict, msgLastAdmin, true
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, msgNoUser, true
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, msgConflict, true
	case errors.Is(err, users.ErrInvalid):
		return http.StatusBadRequest, msgInvalid, true
	}
	return 0, "", false
}

// formatTime shows t in UTC to the minute; "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04")
}
