package signin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/regulation"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/middleware"
)

// verifyPage asks for the code: after the password (pending session) or as
// a step-up for a complete session that has not passed 2FA yet.
func (h *Handler) verifyPage(w http.ResponseWriter, r *http.Request) {
	_, s, u, ok := h.secondFactorContext(w, r)
	if !ok {
		return
	}
	if !u.HasSecondFactor() {
		http.Redirect(w, r, auth.EnrollPage+rdQuery(r.URL.Query().Get("rd")), http.StatusSeeOther)
		return
	}
	h.renderVerify(w, r, s, u, h.afterSecondFactor(r, s, r.URL.Query().Get("rd")), "", http.StatusOK)
}

// renderVerify renders the second-factor page with what the account
// can prove: a code of its authenticator app, one of its passkeys.
func (h *Handler) renderVerify(w http.ResponseWriter, r *http.Request, s store.Session, u store.User, rd, errMsg string, status int) {
	d := verifyData{Common: h.common(r, "Two-factor authentication"), User: u.Name, RD: rd,
		TOTP: u.HasTOTP(), Passkey: h.d.Passkeys != nil && len(u.Passkeys) > 0, StepUp: s.Stage == store.StageFull}
	d.Error = errMsg
	if d.Passkey {
		d.PasskeyScript = true
		middleware.AllowOwnScript(w)
	}
	h.d.Pages.Render(w, r, status, "verify", d)
}

func (h *Handler) verifySubmit(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.ParseForm() == nil && r.PostForm.Has("passkey") {
		h.passkeySubmit(w, r)
		return
	}
	s, u, rd, a := h.secondFactorSubmit(w, r, factorTOTP)
	if a == nil {
		return
	}
	if !u.HasTOTP() {
		_ = a.Cancel(r.Context())
		if u.HasSecondFactor() {
			h.renderVerify(w, r, s, u, rd, "", http.StatusOK)
			return
		}
		http.Redirect(w, r, auth.EnrollPage, http.StatusSeeOther)
		return
	}
	res, err := h.checkCode(r, u.Name, u.TOTPSecret, u.TOTPDriftSteps, r.PostForm.Get("code"))
	if err != nil {
		h.codeFailed(w, r, s, a, u, "verify", rd, err)
		return
	}
	h.passed(r, a)
	now := h.d.Now().UTC()
	if _, err := h.d.Users.UpdateUser(r.Context(), u.Name, func(x *store.User) error {
		x.TOTPLastUsedAt = now
		// A code one step off-centre nudges the drift (RFC 6238 §6),
		// unless a resync changed it meanwhile.
		if x.TOTPDriftSteps == u.TOTPDriftSteps {
			x.TOTPDriftSteps = res.Drift
		}
		return nil
	}); err != nil {
		h.log(r).Warn().Err(err).Str("user", u.Name).Msg("verify: last-used time not stored")
	}
	h.completeLogin(w, r, s, rd, "totp", res.Step, nil)
}

// secondFactorContext loads the session and user for verify/enroll. It
// answers the request itself (redirect to login) when there is none.
func (h *Handler) secondFactorContext(w http.ResponseWriter, r *http.Request) (string, store.Session, store.User, bool) {
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			h.d.Pages.RenderError(w, r, badRequest(err))
			return "", store.Session{}, store.User{}, false
		}
	}
	sg, err := h.d.Loader.SignedIn(r, secure(r))
	if err != nil {
		if !isNoSession(err) {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return "", store.Session{}, store.User{}, false
		}
		h.d.Sessions.ClearCookie(w, secure(r))
		http.Redirect(w, r, auth.LoginPage, http.StatusSeeOther)
		return "", store.Session{}, store.User{}, false
	}
	return sg.ID, sg.Session, sg.User, true
}

// secondFactorSubmit is the common start of every second-factor POST: the
// session and user, where to go afterwards, and the attempt reserved
// before any code is looked at. It answers the request itself when the
// attempt is nil; factor names the proof for the metrics.
func (h *Handler) secondFactorSubmit(w http.ResponseWriter, r *http.Request, factor string) (store.Session, store.User, string, *regulation.Attempt) {
	_, s, u, ok := h.secondFactorContext(w, r)
	if !ok {
		return store.Session{}, store.User{}, "", nil
	}
	rd := h.afterSecondFactor(r, s, r.PostForm.Get("rd"))
	a := h.reserve(w, r, factor, u.Name, &s, h.errorPage(w, r))
	if a == nil {
		return store.Session{}, store.User{}, "", nil
	}
	return s, u, rd, a
}

// afterSecondFactor is where to go once the code is accepted: the target
// remembered at login, else the (validated) rd of this request.
func (h *Handler) afterSecondFactor(r *http.Request, s store.Session, rd string) string {
	if s.Stage == store.StagePending && s.Redirect != "" {
		return h.redirectTarget(r, s.Redirect)
	}
	return h.redirectTarget(r, rd)
}

// checkCode verifies code against the sealed secret around the user's
// drift and consumes its step.
func (h *Handler) checkCode(r *http.Request, user string, sealed []byte, drift int, code string) (factor.Result, error) {
	return h.d.TOTP.Check(r.Context(), user, sealed, drift, code)
}

