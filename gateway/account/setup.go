package account

import (
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/templates"
)

var errNoTOTP = errors.New("account: user has no second factor")

// setupPage shows a new secret to set up or reconfigure the
// authenticator. The secret stays sealed in the session until a code
// from it confirms it; the user's current secret is untouched until then.
//
// Replacing an authenticator needs a session that passed the current one;
// a first set-up needs only a valid session (one created after the last
// change to the account and to the 2FA mode: RequireUser checked that).
func (h *Handler) setupPage(w http.ResponseWriter, r *http.Request, c auth.Current) {
	if c.User.HasSecondFactor() && h.needSecondFactor(w, r, c, PathSetup) {
		return
	}
	s := c.Session
	if len(s.PendingTOTPSecret) == 0 {
		sealed, err := h.d.TOTP.NewSecret(c.User.Name)
		if err != nil {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
		s.PendingTOTPSecret = sealed
		if err := h.d.SessionManager.Save(r.Context(), s); err != nil {
			if errors.Is(err, session.ErrNoSession) {
				http.Redirect(w, r, "/.authgate/login", http.StatusSeeOther)
				return
			}
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
	}
	h.renderSetup(w, r, c, s.PendingTOTPSecret, http.StatusOK, "")
}

func (h *Handler) renderSetup(w http.ResponseWriter, r *http.Request, c auth.Current, sealed []byte, status int, errMsg string) {
	vals, err := h.d.Settings.Current(r.Context())
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	issuer := vals.Issuer
	if issuer == "" {
		issuer = h.o.DefaultIssuer
	}
	en, err := h.d.TOTP.Describe(c.User.Name, issuer, sealed)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	title := "Set up two-factor authentication"
	if c.User.HasTOTP() {
		title = "Reconfigure two-factor authentication"
	}
	opts := h.d.TOTP.Options()
	d := templates.AccountSetupPage{
		Common:      h.common(r, title),
		Nav:         nav(c),
		User:        c.User.Name,
		Issuer:      en.Issuer,
		QRDataURI:   template.URL(en.QRDataURI), //nolint:gosec // built by the gateway from its own secret
		KeyGrouped:  en.KeyGrouped,
		OTPAuthURL:  template.URL(en.KeyURL), //nolint:gosec // built by the gateway
		Digits:      opts.Digits,
		Period:      int(opts.Period),
		Reconfigure: c.User.HasTOTP(),
		ModeOff:     vals.Mode == settings.ModeOff,
		RD:          h.nextURL(r, r.FormValue("rd")),
	}
	d.AfterRecovery = r.FormValue("after") == "recovery" && d.Reconfigure
	d.Error = errMsg
	h.d.Pages.Render(w, r, status, templates.PageAccountSetup, d)
}

// setupSubmit confirms the pending secret with a code from it. At the
// first set-up the user also gets recovery codes, shown once.
func (h *Handler) setupSubmit(w http.ResponseWriter, r *http.Request, c auth.Current) {
	ctx := r.Context()
	if c.User.HasSecondFactor() && h.needSecondFactor(w, r, c, PathSetup) {
		return
	}
	pending := c.Session.PendingTOTPSecret
	if len(pending) == 0 {
		http.Redirect(w, r, PathSetup, http.StatusSeeOther)
		return
	}
	a, refused := h.reserve(w, r, c, proofTOTP)
	if a == nil {
		if refused != nil {
			h.renderSetup(w, r, c, pending, refused.status, refused.msg)
		}
		return
	}
	res, err := h.d.TOTP.Check(ctx, c.User.Name, pending, 0, r.PostForm.Get("code"))
	if err != nil {
		h.proofFailed(r, a, c.User.Name, "setup_code")
		if !errors.Is(err, factor.ErrInvalid) && !errors.Is(err, factor.ErrReplayed) {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
		h.renderSetup(w, r, c, pending, http.StatusUnprocessableEntity, msgBadCode)
		return
	}
	h.proofPassed(r, a, c.User.Name)
	now := h.now()
	// first: the account had no authenticator app (else this replaces it).
	first := false
	ns, u, nf, ok := h.addSecondFactor(w, r, c, func(x *store.User) error {
		first = !x.HasTOTP()
		x.TOTPSecret = append([]byte(nil), pending...)
		x.TOTPEnrolledAt = now
		x.TOTPLastUsedAt = now
		x.TOTPDriftSteps = res.Drift // the new device's, not the old one's
		return nil
	}, func(s *store.Session) { s.PendingTOTPSecret = nil })
	if !ok {
		return
	}
	n, err := h.revokeOtherSessions(ctx, u.Name, ns.IDHash)
	if err != nil {
		h.log(r).Error().Err(err).Str("user", u.Name).Msg("account: other sessions not all deleted after a 2FA set-up (they are void anyway)")
	}
	signedOut := "; " + plural(n, "other session") + " signed out"
	if !first {
		h.record(r, c, audit.TOTPReconfigured, signedOut[2:])
		if rd := h.nextURL(r, r.PostForm.Get("rd")); rd != "" {
			http.Redirect(w, r, rd, http.StatusSeeOther)
			return
		}
		redirectDone(w, r, "reconfigured")
		return
	}
	h.record(r, c, audit.TOTPEnrolled, signedOut[2:])
	h.showFirstCodes(w, r, c, ns, u, nf, "at set-up", "enrolled")
}

// newFactor is what adding a second factor gave the account: when it
// had none before (first), its first recovery codes, stored with the
// factor and held sealed in the session for download.
type newFactor struct {
	first bool
	codes []string
	held  []byte
}

// addSecondFactor adds a second factor to the account (add, inside the
// atomic update of changeAndMoveOn) and moves this session on to one
// that passed a second factor (upd adjusts it further). An account that
// had no second factor gets its first recovery codes with it.
func (h *Handler) addSecondFactor(w http.ResponseWriter, r *http.Request, c auth.Current, add func(*store.User) error, upd func(*store.Session)) (store.Session, store.User, newFactor, bool) {
	codes, hashes, err := h.d.Recovery.Generate(c.User.Name)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return store.Session{}, store.User{}, newFactor{}, false
	}
	now := h.now()
	nf := newFactor{codes: codes}
	ns, u, ok := h.changeAndMoveOn(w, r, c, func(x *store.User) error {
		nf.first = !x.HasSecondFactor()
		if err := add(x); err != nil {
			return err
		}
		x.UpdatedAt = now
		if nf.first {
			x.RecoveryCodes = append([]string(nil), hashes...)
			x.RecoveryCodesAt = codesTime(now)
		}
		return nil
	}, func(s *store.Session, u store.User) {
		upd(s)
		s.TwoFactor = true
		s.TwoFactorAt = now
		if !nf.first {
			return
		}
		var err error
		if nf.held, err = h.sealCodes(u, codes); err != nil {
			// The codes are stored; the user can regenerate them.
			h.log(r).Error().Err(err).Msg("account: recovery codes not held for download")
		}
		s.RecoveryCodesSealed = nf.held
	})
	return ns, u, nf, ok
}

// removeSecondFactor removes a second factor from the account (remove,
// inside the atomic update of changeAndMoveOn) and moves this session
// on (upd adjusts it further). When no second factor is left the
// recovery codes go too (they stand in for one), and the session no
// longer counts as having passed one; with another factor left they
// serve that one and the session keeps its state.
func (h *Handler) removeSecondFactor(w http.ResponseWriter, r *http.Request, c auth.Current, remove func(*store.User) error, upd func(*store.Session)) (store.Session, store.User, bool) {
	now := h.now()
	return h.changeAndMoveOn(w, r, c, func(x *store.User) error {
		if err := remove(x); err != nil {
			return err
		}
		if !x.HasSecondFactor() {
			x.RecoveryCodes = nil
			x.RecoveryCodesAt = time.Time{}
		}
		x.UpdatedAt = now
		return nil
	}, func(s *store.Session, u store.User) {
		upd(s)
		if !u.HasSecondFactor() {
			s.TwoFactor = false
			s.TwoFactorAt = time.Time{}
			s.RecoveryCodesSealed = nil
		}
	})
}

// showFirstCodes ends an action that added a second factor: the first
// recovery codes, shown once, when the account had none; else the
// overview with the notice done.
func (h *Handler) showFirstCodes(w http.ResponseWriter, r *http.Request, c auth.Current, ns store.Session, u store.User, nf newFactor, why, done string) {
	if !nf.first {
		redirectDone(w, r, done)
		return
	}
	h.record(r, c, audit.RecoveryGenerated, why)
	h.renderCodes(w, r, auth.Current{Session: ns, User: u}, nf.codes, nf.held != nil, false, "", notices[done])
}

// remove turns off the user's second factor after a confirmation with
// the current password or a current code. It is refused while the
// gateway requires 2FA. The user's other sessions are signed out.
func (h *Handler) remove(w http.ResponseWriter, r *http.Request, c auth.Current) {
	ctx := r.Context()
	u := c.User
	if !u.HasTOTP() {
		redirectDone(w, r, "not-enrolled")
		return
	}
	if h.needSecondFactor(w, r, c, PathOverview) {
		return
	}
	vals, err := h.d.Settings.Current(ctx)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	if vals.Mode == settings.ModeRequired && len(u.Passkeys) == 0 {
		h.renderOverview(w, r, c, http.StatusConflict, "", msgRequired)
		return
	}
	if r.PostForm.Get("confirm") != "1" {
		h.renderRemoveConfirm(w, r, c, http.StatusOK, "")
		return
	}
	how, ok := h.checkProof(w, r, c)
	if !ok {
		return
	}
	ns, _, ok := h.removeSecondFactor(w, r, c, func(x *store.User) error {
		if !x.HasTOTP() {
			return errNoTOTP
		}
		x.TOTPSecret = nil
		x.TOTPEnrolledAt = time.Time{}
		x.TOTPLastUsedAt = time.Time{}
		x.TOTPDriftSteps, x.DriftSeen = 0, nil
		return nil
	}, func(s *store.Session) { s.PendingTOTPSecret = nil })
	if !ok {
		return
	}
	n, err := h.revokeOtherSessions(ctx, u.Name, ns.IDHash)
	if err != nil {
		h.log(r).Error().Err(err).Str("user", u.Name).Msg("account: other sessions not all revoked after removing 2FA")
	}
	h.record(r, c, audit.TOTPRemoved, "confirmed with "+how+"; "+plural(n, "other session")+" signed out")
	redirectDone(w, r, "removed")
}

func (h *Handler) renderRemoveConfirm(w http.ResponseWriter, r *http.Request, c auth.Current, status int, errMsg string) {
	question := "Remove two-factor authentication from your account? " + afterRemoval(c.Mode) + " Your recovery codes stop working, and your other sessions are signed out."
	if len(c.User.Passkeys) > 0 {
		question = "Remove the authenticator app from your account? Your passkeys and security keys and your recovery codes keep working; your other sessions are signed out."
	}
	d := templates.ConfirmPage{
		Common:       h.common(r, "Remove two-factor authentication"),
		Nav:          nav(c),
		Question:     question,
		Action:       PathRemove,
		ConfirmLabel: "Remove two-factor authentication",
		CancelURL:    PathOverview,
		Danger:       true,
		AskPassword:  true,
		AskCode:      true,
	}
	d.Error = errMsg
	h.d.Pages.Render(w, r, status, pageConfirm, d)
}

// checkProof verifies the "password" or "code" field of the remove
// confirmation, each attempt reserved before its check. On failure it
// answers the request itself.
func (h *Handler) checkProof(w http.ResponseWriter, r *http.Request, c auth.Current) (string, bool) {
	ctx := r.Context()
	u := c.User
	pw, code := r.PostForm.Get("password"), r.PostForm.Get("code")
	proof := proofPassword
	if pw == "" && code != "" {
		proof = proofTOTP
	}
	a, refused := h.reserve(w, r, c, proof)
	if a == nil {
		if refused != nil {
			h.renderRemoveConfirm(w, r, c, refused.status, refused.msg)
		}
		return "", false
	}
	if proof == proofPassword {
		ok, busy := h.verifyPassword(r, a, c, pw)
		switch {
		case busy:
			h.renderRemoveConfirm(w, r, c, http.StatusServiceUnavailable, msgBusy)
			return "", false
		case ok:
			return "password", true
		}
		h.renderRemoveConfirm(w, r, c, http.StatusForbidden, msgBadProof)
		return "", false
	}
	_, err := h.d.TOTP.Check(ctx, u.Name, u.TOTPSecret, u.TOTPDriftSteps, code)
	if err == nil {
		h.proofPassed(r, a, u.Name)
		return "code", true
	}
	h.proofFailed(r, a, u.Name, "wrong_code")
	if !errors.Is(err, factor.ErrInvalid) && !errors.Is(err, factor.ErrReplayed) {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return "", false
	}
	h.renderRemoveConfirm(w, r, c, http.StatusForbidden, msgBadProof)
	return "", false
}

// afterRemoval says what signing in is like without an authenticator in
// mode (removal is refused in mode required).
func afterRemoval(mode string) string {
	if mode == settings.ModeOn {
		return "Signing in will then ask only for your password, but pages that require two-factor authentication will send you to set up an authenticator again before they open."
	}
	return "Signing in will then need only your password."
}
