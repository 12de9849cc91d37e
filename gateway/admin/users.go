package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

const (
	titleUsers     = "Manage users"
	maxQueryLen    = 64
	msgNoneChosen  = "Select at least one user first."
	msgTooMany     = "Select at most 500 users at a time."
	msgBadRole     = "Choose a role: admin or user."
	msgSelfReset   = "To change your own password, use My account."
	msgUnavailable = "The users cannot be read right now. Please try again."
	msgResetFailed = "The password could not be reset. Please try again."
)

var statuses = []templates.AdminOption{
	{Value: "", Label: "All"},
	{Value: users.StatusEnabled, Label: "2FA enabled"},
	{Value: users.StatusDisabled, Label: "2FA not set up"},
}

// view is the users list's filter and page, as in its URL.
type view struct {
	Query  string
	Status string
	Page   int
}

// parseView reads q, status and page from v, dropping what is invalid.
func parseView(v url.Values) view {
	q := strings.TrimSpace(v.Get("q"))
	if len(q) > maxQueryLen {
		q = q[:maxQueryLen]
	}
	st := v.Get("status")
	if st != users.StatusEnabled && st != users.StatusDisabled {
		st = ""
	}
	page, err := strconv.Atoi(v.Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	return view{Query: q, Status: st, Page: min(page, 1<<20)}
}

// query encodes the view (empty values left out).
func (v view) query() string {
	q := url.Values{}
	if v.Query != "" {
		q.Set("q", v.Query)
	}
	if v.Status != "" {
		q.Set("status", v.Status)
	}
	if v.Page > 1 {
		q.Set("page", strconv.Itoa(v.Page))
	}
	return q.Encode()
}

// url is the users page showing v, with extra parameters (a notice).
func (v view) url(extra url.Values) string {
	q := v.query()
	if e := extra.Encode(); e != "" {
		if q != "" {
			q += "&"
		}
		q += e
	}
	if q == "" {
		return UsersPath
	}
	return UsersPath + "?" + q
}

// backView is the view a form came from (its "back" field).
func backView(r *http.Request) view {
	v, err := url.ParseQuery(r.PostFormValue("back"))
	if err != nil {
		return view{Page: 1}
	}
	return parseView(v)
}

func (h *Handler) usersPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h.renderUsers(w, r, parseView(q), http.StatusOK, "", h.usersNotice(q))
}

// usersNotice is the message for a finished action (set by the redirect
// after it). Only fixed texts with numbers and a user name are shown.
func (h *Handler) usersNotice(q url.Values) string {
	n, _ := strconv.Atoi(q.Get("n"))
	n = max(0, n)
	name := q.Get("user")
	if name != "" && users.ValidateName(name) != nil {
		return "" // not a name an action could have succeeded on
	}
	switch q.Get("done") {
	case "disabled":
		msg := fmt.Sprintf("2FA disabled for %d %s.", n, plural(n, "user", "users"))
		if had, err := strconv.Atoi(q.Get("had")); err == nil && had >= 0 && had < n {
			msg += fmt.Sprintf(" %d of them had no 2FA set up; their sessions were ended too.", n-had)
		}
		return msg
	case "revoked":
		if name == "" {
			return ""
		}
		return fmt.Sprintf("Ended %d %s of %s.", n, plural(n, "session", "sessions"), name)
	case "resynced":
		if h.d.Drift == nil {
			return ""
		}
		return resyncNotice(name, q.Get("steps"), h.d.Drift.Period())
	case "role":
		role := q.Get("role")
		if name == "" || role != store.RoleAdmin && role != store.RoleUser {
			return ""
		}
		return fmt.Sprintf("%s now has the role %s.", name, role)
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// renderUsers shows the users page for v with an optional error or notice.
func (h *Handler) renderUsers(w http.ResponseWriter, r *http.Request, v view, status int, errMsg, notice string) {
	page, err := h.d.Users.Page(r.Context(), users.Filter{
		Query: v.Query, Status: v.Status, Page: v.Page, PageSize: h.o.PageSize,
	})
	if err != nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, msgUnavailable, err))
		return
	}
	self := current(r).User.Name
	rep, repOK := h.driftReport(r)
	p := templates.AdminUsersPage{
		Common: h.common(r, titleUsers),
		Nav:    h.nav(r, "users"),
		Query:  v.Query,
		Status: v.Status,
		Total:  page.Total,
		Page:   v.Page,
		Pages:  max(1, (page.Total+h.o.PageSize-1)/h.o.PageSize),
		Back:   v.query(),
		Users:  make([]templates.AdminUserRow, 0, len(page.Users)),
	}
	p.Error, p.Notice = errMsg, notice
	p.Statuses = make([]templates.AdminOption, len(statuses))
	copy(p.Statuses, statuses)
	for i := range p.Statuses {
		p.Statuses[i].Selected = p.Statuses[i].Value == v.Status
	}
	for _, u := range page.Users {
		p.Users = append(p.Users, templates.AdminUserRow{
			Name:               u.Name,
			Role:               u.Role,
			IsAdmin:            u.Role == store.RoleAdmin,
			Groups:             u.Groups,
			TwoFactor:          u.TwoFactor,
			TOTP:               u.TOTP,
			Factors:            factors(u),
			EnrolledAt:         formatTime(u.TOTPEnrolledAt),
			LastUsedAt:         formatTime(u.TOTPLastUsedAt),
			RecoveryLeft:       u.RecoveryLeft,
			Sessions:           u.Sessions,
			MustChangePassword: u.MustChangePassword,
			IsSelf:             u.Name == self,
			Drift:              h.driftNote(u, rep, repOK),
		})
	}
	if len(p.Users) > 0 {
		p.From = (v.Page-1)*h.o.PageSize + 1
		p.To = p.From + len(p.Users) - 1
	}
	if v.Page > 1 {
		prev := v
		prev.Page = min(v.Page-1, p.Pages)
		p.PrevURL = prev.url(nil)
	}
	if v.Page < p.Pages {
		next := v
		next.Page = v.Page + 1
		p.NextURL = next.url(nil)
	}
	h.d.Pages.Render(w, r, status, templates.PageAdminUsers, p)
}

