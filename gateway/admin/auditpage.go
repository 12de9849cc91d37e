package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/templates"
)

// auditViews are the Audit tab's views in the order linked; the first is
// the default (AuditPath without ?view=).
var auditViews = []struct {
	view  users.AuditView
	label string
	intro string
}{
	{users.AuditChanges, "Sign-ins and changes",
		fmt.Sprintf("Sign-ins, sign-outs and every change to users, their two-factor authentication, sessions, bans and settings (the store keeps the last %d). Failed sign-ins are kept apart, so a guessing run cannot push these out.", audit.KeepChanges)},
	{users.AuditFailures, "Failed sign-ins and bans",
		fmt.Sprintf("Failed sign-ins and the bans they started (the store keeps the last %d).", audit.KeepFailures)},
	{users.AuditAll, "All", "Both lists merged by time."},
}

// auditEvents are the event types the filter offers, in the audit
// package's order.
var auditEvents = []string{
	audit.Login, audit.LoginFailed, audit.LoginRecoveryCode, audit.Logout, audit.StepUp,
	audit.TOTPEnrolled, audit.TOTPReconfigured, audit.TOTPRemoved, audit.TOTPDisabled, audit.TOTPResynced,
	audit.RecoveryGenerated, audit.PasswordChanged, audit.PasswordReset, audit.RoleChanged,
	audit.SessionRevoked, audit.SessionsRevoked, audit.SettingChanged,
	audit.UserAdded, audit.UserDeleted, audit.UsersImported, audit.BanStarted, audit.BanLifted,
}

// auditSizes are the page sizes offered (besides Options.AuditPageSize).
var auditSizes = []int{25, 50, 100, 200}

// maxAuditPage bounds the page number read from a URL.
const maxAuditPage = 1 << 20

// auditQuery is the Audit tab's view, filter and page, as in its URL.
type auditQuery struct {
	View  users.AuditView
	User  string
	Event string
	Size  int
	Page  int
}

// parseAuditQuery reads view, user, event, size and page from v, dropping
// what is invalid (an unknown view is kept: the page answers 404).
func (h *Handler) parseAuditQuery(v url.Values) auditQuery {
	q := auditQuery{View: users.AuditView(v.Get("view"))}
	if q.View == "" {
		q.View = auditViews[0].view
	}
	q.User = strings.TrimSpace(v.Get("user"))
	if len(q.User) > maxQueryLen {
		q.User = q.User[:maxQueryLen]
	}
	if ev := v.Get("event"); slices.Contains(auditEvents, ev) {
		q.Event = ev
	}
	q.Size = h.o.AuditPageSize
	if n, err := strconv.Atoi(v.Get("size")); err == nil && (n == h.o.AuditPageSize || slices.Contains(auditSizes, n)) {
		q.Size = n
	}
	q.Page = 1
	if n, err := strconv.Atoi(v.Get("page")); err == nil && n > 1 {
		q.Page = min(n, maxAuditPage)
	}
	return q
}

// filtered reports whether q narrows the view by user or event.
func (q auditQuery) filtered() bool { return q.User != "" || q.Event != "" }

// match reports whether ev passes q's filter: the user acted or was acted
// on, the event is of the type chosen.
func (q auditQuery) match(ev store.AuditEvent) bool {
	if q.User != "" && ev.Actor != q.User && ev.Target != q.User {
		return false
	}
	return q.Event == "" || ev.Action == q.Event
}

// url is the Audit tab showing q, defaults left out.
func (h *Handler) auditURL(q auditQuery) string {
	v := url.Values{}
	if q.View != auditViews[0].view {
		v.Set("view", string(q.View))
	}
	if q.User != "" {
		v.Set("user", q.User)
	}
	if q.Event != "" {
		v.Set("event", q.Event)
	}
	if q.Size != h.o.AuditPageSize {
		v.Set("size", strconv.Itoa(q.Size))
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	if len(v) == 0 {
		return AuditPath
	}
	return AuditPath + "?" + v.Encode()
}

// auditPage shows one page of a view of the audit trail, newest first,
// optionally filtered by user and event type.
//
// The trails are bounded (audit.KeepChanges, audit.KeepFailures), so the
// filter runs over the view's whole listing; an unfiltered page reads
// only the events up to its end.
func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request) {
	q := h.parseAuditQuery(r.URL.Query())
	var links []templates.AdminAuditView
	intro := ""
	for _, v := range auditViews {
		lq := q
		lq.View, lq.Page = v.view, 1
		links = append(links, templates.AdminAuditView{Label: v.label, URL: h.auditURL(lq), Current: v.view == q.View})
		if v.view == q.View {
			intro = v.intro
		}
	}
	if intro == "" {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusNotFound, "There is no such audit view.", nil))
		return
	}
	offset := (q.Page - 1) * q.Size
	limit := 0 // all the view keeps
	if !q.filtered() {
		limit = offset + q.Size + 1 // one more tells whether an older page exists
	}
	evs, err := h.d.Users.Audit(r.Context(), q.View, time.Time{}, limit)
	if err != nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, "The audit trail cannot be read right now. Please try again.", err))
		return
	}
	if q.filtered() {
		evs = slices.DeleteFunc(evs, func(ev store.AuditEvent) bool { return !q.match(ev) })
	}
	// Past the end (the list is shorter than the link remembered): the
	// last page.
	if offset >= len(evs) && q.Page > 1 {
		q.Page = max(1, (len(evs)+q.Size-1)/q.Size)
		offset = (q.Page - 1) * q.Size
	}
	shown := evs[min(offset, len(evs)):min(offset+q.Size, len(evs))]
	rows := make([]templates.AdminAuditRow, 0, len(shown))
	for _, ev := range shown {
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
	p := templates.AdminAuditPage{
		Common:   h.common(r, "Audit"),
		Nav:      h.nav(r, "audit"),
		Events:   rows,
		View:     string(q.View),
		Views:    links,
		Intro:    intro,
		User:     q.User,
		Event:    q.Event,
		Filtered: q.filtered(),
		Page:     q.Page,
	}
	p.EventChoices = append(p.EventChoices, templates.AdminOption{Value: "", Label: "Any event", Selected: q.Event == ""})
	for _, ev := range auditEvents {
		p.EventChoices = append(p.EventChoices, templates.AdminOption{Value: ev, Label: ev, Selected: ev == q.Event})
	}
	sizes := auditSizes
	if !slices.Contains(sizes, h.o.AuditPageSize) {
		sizes = append([]int{h.o.AuditPageSize}, sizes...)
		slices.Sort(sizes)
	}
	for _, n := range sizes {
		p.Sizes = append(p.Sizes, templates.AdminOption{Value: strconv.Itoa(n), Label: strconv.Itoa(n), Selected: n == q.Size})
	}
	if q.filtered() {
		rq := q
		rq.User, rq.Event, rq.Page = "", "", 1
		p.ResetURL = h.auditURL(rq)
	}
	if len(rows) > 0 {
		p.From = offset + 1
		p.To = offset + len(rows)
	}
	if q.Page > 1 {
		nq := q
		nq.Page--
		p.NewerURL = h.auditURL(nq)
	}
	if len(evs) > offset+q.Size {
		oq := q
		oq.Page++
		p.OlderURL = h.auditURL(oq)
	}
	h.d.Pages.Render(w, r, http.StatusOK, templates.PageAdminAudit, p)
}
