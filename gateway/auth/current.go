package auth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/audit"
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

// RequireUser lets through only requests with a complete session of an
// existing user, putting both in the context (CurrentFrom) and the user
// as the audit actor. Anyone else is sent to the login page (browsers) or
// gets 401. A user who must change a reset password is sent to
// PasswordPage first.
func (h *Handler) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, s, err := h.currentSession(r)
		if err != nil {
			if !isNoSession(err) {
				h.d.Pages.RenderError(w, r, unavailable(err))
				return
			}
			h.challenge(w, r, "/.authgate/login", r.URL.RequestURI())
			return
		}
		if s.Stage != store.StageFull {
			h.challenge(w, r, "/.authgate/verify", "")
			return
		}
		u, err := h.d.Users.GetUser(r.Context(), s.User)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				h.d.Pages.RenderError(w, r, unavailable(err))
				return
			}
			_ = h.d.Sessions.Destroy(r.Context(), s.IDHash)
			h.challenge(w, r, "/.authgate/login", "")
			return
		}
		if u.MustChangePassword && r.URL.Path != PasswordPage {
			http.Redirect(w, r, PasswordPage+"?rd="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		ctx := WithCurrent(r.Context(), Current{Session: s, User: u})
		ctx = audit.WithActor(ctx, u.Name, client(r).IP.String())
		middleware.SetUser(r.Context(), u.Name)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// FreshSecondFactor reports whether c passed its second factor within
// window of now: admin pages ask for a new code otherwise (step-up).
// A user without 2FA has nothing to step up with and passes.
func FreshSecondFactor(c Current, now time.Time, window time.Duration) bool {
	if !c.User.HasTOTP() {
		return true
	}
	return c.Session.TwoFactor && now.Sub(c.Session.TwoFactorAt) < window
}

// StepUpURL is where to send a user for a fresh code before returning to
// rd (a path on this gateway).
func StepUpURL(rd string) string {
	if !strings.HasPrefix(rd, "/") || strings.HasPrefix(rd, "//") {
		rd = "/.authgate/account"
	}
	return "/.authgate/verify?stepup=1&rd=" + url.QueryEscape(rd)
}
