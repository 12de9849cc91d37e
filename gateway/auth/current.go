package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/middleware"
)

// PasswordPage is where a user whose password was reset must go first.
const PasswordPage = "/.authgate/account/password"

// FirstRecoveryCodesPage is where sign-in enrolment continues: the
// account pages make the user's first recovery codes there, show them once
// and lead on to ?rd=.
const FirstRecoveryCodesPage = "/.authgate/account/recovery/first"

// Current is the signed-in user of a request to a gateway page.
type Current struct {
	Session store.Session
	User    store.User
	// Mode is the 2FA mode the session was judged under.
	Mode string
}

type currentKey struct{}

// CurrentFrom returns the signed-in user set by RequireUser.
func CurrentFrom(ctx context.Context) (Current, bool) {
	c, ok := ctx.Value(currentKey{}).(Current)
	return c, ok
}

// WithCurrent returns ctx carrying c (RequireUser does this; tests of
// handlers behind it may too).
func WithCurrent(ctx context.Context, c Current) context.Context {
	return context.WithValue(ctx, currentKey{}, c)
}

// SignedIn loads the request's session and its user and checks that the
// session may still act for the user under the current 2FA mode
// (session.Valid): the one place the gate, forward auth, RequireUser and
// the second-factor pages (gateway/signin) read a session from. A
// session that is void (its account changed, the mode was raised, the
// user is gone) is ended. Errors: an error matching session.ErrNoSession
// when there is no usable session (the caller challenges), any other
// when the store or settings cannot be read (the caller answers 503).
func (g *Gate) SignedIn(r *http.Request, secure bool) (session.Signed, error) {
	id, s, err := g.d.Sessions.FromRequest(r, secure)
	if err != nil {
		return session.Signed{}, err
	}
	u, err := g.d.Users.GetUser(r.Context(), s.User)
	if errors.Is(err, store.ErrNotFound) {
		_ = g.d.Sessions.Destroy(r.Context(), s.IDHash)
		return session.Signed{}, fmt.Errorf("%w: user %q no longer exists", session.ErrNoSession, s.User)
	}
	if err != nil {
		return session.Signed{}, err
	}
	vals, err := g.d.Settings.Current(r.Context())
	if err != nil {
		return session.Signed{}, err
	}
	if err := session.Valid(s, u, vals.Mode); err != nil {
		_ = g.d.Sessions.Destroy(r.Context(), s.IDHash)
		return session.Signed{}, err
	}
	return session.Signed{ID: id, Session: s, User: u, Mode: vals.Mode}, nil
}

// RequireUser lets through only requests with a complete session of an
// existing user, putting both in the context (CurrentFrom) and the user
// as the audit actor. Anyone else is sent to the login page (browsers) or
// gets 401. A user who must change a reset password is sent to
// PasswordPage first.
func (g *Gate) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sg, err := g.SignedIn(r, secure(r))
		if err != nil {
			if !isNoSession(err) {
				g.d.Errors.RenderError(w, r, unavailable(err))
				return
			}
			g.challenge(w, r, LoginPage, r.URL.RequestURI())
			return
		}
		s, u := sg.Session, sg.User
		if s.Stage != store.StageFull {
			g.challenge(w, r, VerifyPage, "")
			return
		}
		if u.MustChangePassword && r.URL.Path != PasswordPage {
			http.Redirect(w, r, PasswordPage+"?rd="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		ctx := WithCurrent(r.Context(), Current{Session: s, User: u, Mode: sg.Mode})
		ctx = audit.WithActor(ctx, u.Name, Client(r).IP.String())
		middleware.SetUser(r.Context(), u.Name)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// FreshSecondFactor reports whether c passed its second factor within
// window of now: admin pages ask for a new code otherwise (step-up).
// Only in mode off does a user without 2FA pass without one (there is
// nothing to step up with); in any other mode the control plane is never
// weaker than what it protects (see AdminAccess).
func FreshSecondFactor(c Current, now time.Time, window time.Duration) bool {
	if !c.User.HasSecondFactor() && c.Mode == settings.ModeOff {
		return true
	}
	return c.Session.TwoFactor && now.Sub(c.Session.TwoFactorAt) < window
}

// SecondFactorOwed says where a signed-in user must go before a page
// that needs a session that passed a second factor (the admin area
// outside mode off, changes to an account's authenticator): "" when c
// passed one; the authenticator set-up when the account has none; else
// the step-up code page. rd is where to come back to.
func SecondFactorOwed(c Current, rd string) string {
	switch {
	case c.Session.TwoFactor:
		return ""
	case !c.User.HasSecondFactor():
		return SetupPage + "?rd=" + url.QueryEscape(rd)
	default:
		return StepUpURL(rd)
	}
}

// SetupPage is the account page that sets up an authenticator.
const SetupPage = "/.authgate/account/2fa/setup"

// StepUpURL is where to send a user for a fresh code before returning to
// rd (a path on this gateway).
func StepUpURL(rd string) string {
	if !strings.HasPrefix(rd, "/") || strings.HasPrefix(rd, "//") {
		rd = "/.authgate/account"
	}
	return VerifyPage + "?stepup=1&rd=" + url.QueryEscape(rd)
}
