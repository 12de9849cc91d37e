package account

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/passkey"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// Paths served by the handler.
const (
	PathOverview = "/.authgate/account"
	PathSetup    = "/.authgate/account/2fa/setup"
	PathRemove   = "/.authgate/account/2fa/remove"
	PathGenerate = "/.authgate/account/recovery/generate"
	// PathFirstCodes is where sign-in enrolment sends a user: it makes
	// their first recovery codes (only if they never had any), shows them
	// once and continues to rd.
	PathFirstCodes   = auth.FirstRecoveryCodesPage
	PathDownload     = "/.authgate/account/recovery/codes.txt"
	PathPassword     = auth.PasswordPage
	PathRevoke       = "/.authgate/account/sessions/revoke"
	PathRevokeOthers = "/.authgate/account/sessions/revoke-others"
	downloadFilename = "authgate-recovery-codes.txt"
	sessionIDLen     = 12
	maxPasswordLen   = 1024
)

// Public messages.
const (
	msgBadProof        = "The password or code is incorrect."
	msgBadCurrent      = "The current password is incorrect."
	msgBadCode         = "The security code is invalid."
	msgTooMany         = "Too many incorrect attempts. Please wait a few minutes and try again."
	msgRequired        = "Two-factor authentication is required for every account on this gateway, so it cannot be removed. An administrator can change this setting."
	msgNotEnrolled     = "Two-factor authentication is not set up for your account."
	msgSessionGone     = "That session was not found. It may have ended already."
	msgSessionCurrent  = "That is this session. To end it, sign out."
	msgPasswordShort   = "The new password must be at least %d characters long."
	msgPasswordLong    = "The new password is too long."
	msgPasswordRepeat  = "The new passwords do not match."
	msgPasswordSame    = "The new password must differ from the current one."
	msgPasswordChanged = "Your password was changed elsewhere in the meantime. Please try again."
	msgCodesGone       = "These recovery codes can no longer be downloaded. Generate new ones on your account page if you did not save them."
	msgUnavailable     = "This page is unavailable right now. Please try again shortly."
	msgBusy            = "The server is busy checking passwords. Please try again in a moment."
	msgAccountMoved    = "Your account was changed elsewhere in the meantime. Please sign in again."
)

// Users reads and updates accounts.
type Users interface {
	GetUser(ctx context.Context, name string) (store.User, error)
	UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error)
}

// Sessions lists and ends a user's stored sessions.
type Sessions interface {
	ListUserSessions(ctx context.Context, user string) ([]store.Session, error)
	DeleteSession(ctx context.Context, idHash string) error
}

// SettingsSource yields the current 2FA mode and Issuer.
type SettingsSource interface {
	Current(ctx context.Context) (settings.Values, error)
}

// Passwords hashes and checks passwords (a *password.Limited: every
// hash runs in one of the gateway's bounded hashing slots, ErrBusy when
// none is free).
type Passwords interface {
	Hash(password string) (string, error)
	Verify(encoded, password string) (bool, error)
}

// Box seals the just-generated recovery codes held in the session.
type Box interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Auditor records account changes.
type Auditor interface {
	Record(ctx context.Context, ev store.AuditEvent)
}

// Pages renders pages and errors.
type Pages interface {
	Render(w http.ResponseWriter, r *http.Request, status int, name string, data any)
	RenderError(w http.ResponseWriter, r *http.Request, err error)
}

// Deps are the collaborators of the Handler.
type Deps struct {
	Users    Users
	Sessions Sessions
	// Regulator reserves every proof attempt before its check.
	Regulator Regulator
	Settings  SettingsSource
	// SessionManager saves, rotates and sets the cookie of the current
	// session.
	SessionManager *session.Manager
	TOTP           *factor.TOTP
	// Resync resynchronises the user's authenticator clock (nil: the page
	// is not offered).
	Resync   Resyncer
	Recovery *factor.Recovery
	// Passkeys registers passkeys (nil: unavailable, Options.
	// PasskeysUnavailable says why).
	Passkeys  Registrar
	Box       Box
	Passwords Passwords
	Audit     Auditor
	Pages     Pages
	// CSRFToken returns the token for forms; default middleware.CSRFToken.
	CSRFToken func(r *http.Request) string
	Logger    zerolog.Logger
	Now       func() time.Time
}

// Options tune the handler. Zero values take the defaults.
type Options struct {
	// DefaultIssuer is shown in authenticator apps when the Issuer
	// setting is empty.
	DefaultIssuer string
	// MinPasswordLen is the shortest new password accepted (default 8).
	MinPasswordLen int
	// RedirectHosts returns the hosts (besides the request's) that an rd
	// may name in full, as at sign-in (nil: none).
	RedirectHosts func() []string
	// PasskeysUnavailable is shown on the account page when Deps.
	// Passkeys is nil: why passkeys cannot be used here.
	PasskeysUnavailable string
	// DownloadFor is how long just-generated recovery codes stay
	// downloadable (default 10 minutes).
	DownloadFor time.Duration
}

