package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/templates"
)

const msgBadRecovery = "The recovery code is invalid."

var errRecoveryUsed = errors.New("signin: recovery code does not match or was used meanwhile")

// recoveryPage lets a user who lost the phone sign in with one of the
// single-use recovery codes instead of a TOTP code.
func (h *Handler) recoveryPage(w http.ResponseWriter, r *http.Request) {
	_, s, u, ok := h.secondFactorContext(w, r)
	if !ok {
		return
	}
	if !u.HasSecondFactor() {
		http.Redirect(w, r, auth.EnrollPage, http.StatusSeeOther)
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
	s, u, rd, a := h.secondFactorSubmit(w, r, factorRecoveryCode)
	if a == nil {
		return
	}
	if !u.HasSecondFactor() {
		_ = a.Cancel(r.Context())
		http.Redirect(w, r, auth.EnrollPage, http.StatusSeeOther)
		return
	}
	code := r.PostForm.Get("recovery_code")
	// Checked against the codes read with the session, then used up only
	// as part of moving the session on (completeLogin): only the request
	// that owns the sign-in at that moment uses a code up, and only if
	// it is still there (two browsers using one code: one wins).
	if h.d.Recovery.Match(u.Name, u.RecoveryCodes, code) < 0 {
		h.codeFailed(w, r, s, a, u, "recovery", rd, errRecoveryUsed)
		return
	}
	h.passed(r, a)
	useCode := func(ctx context.Context) (int64, error) {
		left := 0
		_, err := h.d.Users.UpdateUser(ctx, u.Name, func(x *store.User) error {
			if x.AuthEpoch != s.UserEpoch {
				return errAccountMoved
			}
			i := h.d.Recovery.Match(x.Name, x.RecoveryCodes, code)
			if i < 0 {
				return errAccountMoved // used meanwhile: this sign-in starts again
			}
			x.RecoveryCodes = append(x.RecoveryCodes[:i:i], x.RecoveryCodes[i+1:]...)
			x.TOTPLastUsedAt = h.d.Now().UTC()
			left = len(x.RecoveryCodes)
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("use recovery code: %w", err)
		}
		h.d.Audit.Record(ctx, store.AuditEvent{Actor: u.Name, Action: audit.LoginRecoveryCode, Target: u.Name,
			IP: client(r).IP.String(), Detail: fmt.Sprintf("%d recovery codes left", left)})
		return s.UserEpoch, nil
	}
	// The phone is lost: on to setting up the authenticator again (the
	// user may skip it), then to rd.
	next := auth.SetupPage + "?after=recovery&rd=" + url.QueryEscape(rd)
	h.completeLogin(w, r, s, next, "recovery_code", 0, useCode)
}
