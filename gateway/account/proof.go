package account

import (
	"context"
	"errors"
	"net/http"

	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/regulation"
)

// Regulator reserves every proof attempt before its check (a
// *regulation.Regulator): the account pages count against the same
// limits as the sign-in pages (per user and per session).
type Regulator interface {
	Reserve(ctx context.Context, proof string, c regulation.Claim) (*regulation.Attempt, error)
}

// Proofs named to the regulator (and the factor-check metric).
const (
	proofPassword = "password"
	proofTOTP     = "totp"
)

// refusal is how a page answers an attempt that was not checked.
type refusal struct {
	status int
	msg    string
}

// reserve reserves one attempt at proving factor for the signed-in user
// before anything is checked. When it is refused it returns nil and
// either answers the request itself (the session is spent: it is ended
// and sent to sign in; the counters cannot be read: 503) or returns the
// refusal for the page to show (during a ban).
func (h *Handler) reserve(w http.ResponseWriter, r *http.Request, c auth.Current, factor string) (*regulation.Attempt, *refusal) {
	// No address: a signed-in user's failures belong to the user and the
	// session (an address ban never stops someone already signed in).
	cl := regulation.Claim{User: c.User.Name, Session: c.Session.IDHash}
	a, err := h.d.Regulator.Reserve(r.Context(), factor, cl)
	switch {
	case err == nil:
		return a, nil
	case errors.As(err, new(*regulation.BannedError)):
		h.log(r).Warn().Str("user", c.User.Name).Msg("account: too many wrong passwords or codes")
		return nil, &refusal{http.StatusTooManyRequests, msgTooMany}
	case errors.Is(err, regulation.ErrSessionSpent):
		h.log(r).Warn().Str("user", c.User.Name).Msg("account: too many wrong passwords or codes in this session; it is ended")
		_ = h.d.SessionManager.Destroy(r.Context(), c.Session.IDHash)
		h.d.SessionManager.ClearCookie(w, secure(r))
		http.Redirect(w, r, "/.authgate/login", http.StatusSeeOther)
		return nil, nil
	default:
		h.d.Pages.RenderError(w, r, unavailable(err))
		return nil, nil
	}
}

// proofFailed records a wrong password or code (the reservation stays).
func (h *Handler) proofFailed(r *http.Request, a *regulation.Attempt, user, reason string) {
	h.log(r).Warn().Str("event", "account").Str("user", user).Str("reason", reason).Msg("account: proof refused")
	if _, err := a.Failed(r.Context()); err != nil {
		h.log(r).Error().Err(err).Str("user", user).Msg("account: failure not recorded")
	}
}

// proofPassed gives the reservation back after a right proof.
func (h *Handler) proofPassed(r *http.Request, a *regulation.Attempt, user string) {
	if err := a.Passed(r.Context()); err != nil {
		h.log(r).Warn().Err(err).Str("user", user).Msg("account: attempt not given back")
	}
}

// verifyPassword checks pw against the user's stored hash through the
// bounded hasher, inside the reserved attempt a. It reports the outcome;
// busy is true (and the attempt given back) when no hashing slot was
// free, so the caller answers "busy" rather than "wrong".
func (h *Handler) verifyPassword(r *http.Request, a *regulation.Attempt, c auth.Current, pw string) (ok, busy bool) {
	if pw == "" || len(pw) > maxPasswordLen {
		h.proofFailed(r, a, c.User.Name, "wrong_password")
		return false, false
	}
	ok, err := h.d.Passwords.Verify(c.User.PasswordHash, pw)
	if errors.Is(err, password.ErrBusy) {
		_ = a.Cancel(r.Context())
		return false, true
	}
	if err != nil {
		h.log(r).Error().Err(err).Str("user", c.User.Name).Msg("account: stored password hash unusable")
	}
	if err != nil || !ok {
		h.proofFailed(r, a, c.User.Name, "wrong_password")
		return false, false
	}
	h.proofPassed(r, a, c.User.Name)
	return true, false
}

// needSecondFactor sends a session that has not passed a second factor
// to pass one (or to set up an authenticator when the account has none)
// before an action that changes the account's 2FA, and reports whether
// it did.
func (h *Handler) needSecondFactor(w http.ResponseWriter, r *http.Request, c auth.Current, back string) bool {
	loc := auth.SecondFactorOwed(c, back)
	if loc == "" {
		return false
	}
	h.log(r).Info().Str("user", c.User.Name).Str("path", r.URL.Path).Msg("account: a second factor is needed first")
	http.Redirect(w, r, loc, http.StatusSeeOther)
	return true
}