// Handler serves the account pages.
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
	if d.CSRFToken == nil {
		d.CSRFToken = middleware.CSRFToken
	}
	if o.MinPasswordLen <= 0 {
		o.MinPasswordLen = 8
	}
	if o.DownloadFor <= 0 {
		o.DownloadFor = 10 * time.Minute
	}
	h := &Handler{d: d, o: o, mux: http.NewServeMux()}
	h.handle("GET "+PathOverview, h.overview)
	h.handle("GET "+PathSetup, h.setupPage)
	h.handle("POST "+PathSetup, h.setupSubmit)
	h.handle("POST "+PathRemove, h.remove)
	h.handle("GET "+PathResync, h.resyncPage)
	h.handle("POST "+PathResync, h.resyncSubmit)
	h.handle("POST "+PathGenerate, h.generate)
	h.handle("GET "+PathFirstCodes, h.firstCodes)
	h.handle("GET "+PathDownload, h.download)
	h.handle("GET "+PathPassword, h.passwordPage)
	h.handle("POST "+PathPassword, h.passwordSubmit)
	h.handle("POST "+PathPasskeyBegin, h.passkeyBegin)
	h.handle("POST "+PathPasskeyAdd, h.passkeyAdd)
	h.handle("POST "+PathPasskeyRename, h.passkeyRename)
	h.handle("POST "+PathPasskeyRemove, h.passkeyRemove)
	h.handle("POST "+PathRevoke, h.revoke)
	h.handle("POST "+PathRevokeOthers, h.revokeOthers)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusNotFound, "There is nothing here.", nil))
	})
	return h
}

// Handler returns the handler of /.authgate/account and below. Mount it
// behind auth's RequireUser and the CSRF middleware.
func (h *Handler) Handler() http.Handler { return h.mux }

// handle registers fn, which receives the signed-in user. A request
// without one (the handler mounted without RequireUser) is refused.
func (h *Handler) handle(pattern string, fn func(w http.ResponseWriter, r *http.Request, c auth.Current)) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, ok := auth.CurrentFrom(r.Context())
		if !ok {
			h.d.Pages.RenderError(w, r, web.Errorf(http.StatusUnauthorized, "Please sign in first.", errors.New("account: no signed-in user in context")))
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				h.d.Pages.RenderError(w, r, web.Errorf(http.StatusBadRequest, "The form could not be read.", err))
				return
			}
		}
		fn(w, r, c)
	})
}

func (h *Handler) log(r *http.Request) *zerolog.Logger {
	if l := zerolog.Ctx(r.Context()); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &h.d.Logger
}

func (h *Handler) common(r *http.Request, title string) templates.Common {
	return templates.Common{Title: title, CSRFToken: h.d.CSRFToken(r), Product: templates.Product}
}

func nav(c auth.Current) templates.Nav {
	return templates.Nav{User: c.User.Name, IsAdmin: c.User.Role == store.RoleAdmin, Active: "account"}
}

func (h *Handler) now() time.Time { return h.d.Now().UTC() }

func unavailable(cause error) *web.Error {
	return web.Errorf(http.StatusServiceUnavailable, msgUnavailable, cause)
}

func secure(r *http.Request) bool {
	if c, ok := middleware.ClientFrom(r.Context()); ok {
		return c.Scheme == "https"
	}
	return r.TLS != nil
}

// record writes an audit event about the signed-in user's own account.
func (h *Handler) record(r *http.Request, c auth.Current, action, detail string) {
	h.d.Audit.Record(r.Context(), store.AuditEvent{Actor: c.User.Name, Action: action, Target: c.User.Name, Detail: detail})
}

// publicID is the short id a session is shown and revoked by (the same
// prefix users.SessionInfo shows).
func publicID(idHash string) string {
	if len(idHash) < sessionIDLen {
		return idHash
	}
	return idHash[:sessionIDLen]
}

