package admin

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/templates"
)

const (
	titleSettings = "Settings"
	maxIssuerLen  = 64
	noticeSaved   = "Settings saved. Every authgate instance uses them within a few seconds."
	noticeNoop    = "Nothing changed."
	msgBadMode    = "Choose a 2FA mode: Off, On or Required."
	msgBadIssuer  = "The Issuer may have at most 64 characters and no ':' or control characters."
)

var modes = []templates.AdminMode{
	{Value: settings.ModeOff, Label: "Off",
		Help: "No one is asked for a code: every route and this admin area need the password only. Authenticators set up earlier are kept and work again when 2FA is turned back on."},
	{Value: settings.ModeOn, Label: "On",
		Help: "Users who set up two-factor authentication enter a code at every sign-in. The others sign in with their password, which opens routes with policy \"password\" only: routes with policy \"two_factor\" (the default) and this admin area first send them to set up an authenticator. Raising the mode to On signs out every session that has not passed a code."},
	{Value: settings.ModeRequired, Label: "Required",
		Help: "Everyone must use a code. Users without 2FA must set it up at their next sign-in before reaching anything. Raising the mode to Required signs out every session that has not passed a code."},
}

func (h *Handler) settingsPage(w http.ResponseWriter, r *http.Request) {
	cur, err := h.d.Users.Settings(r.Context())
	if err != nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, "The settings cannot be read right now. Please try again.", err))
		return
	}
	notice := ""
	switch r.URL.Query().Get("done") {
	case "saved":
		notice = noticeSaved
	case "unchanged":
		notice = noticeNoop
	}
	h.renderSettings(w, r, http.StatusOK, cur.Mode, cur.Issuer, cur.DefaultIssuer, "", notice)
}

func (h *Handler) renderSettings(w http.ResponseWriter, r *http.Request, status int, mode, issuer, def, errMsg, notice string) {
	ms := make([]templates.AdminMode, len(modes))
	copy(ms, modes)
	for i := range ms {
		ms[i].Checked = ms[i].Value == mode
	}
	src := ""
	if cur, err := h.d.Users.Settings(r.Context()); err == nil {
		src = cur.ModeSource
	}
	p := templates.AdminSettingsPage{
		ModeSource:    src,
		Common:        h.common(r, titleSettings),
		Nav:           h.nav(r, "settings"),
		Modes:         ms,
		Issuer:        issuer,
		DefaultIssuer: def,
		Clock:         h.clockStatus(),
		Drift:         h.driftSummary(r),
	}
	p.Error, p.Notice = errMsg, notice
	h.d.Pages.Render(w, r, status, templates.PageAdminSettings, p)
}

// validIssuer checks an Issuer as settings.Source would, so the admin
// gets a clear message instead of a generic refusal.
func validIssuer(s string) bool {
	if len(s) > maxIssuerLen || !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == ':' {
			return false
		}
	}
	return true
}

func (h *Handler) saveSettings(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	mode := r.PostFormValue("mode")
	issuer := strings.TrimSpace(r.PostFormValue("issuer"))
	cur, err := h.d.Users.Settings(ctx)
	if err != nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, "The settings cannot be read right now. Please try again.", err))
		return
	}
	switch {
	case !settings.ValidMode(mode):
		h.renderSettings(w, r, http.StatusBadRequest, cur.Mode, issuer, cur.DefaultIssuer, msgBadMode, "")
		return
	case !validIssuer(issuer):
		h.renderSettings(w, r, http.StatusBadRequest, mode, issuer, cur.DefaultIssuer, msgBadIssuer, "")
		return
	}
	changed := false
	if mode != cur.Mode {
		if err := h.d.Users.SetMode(ctx, mode); err != nil {
			h.settingsFailed(w, r, mode, issuer, cur.DefaultIssuer, err)
			return
		}
		changed = true
	}
	if issuer != cur.Issuer {
		if err := h.d.Users.SetIssuer(ctx, issuer); err != nil {
			h.settingsFailed(w, r, mode, issuer, cur.DefaultIssuer, err)
			return
		}
		changed = true
	}
	done := "unchanged"
	if changed {
		done = "saved"
	}
	http.Redirect(w, r, SettingsPath+"?done="+done, http.StatusSeeOther)
}

func (h *Handler) settingsFailed(w http.ResponseWriter, r *http.Request, mode, issuer, def string, err error) {
	if status, _, ok := publicError(err); ok && status == http.StatusBadRequest {
		h.renderSettings(w, r, status, mode, issuer, def, msgBadIssuer, "")
		return
	}
	h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, "The settings could not be saved. Please try again.", fmt.Errorf("admin: save settings: %w", err)))
}
