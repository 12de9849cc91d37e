package signin

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/url"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/middleware"
)

var errAccountMoved = errors.New("signin: the account changed after this session was created")

// enrollPage shows a new secret as QR code and key. The secret lives
// (sealed) in the session until the user proves it works with a code.
func (h *Handler) enrollPage(w http.ResponseWriter, r *http.Request) {
	_, s, u, ok := h.secondFactorContext(w, r)
	if !ok {
		return
	}
	rd := h.afterSecondFactor(r, s, r.URL.Query().Get("rd"))
	if u.HasSecondFactor() {
		http.Redirect(w, r, auth.VerifyPage+rdQuery(rd), http.StatusSeeOther)
		return
	}
	if len(s.PendingTOTPSecret) == 0 {
		sealed, err := h.d.TOTP.NewSecret(u.Name)
		if err != nil {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
		s.PendingTOTPSecret = sealed
		if err := h.d.Sessions.Save(r.Context(), s); err != nil {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
	}
	h.renderEnroll(w, r, s, u.Name, rd, "", http.StatusOK)
}

func (h *Handler) renderEnroll(w http.ResponseWriter, r *http.Request, s store.Session, user, rd, errMsg string, status int) {
	vals, err := h.d.Settings.Current(r.Context())
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	en, err := h.d.TOTP.Describe(user, h.issuer(vals), s.PendingTOTPSecret)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	opts := h.d.TOTP.Options()
	d := enrollData{
		Common:     h.common(r, "Set up two-factor authentication"),
		User:       user,
		Issuer:     en.Issuer,
		QRDataURI:  template.URL(en.QRDataURI),
		KeyGrouped: en.KeyGrouped,
		OTPAuthURL: template.URL(en.KeyURL),
		Digits:     opts.Digits,
		Period:     int(opts.Period),
		RD:         rd,
		Passkey:    h.d.Passkeys != nil,
	}
	d.Error = errMsg
	if d.Passkey {
		d.PasskeyScript = true
		middleware.AllowOwnScript(w)
	}
	h.d.Pages.Render(w, r, status, "enroll", d)
}

func (h *Handler) enrollSubmit(w http.ResponseWriter, r *http.Request) {
	if r.ParseForm() == nil && r.PostForm.Has("passkey") {
		h.passkeyEnrollSubmit(w, r)
		return
	}
	s, u, rd, a := h.secondFactorSubmit(w, r, factorEnroll)
	if a == nil {
		return
	}
	if u.HasSecondFactor() {
		_ = a.Cancel(r.Context())
		http.Redirect(w, r, auth.VerifyPage+rdQuery(rd), http.StatusSeeOther)
		return
	}
	if len(s.PendingTOTPSecret) == 0 {
		_ = a.Cancel(r.Context())
		http.Redirect(w, r, auth.EnrollPage+rdQuery(rd), http.StatusSeeOther)
		return
	}
	res, err := h.checkCode(r, u.Name, s.PendingTOTPSecret, 0, r.PostForm.Get("code"))
	if err != nil {
		h.codeFailed(w, r, s, a, u, "enroll", rd, err)
		return
	}
	h.passed(r, a)
	now := h.d.Now().UTC()
	pending := s.PendingTOTPSecret
	saveFactor := func(ctx context.Context) (int64, error) {
		nu, err := h.d.Users.UpdateUser(ctx, u.Name, func(x *store.User) error {
			// Someone set up an authenticator or changed the account
			// meanwhile: this session is void.
			if x.HasSecondFactor() || x.AuthEpoch != s.UserEpoch {
				return errAccountMoved
			}
			x.TOTPSecret = append([]byte(nil), pending...)
			x.TOTPEnrolledAt = now
			x.TOTPLastUsedAt = now
			x.TOTPDriftSteps = res.Drift // a new device: its first code's side
			x.UpdatedAt = now
			x.AuthEpoch++ // every other session of the account ends
			return nil
		})
		if err != nil {
			return 0, err
		}
		h.audit(r, audit.TOTPEnrolled, u.Name, "at sign-in")
		return nu.AuthEpoch, nil
	}
	// On to the first recovery codes (shown once), then to rd.
	h.completeLogin(w, r, s, auth.FirstRecoveryCodesPage+"?rd="+url.QueryEscape(rd), "enrolled", res.Step, saveFactor)
}