func validPublicID(s string) bool {
	if len(s) != sessionIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// errAccountMoved: the account's epoch is no longer the one this
// session was created under (another session changed it meanwhile).
var errAccountMoved = errors.New("account: the account changed after this session was created")

// changeAndMoveOn is the one way the account pages change an account's
// sign-in (password, authenticator): it moves this session to a new id
// (session.Manager.Move) and, as part of the move, applies fn to the
// user's record and moves the account's epoch on, in one atomic update
// that first checks the account is still at this session's epoch. So the
// change is made only by the request that owns this session at that
// moment, and only if nobody changed the account since the session was
// created (of two changes racing from two sessions, one wins); moving
// the epoch ends every other session of the account at once, on every
// instance (session.Valid). upd adjusts the new session, which belongs
// to the new epoch; it is given the user as written.
//
// It sets the new cookie and returns the new session and the user as
// written. When it returns ok false the request is answered: the session
// is gone (another request moved or ended it, or the account changed:
// sign in again), or the store failed (503).
func (h *Handler) changeAndMoveOn(w http.ResponseWriter, r *http.Request, c auth.Current, fn func(*store.User) error, upd func(*store.Session, store.User)) (store.Session, store.User, bool) {
	var nu store.User
	commit := func(ctx context.Context) error {
		var err error
		nu, err = h.d.Users.UpdateUser(ctx, c.User.Name, func(x *store.User) error {
			if x.AuthEpoch != c.Session.UserEpoch {
				return errAccountMoved
			}
			if err := fn(x); err != nil {
				return err
			}
			x.AuthEpoch++
			return nil
		})
		return err
	}
	id, ns, err := h.d.SessionManager.Move(r.Context(), c.Session, commit, func(s *store.Session) {
		s.UserEpoch = nu.AuthEpoch
		if upd != nil {
			upd(s, nu)
		}
	})
	switch {
	case err == nil:
		h.d.SessionManager.SetCookie(w, id, ns, secure(r))
		return ns, nu, true
	case errors.Is(err, session.ErrNoSession):
		h.log(r).Warn().Err(err).Str("user", c.User.Name).Msg("account: this session ended meanwhile; nothing changed")
		h.d.SessionManager.ClearCookie(w, secure(r))
		http.Redirect(w, r, "/.authgate/login", http.StatusSeeOther)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		h.d.SessionManager.ClearCookie(w, secure(r))
		h.d.Pages.RenderError(w, r, unavailable(err))
	case errors.Is(err, passkey.ErrExists):
		h.d.SessionManager.ClearCookie(w, secure(r))
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusConflict, msgPasskeyExists, err))
	case errors.Is(err, errAccountMoved), errors.Is(err, errPasswordMoved), errors.Is(err, errNoTOTP),
		errors.Is(err, errNoPasskey), errors.Is(err, passkey.ErrChallenge):
		// The session was taken for the change, which did not happen:
		// the account changed meanwhile. Sign in again.
		h.log(r).Warn().Err(err).Str("user", c.User.Name).Msg("account: the account changed meanwhile; this session is void")
		h.d.SessionManager.ClearCookie(w, secure(r))
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusConflict, msgAccountMoved, err))
	default:
		h.d.SessionManager.ClearCookie(w, secure(r))
		h.d.Pages.RenderError(w, r, unavailable(err))
	}
	return store.Session{}, store.User{}, false
}

// accountMoved answers errAccountMoved from a change that does not move
// the session (recovery codes): this session is void, the user signs in
// again. It reports whether it answered.
func (h *Handler) accountMoved(w http.ResponseWriter, r *http.Request, c auth.Current, err error) bool {
	if !errors.Is(err, errAccountMoved) {
		return false
	}
	h.log(r).Warn().Str("user", c.User.Name).Msg("account: the account changed meanwhile; this session is void")
	_ = h.d.SessionManager.Destroy(r.Context(), c.Session.IDHash)
	h.d.SessionManager.ClearCookie(w, secure(r))
	h.d.Pages.RenderError(w, r, web.Errorf(http.StatusConflict, msgAccountMoved, err))
	return true
}

// revokeOtherSessions ends every session of user except keep and returns
// how many it ended.
func (h *Handler) revokeOtherSessions(ctx context.Context, user, keep string) (int, error) {
	list, err := h.d.Sessions.ListUserSessions(ctx, user)
	if err != nil {
		return 0, fmt.Errorf("account: list sessions: %w", err)
	}
	n := 0
	for _, s := range list {
		if s.IDHash == keep || s.User != user {
			continue
		}
		if err := h.d.Sessions.DeleteSession(ctx, s.IDHash); err != nil {
			return n, fmt.Errorf("account: delete session: %w", err)
		}
		n++
	}
	return n, nil
}

// redirect sends the user to the overview with a notice.
func redirectDone(w http.ResponseWriter, r *http.Request, done string) {
	http.Redirect(w, r, PathOverview+"?done="+done, http.StatusSeeOther)
}

// notices are the messages the overview shows after an action (the query
// only selects one; it never carries text).
var notices = map[string]string{
	"enrolled":        "Two-factor authentication is on.",
	"reconfigured":    "Your new authenticator is set up; the old one no longer works.",
	"removed":         "Two-factor authentication was removed. Your other sessions were signed out.",
	"password":        "Your password was changed. Your other sessions were signed out.",
	"revoked":         "The session was signed out.",
	"revoked-others":  "All your other sessions were signed out.",
	"not-enrolled":    msgNotEnrolled,
	"resynced":        "Your authenticator's clock is resynchronised: its codes are accepted again.",
	"passkey-added":   "The key is registered: it can be used at sign-in. Your other sessions were signed out.",
	"passkey-renamed": "The key was renamed.",
	"passkey-removed": "The key was removed. Your other sessions were signed out.",
}

// nextURL returns rd if it is a safe place to continue to, else "":
// a path on this gateway, or an absolute URL on the request's host or
// one of Options.RedirectHosts (forward-auth sends absolute ones, e.g.
// through enrolment to the first recovery codes), as auth.SafeRedirect
// decides at sign-in.
func (h *Handler) nextURL(r *http.Request, rd string) string {
	if rd == "" {
		return ""
	}
	var hosts []string
	if h.o.RedirectHosts != nil {
		hosts = h.o.RedirectHosts()
	}
	safe := auth.SafeRedirect(rd, auth.Client(r).Host, hosts)
	if safe != rd {
		return ""
	}
	return safe
}