// factors names the kinds of second factor u has, for the 2FA column:
// "Authenticator app", "2 passkeys" (passkeys and security keys alike).
func factors(u users.UserInfo) []string {
	var out []string
	if u.TOTP {
		out = append(out, "Authenticator app")
	}
	if n := len(u.Passkeys); n > 0 {
		out = append(out, fmt.Sprintf("%d %s", n, plural(n, "passkey", "passkeys")))
	}
	return out
}

// failed shows a refused or failed action on the users page.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, v view, err error) {
	status, msg, ok := publicError(err)
	if !ok {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, "The change could not be made. Please try again.", err))
		return
	}
	h.renderUsers(w, r, v, status, msg, "")
}

// names returns the distinct, non-empty values of the form fields, in
// order.
func names(r *http.Request, fields ...string) []string {
	_ = r.ParseForm()
	var out []string
	seen := map[string]bool{}
	for _, f := range fields {
		for _, n := range r.PostForm[f] {
			if n == "" || seen[n] {
				continue
			}
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func confirmed(r *http.Request) bool { return r.PostFormValue("confirm") == "1" }

// confirm renders the confirmation step of a users action.
func (h *Handler) confirm(w http.ResponseWriter, r *http.Request, v view, p templates.ConfirmPage) {
	p.Common = h.common(r, p.Common.Title)
	p.Nav = h.nav(r, "users")
	p.Hidden = append(p.Hidden, templates.Field{Name: "back", Value: v.query()})
	p.CancelURL = v.url(nil)
	h.d.Pages.Render(w, r, http.StatusOK, templates.PageConfirm, p)
}

func hiddenUsers(ns []string) []templates.Field {
	fs := make([]templates.Field, len(ns))
	for i, n := range ns {
		fs[i] = templates.Field{Name: "user", Value: n}
	}
	return fs
}

// disable removes the 2FA of the checked users ("selected") or of one row
// ("user"), after a confirmation that posts the names back as "user".
func (h *Handler) disable(w http.ResponseWriter, r *http.Request) {
	v := backView(r)
	var ns []string
	if confirmed(r) {
		ns = names(r, "user")
	} else {
		ns = names(r, "selected", "user")
	}
	switch {
	case len(ns) == 0:
		h.renderUsers(w, r, v, http.StatusBadRequest, msgNoneChosen, "")
		return
	case len(ns) > maxBulk:
		h.renderUsers(w, r, v, http.StatusBadRequest, msgTooMany, "")
		return
	}
	if !confirmed(r) {
		h.confirm(w, r, v, templates.ConfirmPage{
			Common: templates.Common{Title: "Disable two-factor authentication"},
			Question: fmt.Sprintf("Disable two-factor authentication for %s? Their authenticator app, passkeys, security keys and recovery codes are removed and all their sessions end now. They can set up 2FA again later (and must, if 2FA is required).",
				countOf(len(ns), "this user", "these %d users")),
			Items:        ns,
			Action:       DisablePath,
			Hidden:       hiddenUsers(ns),
			ConfirmLabel: "Disable 2FA",
			Danger:       true,
		})
		return
	}
	had, err := h.d.Users.DisableTwoFactor(r.Context(), ns)
	if err != nil {
		h.failed(w, r, v, err)
		return
	}
	http.Redirect(w, r, v.url(url.Values{
		"done": {"disabled"}, "n": {strconv.Itoa(len(ns))}, "had": {strconv.Itoa(len(had))},
	}), http.StatusSeeOther)
}

func countOf(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return fmt.Sprintf(many, n)
}

// oneUser reads the single "user" field of a row action.
func oneUser(r *http.Request) string {
	return r.PostFormValue("user")
}

// revoke ends all sessions of one user after a confirmation.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	v := backView(r)
	name := oneUser(r)
	if name == "" {
		h.renderUsers(w, r, v, http.StatusBadRequest, msgNoneChosen, "")
		return
	}
	if !confirmed(r) {
		q := "End all sessions of this user? They are signed out everywhere and must sign in again."
		if name == current(r).User.Name {
			q = "End all your own sessions, this one included? You will have to sign in again."
		}
		h.confirm(w, r, v, templates.ConfirmPage{
			Common:       templates.Common{Title: "Revoke sessions"},
			Question:     q,
			Items:        []string{name},
			Action:       RevokePath,
			Hidden:       hiddenUsers([]string{name}),
			ConfirmLabel: "Revoke sessions",
			Danger:       true,
		})
		return
	}
	n, err := h.d.Users.RevokeSessions(r.Context(), name)
	if err != nil {
		h.failed(w, r, v, err)
		return
	}
	http.Redirect(w, r, v.url(url.Values{"done": {"revoked"}, "n": {strconv.Itoa(n)}, "user": {name}}), http.StatusSeeOther)
}

// resetPassword gives a user a random temporary password, shown once,
// that must be changed at the next sign-in.
func (h *Handler) resetPassword(w http.ResponseWriter, r *http.Request) {
	v := backView(r)
	name := oneUser(r)
	switch {
	case name == "":
		h.renderUsers(w, r, v, http.StatusBadRequest, msgNoneChosen, "")
		return
	case name == current(r).User.Name:
		h.renderUsers(w, r, v, http.StatusBadRequest, msgSelfReset, "")
		return
	}
	if !confirmed(r) {
		h.confirm(w, r, v, templates.ConfirmPage{
			Common:       templates.Common{Title: "Reset password"},
			Question:     "Reset the password of this user? Their current password stops working, their sessions end, and you get a temporary password to give them; they must change it at their next sign-in.",
			Items:        []string{name},
			Action:       ResetPath,
			Hidden:       hiddenUsers([]string{name}),
			ConfirmLabel: "Reset password",
			Danger:       true,
		})
		return
	}
	if h.d.Sessions == nil || h.d.Box == nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, msgResetFailed, errNoHold))
		return
	}
	pw, err := tempPassword(h.d.Rand)
	if err != nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusInternalServerError, msgResetFailed, err))
		return
	}
	hash, err := h.d.Hasher.Hash(pw)
	if err != nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusInternalServerError, msgResetFailed, fmt.Errorf("admin: hash temporary password: %w", err)))
		return
	}
	// The password waits, sealed, in this admin's session for the page
	// the redirect leads to: never in a URL or a cookie, and a reload of
	// that page neither repeats the reset nor shows the password again.
	// It is held before the reset so a reset never happens unseen.
	if err := h.holdReset(r, heldReset{User: name, Password: pw, At: h.d.Now(), Back: v.query()}); err != nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, msgResetFailed, err))
		return
	}
	if err := h.d.Users.ResetPassword(r.Context(), name, hash); err != nil {
		if derr := h.setHeld(r, nil); derr != nil {
			middleware.LoggerFrom(r.Context()).Error().Err(derr).Msg("admin: unused temporary password left in the session")
		}
		h.failed(w, r, v, err)
		return
	}
	http.Redirect(w, r, TempPasswordPath, http.StatusSeeOther)
}

// setRole changes a user's role; removing the last admin is refused.
func (h *Handler) setRole(w http.ResponseWriter, r *http.Request) {
	v := backView(r)
	name, role := oneUser(r), r.PostFormValue("role")
	switch {
	case name == "":
		h.renderUsers(w, r, v, http.StatusBadRequest, msgNoneChosen, "")
		return
	case role != store.RoleAdmin && role != store.RoleUser:
		h.renderUsers(w, r, v, http.StatusBadRequest, msgBadRole, "")
		return
	}
	if err := h.d.Users.SetRole(r.Context(), name, role); err != nil {
		h.failed(w, r, v, err)
		return
	}
	http.Redirect(w, r, v.url(url.Values{"done": {"role"}, "user": {name}, "role": {role}}), http.StatusSeeOther)
}
