package admin

import (
	"net/http"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/templates"
)

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request) {
	evs, err := h.d.Users.Audit(r.Context(), time.Time{}, h.o.AuditLimit)
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
	})
}