// codeFailed answers an invalid code with the one public message. The
// attempt stays counted; once the session has used its tries, its next
// attempt is refused before any check and ends it (reserve).
func (h *Handler) codeFailed(w http.ResponseWriter, r *http.Request, s store.Session, a *regulation.Attempt, u store.User, page, rd string, cause error) {
	user := u.Name
	reason := "invalid_code"
	switch {
	case errors.Is(cause, factor.ErrDrifted):
		// The code matched the secret at a clock offset: proof of the
		// secret from a wrong clock, recorded as drift evidence (by the
		// check), never counted as a guess.
		reason = "drifted_code"
	case errors.Is(cause, factor.ErrReplayed):
		reason = "replayed_code"
	case errors.Is(cause, errPasskeyRefused):
		reason = "passkey_refused"
	case errors.Is(cause, errRecoveryUsed):
		// A recovery code that matches none left is a wrong code too,
		// counted towards a ban like any other.
	case !errors.Is(cause, factor.ErrInvalid):
		reason = "code_check_error"
		h.log(r).Error().Err(cause).Str("user", user).Msg("second factor check failed")
	}
	h.decision(r, user, "", "deny", reason)
	h.audit(r, audit.LoginFailed, user, strings.ReplaceAll(reason, "_", " "))
	switch reason {
	case "drifted_code":
		h.attempt(pageFactor(page), resultFailure)
		_ = a.Cancel(r.Context())
	case "code_check_error":
		// Not decided, but counted all the same: a store that fails
		// must not become a way around the limit.
		h.attempt(pageFactor(page), resultError)
		if h.failed(w, r, a, h.errorPage(w, r)) {
			return
		}
	default:
		h.attempt(pageFactor(page), resultFailure)
		if h.failed(w, r, a, h.errorPage(w, r)) {
			return
		}
	}
	switch page {
	case "enroll":
		msg := msgBadCode
		if errors.Is(cause, errPasskeyRefused) {
			msg = msgPasskeyNotRegistered
		}
		h.renderEnroll(w, r, s, user, rd, msg, http.StatusUnauthorized)
		return
	case "recovery":
		h.renderRecovery(w, r, user, rd, msgBadRecovery, http.StatusUnauthorized)
		return
	case "passkey":
		h.renderVerify(w, r, s, u, rd, msgBadPasskey, http.StatusUnauthorized)
		return
	}
	h.renderVerify(w, r, s, u, rd, msgBadCode, http.StatusUnauthorized)
}

// accountChange is what a completed second step changes in the account
// (an enrolment stores the authenticator, a recovery code is used up),
// committed only by the request that owns the session at that moment
// (session.Manager.Move). It returns the user's AuthEpoch the new
// session belongs to.
type accountChange func(ctx context.Context) (epoch int64, err error)

// completeLogin moves the session to a full, 2FA-verified one under a new
// id, committing change (nil: nothing) on the way, and sends the user on.
// If another request moved or ended the session first, or the change
// finds the account changed meanwhile, nothing is changed or created and
// the user signs in again (fail closed).
func (h *Handler) completeLogin(w http.ResponseWriter, r *http.Request, s store.Session, rd, how string, step int64, change accountChange) {
	now := h.d.Now().UTC()
	epoch := s.UserEpoch
	var commit func(context.Context) error
	if change != nil {
		commit = func(ctx context.Context) (err error) {
			epoch, err = change(ctx)
			return err
		}
	}
	id, ns, err := h.d.Sessions.Move(r.Context(), s, commit, func(x *store.Session) {
		x.Stage = store.StageFull
		x.TwoFactor = true
		x.TwoFactorAt = now
		x.Redirect = ""
		x.PendingTOTPSecret = nil
		x.PasskeyChallenge = nil
		x.UserEpoch = epoch
	})
	if errors.Is(err, session.ErrNoSession) || errors.Is(err, errAccountMoved) {
		h.log(r).Warn().Err(err).Str("user", s.User).Msg("second factor accepted, but the sign-in or the account changed meanwhile")
		h.attempt(howFactor(how), resultError)
		h.d.Sessions.ClearCookie(w, secure(r))
		http.Redirect(w, r, auth.LoginPage, http.StatusSeeOther)
		return
	}
	if err != nil {
		h.attempt(howFactor(how), resultError)
		h.d.Sessions.ClearCookie(w, secure(r)) // the session is gone
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	h.d.Sessions.SetCookie(w, id, ns, secure(r))
	h.attempt(howFactor(how), resultSuccess)
	h.succeeded(r, s.User)
	switch {
	case how == "recovery_code": // recorded by the caller, flagged
	case s.Stage == store.StageFull:
		h.audit(r, audit.StepUp, s.User, how)
	default:
		h.audit(r, audit.Login, s.User, how)
	}
	h.log(r).Info().Str("event", "auth").Str("user", s.User).Str("result", "login").Str("reason", how).Int64("step", step).Msg("second factor accepted")
	middleware.SetUser(r.Context(), s.User)
	http.Redirect(w, r, rd, http.StatusSeeOther)
}

func rdQuery(rd string) string {
	if rd == "" {
		return ""
	}
	return "?rd=" + url.QueryEscape(rd)
}
