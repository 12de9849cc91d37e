package auth

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/templates"
)

const msgBadRecovery = "The recovery code is invalid."

var errRecoveryUsed = errors.New("auth: recovery code does not match or was used meanwhile")

// recoveryPage lets a user who lost the phone sign in with one of the
// single-use recovery codes instead of a TOTP code.
func (h *Handler) recoveryPage(w http.ResponseWriter, r *http.Request) {
	_, s, u, ok := h.secondFactorContext(w, r)
	if !ok {
		return
	}
	if !u.HasTOTP() {
		http.Redirect(w, r, "/.authgate/enroll", http.StatusSeeOther)
		return
	}
	h.renderRecovery(w, r, u.Name, h.afterSecondFactor(r, s, r.URL.Query().Get("rd")), "", http.StatusOK)
}

func (h *Handler) renderRecovery(w http.ResponseWriter, r *http.Request, user, rd, errMsg string, status int) {
	d := templates.RecoveryLoginPage{Common: h.common(r, "Use a recovery code"), User: user, RD: rd}
	d.Error = errMsg
	h.d.Pages.Render(w, r, status, "recovery", d)
}

func (h *Handler) recoverySubmit(w http.ResponseWriter, r *http.Request) {
	s, u, rd, ok := h.secondFactorSubmit(w, r, factorRecoveryCode)
	if !ok {
		return
	}
	if !u.HasTOTP() {
		http.Redirect(w, r, "/.authgate/enroll", http.StatusSeeOther)
		return
	}
	code := r.PostForm.Get("recovery_code")
	left := 0
	// Match and remove inside one atomic update, so a code used from two
	// browsers at once is accepted once.
	_, err := h.d.Users.UpdateUser(r.Context(), u.Name, func(x *store.User) error {
		i := h.d.Recovery.Match(x.Name, x.RecoveryCodes, code)
		if i < 0 {
			return errRecoveryUsed
		}
		x.RecoveryCodes = append(x.RecoveryCodes[:i:i], x.RecoveryCodes[i+1:]...)
		x.TOTPLastUsedAt = h.d.Now().UTC()
		left = len(x.RecoveryCodes)
		return nil
	})
	if err != nil {
		if !errors.Is(err, errRecoveryUsed) {
			err = fmt.Errorf("consume recovery code: %w", err)
		}
		h.codeFailed(w, r, s, u.Name, "recovery", rd, err)
		return
	}
	h.d.Audit.Record(r.Context(), store.AuditEvent{Actor: u.Name, Action: audit.LoginRecoveryCode, Target: u.Name,
		IP: client(r).IP.String(), Detail: fmt.Sprintf("%d recovery codes left", left)})
	h.completeLogin(w, r, s, rd, "recovery_code", 0)
}
