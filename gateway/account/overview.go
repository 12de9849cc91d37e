package account

import (
	"net/http"

	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/templates"
)

// lowRecoveryCodes is the count at or below which the overview warns.
const lowRecoveryCodes = 2

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, c auth.Current) {
	h.renderOverview(w, r, c, http.StatusOK, notices[r.URL.Query().Get("done")], "")
}

// renderOverview shows the account page with an optional notice or error
// (a refused action is answered with the page and the reason).
func (h *Handler) renderOverview(w http.ResponseWriter, r *http.Request, c auth.Current, status int, notice, errMsg string) {
	ctx := r.Context()
	vals, err := h.d.Settings.Current(ctx)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	list, err := h.d.Sessions.ListUserSessions(ctx, c.User.Name)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	u := c.User
	d := templates.AccountPage{
		Common:       h.common(r, "My account"),
		Nav:          nav(c),
		User:         u.Name,
		TwoFactor:    u.HasTOTP(),
		EnrolledAt:   u.TOTPEnrolledAt,
		LastUsedAt:   u.TOTPLastUsedAt,
		PendingSetup: len(c.Session.PendingTOTPSecret) > 0,
		Required:     vals.Mode == settings.ModeRequired,
		ModeOff:      vals.Mode == settings.ModeOff,
		RecoveryLeft: len(u.RecoveryCodes),
		RecoveryLow:  len(u.RecoveryCodes) <= lowRecoveryCodes,
		RecoveryAt:   u.RecoveryCodesAt,
		AnyFactor:    u.HasSecondFactor(),
		Passkeys:     passkeyRows(u),
	}
	if h.d.Passkeys != nil {
		d.PasskeysAvailable = true
	} else {
		d.PasskeysReason = h.o.PasskeysUnavailable
	}
	allowScript(w, &d)
	if _, ok := h.heldCodes(c); ok {
		d.CodesDownloadable = true
		d.DownloadURL = PathDownload
	}
	d.Notice, d.Error = notice, errMsg
	for _, s := range list {
		if s.User != u.Name {
			continue
		}
		d.Sessions = append(d.Sessions, templates.AccountSession{
			ID:         publicID(s.IDHash),
			CreatedAt:  s.CreatedAt,
			LastSeenAt: s.LastSeenAt,
			IP:         s.IP,
			UserAgent:  s.UserAgent,
			Current:    s.IDHash == c.Session.IDHash,
			Pending:    s.Stage != store.StageFull,
		})
	}
	h.d.Pages.Render(w, r, status, templates.PageAccount, d)
}
