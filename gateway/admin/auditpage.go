package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/useradmin"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/templates"
)

// auditViews are the Audit tab's views in the order linked; the first is
// the default (AuditPath without ?view=).
var auditViews = []struct {
	view  useradmin.AuditView
	label string
	intro string
}{
	{useradmin.AuditChanges, "Sign-ins and changes",
		fmt.Sprintf("Sign-ins, sign-outs and every change to users, their two-factor authentication, sessions, bans and settings (the store keeps the last %d). Failed sign-ins are kept apart, so a guessing run cannot push these out.", audit.KeepChanges)},
	{useradmin.AuditFailures, "Failed sign-ins and bans",
		fmt.Sprintf("Failed sign-ins and the bans they started (the store keeps the last %d).", audit.KeepFailures)},
	{useradmin.AuditAll, "All", "Both lists merged by time."},
}

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request) {
	view := useradmin.AuditView(r.URL.Query().Get("view"))
	if view == "" {
		view = auditViews[0].view
	}
	var links []templates.AdminAuditView
	intro := ""
	for i, v := range auditViews {
		u := AuditPath
		if i > 0 {
			u += "?" + url.Values{"view": {string(v.view)}}.Encode()
		}
		links = append(links, templates.AdminAuditView{Label: v.label, URL: u, Current: v.view == view})
		if v.view == view {
			intro = v.intro
		}
	}
	if intro == "" {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusNotFound, "There is no such audit view.", nil))
		return
	}
	evs, err := h.d.Users.Audit(r.Context(), view, time.Time{}, h.o.AuditLimit)
	if err != nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, "The audit trail cannot be read right now. Please try again.", err))
		return
	}
	rows := make([]templates.AdminAuditRow, 0, len(evs))
	for _, ev := range evs {
		rows = append(rows, templates.AdminAuditRow{
			Time:     formatSeconds(ev.Time),
			ISOTime:  ev.Time.UTC().Format(time.RFC3339),
			Actor:    ev.Actor,
			Action:   ev.Action,
			Target:   ev.Target,
			IP:       ev.IP,
			Detail:   ev.Detail,
			Recovery: ev.Action == audit.LoginRecoveryCode,
			Failure:  strings.HasSuffix(ev.Action, "_failed"),
		})
	}
	h.d.Pages.Render(w, r, http.StatusOK, templates.PageAdminAudit, templates.AdminAuditPage{
		Common: h.common(r, "Audit"),
		Nav:    h.nav(r, "audit"),
		Events: rows,
		Limit:  h.o.AuditLimit,
		Views:  links,
		Intro:  intro,
	})
}
