package account

import (
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/templates"
)

var errNoTOTP = errors.New("account: user has no second factor")

// setupPage shows a new secret to set up or reconfigure the
// authenticator. The secret stays sealed in the session until a code
// from it confirms it; the user's current secret is untouched until then.
func (h *Handler) setupPage(w http.ResponseWriter, r *http.Request, c auth.Current) {
	s := c.Session
	if len(s.PendingTOTPSecret) == 0 {
		sealed, err := h.d.TOTP.NewSecret(c.User.Name)
		if err != nil {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
		s.PendingTOTPSecret = sealed
		if err := h.d.SessionManager.Save(r.Context(), s); err != nil {
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
	}
	d.Error = errMsg
	h.d.Pages.Render(w, r, status, templates.PageAccountSetup, d)
}

// setupSubmit confirms the pending secret with a code from it. At the
// first set-up the user also gets recovery codes, shown once.
func (h *Handler) setupSubmit(w http.ResponseWriter, r *http.Request, c auth.Current) {
	ctx := r.Context()
	pending := c.Session.PendingTOTPSecret
	if len(pending) == 0 {
		http.Redirect(w, r, PathSetup, http.StatusSeeOther)
		return
	}
	res, err := h.d.TOTP.Check(ctx, c.User.Name, pending, 0, r.PostForm.Get("code"))
	if err != nil {
		if !errors.Is(err, factor.ErrInvalid) && !errors.Is(err, factor.ErrReplayed) {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
		h.log(r).Warn().Err(err).Str("user", c.User.Name).Msg("account: set-up code refused")
		h.renderSetup(w, r, c, pending, http.StatusUnprocessableEntity, msgBadCode)
		return
	}
	codes, hashes, err := h.d.Recovery.Generate(c.User.Name)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	now := h.now()
	first := false
	u, err := h.d.Users.UpdateUser(ctx, c.User.Name, func(x *store.User) error {
		first = !x.HasTOTP()
		x.TOTPSecret = append([]byte(nil), pending...)
		x.TOTPEnrolledAt = now
		x.TOTPLastUsedAt = now
		x.TOTPDriftSteps = res.Drift // the new device's, not the old one's
		x.UpdatedAt = now
		if first {
			x.RecoveryCodes = append([]string(nil), hashes...)
			x.RecoveryCodesAt = codesTime(now)
		}
		return nil
	})
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	var held []byte
	if first {
		if held, err = h.sealCodes(u, codes); err != nil {
			// The codes are stored; the user can regenerate them.
			h.log(r).Error().Err(err).Msg("account: recovery codes not held for download")
		}
	}
	ns, err := h.rotate(w, r, c, func(s *store.Session) {
		s.PendingTOTPSecret = nil
		s.TwoFactor = true
		s.TwoFactorAt = now
		if first {
			s.RecoveryCodesSealed = held
		}
	})
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	if !first {
		h.record(r, c, audit.TOTPReconfigured, "")
		redirectDone(w, r, "reconfigured")
		return
	}
	h.record(r, c, audit.TOTPEnrolled, "")
	h.record(r, c, audit.RecoveryGenerated, "at set-up")
	c = auth.Current{Session: ns, User: u}
	h.renderCodes(w, r, c, codes, held != nil, false, "", notices["enrolled"])
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
	vals, err := h.d.Settings.Current(ctx)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	if vals.Mode == settings.ModeRequired {
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
	_, err = h.d.Users.UpdateUser(ctx, u.Name, func(x *store.User) error {
		if !x.HasTOTP() {
			return errNoTOTP
		}
		x.TOTPSecret = nil
		x.TOTPEnrolledAt = time.Time{}
		x.TOTPLastUsedAt = time.Time{}
		x.TOTPDriftSteps, x.DriftSeen = 0, nil
		x.RecoveryCodes = nil
		x.RecoveryCodesAt = time.Time{}
		x.UpdatedAt = h.now()
		return nil
	})
	if errors.Is(err, errNoTOTP) {
		redirectDone(w, r, "not-enrolled")
		return
	}
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	ns, err := h.rotate(w, r, c, func(s *store.Session) {
		s.TwoFactor = false
		s.TwoFactorAt = time.Time{}
		s.PendingTOTPSecret = nil
		s.RecoveryCodesSealed = nil
	})
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
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
	d := templates.ConfirmPage{
		Common:       h.common(r, "Remove two-factor authentication"),
		Nav:          nav(c),
		Question:     "Remove two-factor authentication from your account? Signing in will then need only your password, your recovery codes stop working, and your other sessions are signed out.",
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
// confirmation. On failure it answers the request itself.
func (h *Handler) checkProof(w http.ResponseWriter, r *http.Request, c auth.Current) (string, bool) {
	ctx := r.Context()
	u := c.User
	blocked, err := h.proofBlocked(ctx, u.Name)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return "", false
	}
	if blocked {
		h.log(r).Warn().Str("user", u.Name).Msg("account: too many wrong passwords or codes")
		h.renderRemoveConfirm(w, r, c, http.StatusTooManyRequests, msgTooMany)
		return "", false
	}
	pw, code := r.PostForm.Get("password"), r.PostForm.Get("code")
	switch {
	case pw != "" && len(pw) <= maxPasswordLen:
		ok, err := h.d.Passwords.Verify(u.PasswordHash, pw)
		if err == nil && ok {
			h.proofPassed(r, u.Name)
			return "password", true
		}
		if err != nil {
			h.log(r).Error().Err(err).Str("user", u.Name).Msg("account: stored password hash unusable")
		}
		h.proofFailed(r, u.Name, "wrong_password")
	case code != "":
		_, err := h.d.TOTP.Check(ctx, u.Name, u.TOTPSecret, u.TOTPDriftSteps, code)
		if err == nil {
			h.proofPassed(r, u.Name)
			return "code", true
		}
		if !errors.Is(err, factor.ErrInvalid) && !errors.Is(err, factor.ErrReplayed) {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return "", false
		}
		h.proofFailed(r, u.Name, "wrong_code")
	default:
		h.proofFailed(r, u.Name, "no_proof")
	}
	h.renderRemoveConfirm(w, r, c, http.StatusForbidden, msgBadProof)
	return "", false
}
