package admin

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
)

var (
	formRe     = regexp.MustCompile(`(?s)<form([^>]*)>(.*?)</form>`)
	actionRe   = regexp.MustCompile(`action="([^"]+)"`)
	buttonRe   = regexp.MustCompile(`<button type="submit"[^>]*>([^<]+)</button>`)
	menuRe     = regexp.MustCompile(`(?s)<td class="actions">\s*<details class="menu">\s*<summary>(.*?)</summary>\s*<div class="menu-items">(.*?)</div>\s*</details>\s*</td>`)
	roleRe     = regexp.MustCompile(`(?s)<td class="role"><form class="role-form" method="post" action="/\.authgate/admin/users/role">(.*?)</form></td>`)
	rowRe      = regexp.MustCompile(`(?s)<tr>\s*<td><input type="checkbox"[^>]*value="([^"]*)"[^>]*>.*?</tr>`)
	auditRowRe = regexp.MustCompile(`(?s)<tr(?: class="flag")?>\s*<td><time datetime="[^"]+">[^<]+</time></td>\s*<td>(?:<span class="muted">—</span>|([^<]*))</td>\s*<td>([a-z_]+)[^\n]*\n<td>([^<]*)</td>`)
	olderRe    = regexp.MustCompile(`<a href="([^"]*)" rel="next">Older`)
	newerRe    = regexp.MustCompile(`<a href="([^"]*)" rel="prev">← Newer`)
)

// form is one form of a page as a browser would submit it.
type form struct {
	action string
	fields url.Values
	button string
	html   string
}

func forms(fragment string) []form {
	var out []form
	for _, m := range formRe.FindAllStringSubmatch(fragment, -1) {
		f := form{fields: url.Values{}, html: m[0]}
		if a := actionRe.FindStringSubmatch(m[1]); a != nil {
			f.action = html.UnescapeString(a[1])
		}
		for _, h := range hiddenRe.FindAllStringSubmatch(m[2], -1) {
			f.fields.Add(h[1], html.UnescapeString(h[2]))
		}
		if b := buttonRe.FindStringSubmatch(m[2]); b != nil {
			f.button = b[1]
		}
		out = append(out, f)
	}
	return out
}

// userRow returns the users table's row of name.
func userRow(t *testing.T, body, name string) string {
	t.Helper()
	for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
		if html.UnescapeString(m[1]) == name {
			return m[0]
		}
	}
	t.Fatalf("no row for %q", name)
	return ""
}

// submit posts f as the browser would (its own CSRF token included).
func (a *agent) submit(t *testing.T, f form) response {
	t.Helper()
	return a.postRaw(t, f.action, f.fields)
}

// A row's actions sit in one <details> menu (no script), each a POST form
// with the CSRF token that still works; the role select and its button
// are one form, outside the menu; the filters are one GET form.
func TestUsersRowMenu(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		e.addUser(t, user{name: "bob", totp: true})
		e.addUser(t, user{name: "carol"})
		e.login(t, "bob", e.clk.Now())
		page := a.get(t, UsersPath+"?q=o")
		if page.status != http.StatusOK {
			t.Fatalf("status %d", page.status)
		}
		if strings.Contains(page.body, "<script") {
			t.Error("the users page uses a script")
		}
		tok := a.csrfToken(t)

		row := userRow(t, page.body, "bob")
		if n := strings.Count(row, "<details"); n != 1 {
			t.Fatalf("bob's row has %d menus, want 1\n%s", n, row)
		}
		m := menuRe.FindStringSubmatch(row)
		if m == nil {
			t.Fatalf("bob's actions are not in a menu\n%s", row)
		}
		if !strings.Contains(m[1], "Actions") || !strings.Contains(m[1], `<span class="visually-hidden"> for bob</span>`) {
			t.Errorf("menu summary %q does not name the user for screen readers", m[1])
		}
		var buttons []string
		byButton := map[string]form{}
		for _, f := range forms(m[2]) {
			buttons = append(buttons, f.button)
			byButton[f.button] = f
			if !strings.Contains(f.html, `method="post"`) || f.fields.Get("csrf_token") != tok ||
				f.fields.Get("user") != "bob" || f.fields.Get("back") != "q=o" {
				t.Errorf("menu form %q: not a POST with the CSRF token, user and view: %v", f.button, f.fields)
			}
		}
		if want := []string{"Disable 2FA", "Revoke sessions", "Resync clock", "Reset password"}; !slices.Equal(buttons, want) {
			t.Errorf("menu of bob: %q, want %q", buttons, want)
		}
		if strings.Contains(m[2], "Set role") || strings.Contains(m[2], "<select") {
			t.Error("the role control is in the menu")
		}

		// The role select and its button: one form, in the Role cell.
		rm := roleRe.FindStringSubmatch(row)
		if rm == nil {
			t.Fatalf("no role form in bob's role cell\n%s", row)
		}
		if !strings.Contains(rm[1], `<select id="role-`) || !strings.Contains(rm[1], `name="role"`) ||
			!strings.Contains(rm[1], `<button type="submit" class="small secondary">Set role</button>`) {
			t.Errorf("role form lacks its select or button: %s", rm[1])
		}

		// The menu's forms work as posted by a browser: confirm, then act.
		r := a.submit(t, byButton["Revoke sessions"])
		if r.status != http.StatusOK || !strings.Contains(r.body, "End all sessions of this user?") {
			t.Fatalf("revoke from the menu: %d", r.status)
		}
		confirm := forms(r.body)
		if len(confirm) != 1 {
			t.Fatalf("%d forms on the confirmation page", len(confirm))
		}
		r = a.follow(t, a.submit(t, confirm[0]))
		if got := message(r.body, "notice"); got != "Ended 1 session of bob." || e.sessions(t, "bob") != 0 {
			t.Errorf("revoke from the menu: notice %q, %d sessions left", got, e.sessions(t, "bob"))
		}
		// The role form as the browser sends it (select's value chosen).
		f := forms(rm[0])[0]
		f.fields.Set("role", store.RoleAdmin)
		r = a.follow(t, a.submit(t, f))
		if got := message(r.body, "notice"); got != "bob now has the role admin." || e.getUser(t, "bob").Role != store.RoleAdmin {
			t.Errorf("role form: notice %q, role %s", got, e.getUser(t, "bob").Role)
		}
		if !strings.Contains(r.body, `<input type="hidden" name="back" value="q=o">`) {
			t.Error("the action did not return to the filtered list")
		}

		// carol: no 2FA, no sessions, so only a reset; root's own row
		// offers no reset.
		var carol []string
		for _, f := range forms(menuRe.FindStringSubmatch(userRow(t, page.body, "carol"))[2]) {
			carol = append(carol, f.button)
		}
		if !slices.Equal(carol, []string{"Reset password"}) {
			t.Errorf("menu of carol: %q", carol)
		}
		own := a.get(t, UsersPath+"?q=root")
		if strings.Contains(menuRe.FindStringSubmatch(userRow(t, own.body, "root"))[2], "Reset password") {
			t.Error("an admin is offered a reset of their own password")
		}

		// The filters: one GET form holding both fields and the button.
		var filter *form
		for _, f := range forms(page.body) {
			if strings.Contains(f.html, `id="users-filter"`) {
				filter = &f
			}
		}
		if filter == nil || !strings.Contains(filter.html, `method="get"`) || !strings.Contains(filter.html, `class="toolbar filters"`) ||
			!strings.Contains(filter.html, `name="q"`) || !strings.Contains(filter.html, `name="status"`) || filter.button != "Filter" {
			t.Errorf("filter form: %+v", filter)
		}
		// The bulk flow is unchanged: the checkboxes feed the bulk form.
		if !strings.Contains(page.body, `name="selected" value="bob" form="bulk"`) || !strings.Contains(page.body, `<form id="bulk" method="post" action="/.authgate/admin/users/disable"`) {
			t.Error("the bulk Disable Selected form or its checkboxes are gone")
		}
	})
}

// Disable 2FA removes passkeys as well as the authenticator app: from a
// key-only user's row menu, and for checked users with Disable Selected.
func TestDisablePasskeys(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		e.addUser(t, user{name: "keys", passkeys: 2})
		e.addUser(t, user{name: "both", totp: true, passkeys: 1})
		e.addUser(t, user{name: "solo", passkeys: 1})
		e.addUser(t, user{name: "none"})
		keys := e.login(t, "keys", e.clk.Now())
		e.login(t, "both", e.clk.Now())

		// The row menu of a user with passkeys only.
		page := a.get(t, UsersPath+"?q=keys")
		var disable *form
		for _, f := range forms(menuRe.FindStringSubmatch(userRow(t, page.body, "keys"))[2]) {
			if f.button == "Disable 2FA" {
				disable = &f
			}
		}
		if disable == nil {
			t.Fatal("no Disable 2FA in the menu of a user with passkeys only")
		}
		r := a.submit(t, *disable)
		if r.status != http.StatusOK || !strings.Contains(r.body, "passkeys") || !slices.Equal(hidden(r.body, "user"), []string{"keys"}) {
			t.Fatalf("confirm: %d\n%s", r.status, r.body)
		}
		if len(e.getUser(t, "keys").Passkeys) != 2 {
			t.Fatal("the confirmation page already removed passkeys")
		}
		r = a.follow(t, a.submit(t, forms(r.body)[0]))
		if got := message(r.body, "notice"); got != "2FA disabled for 1 user." {
			t.Errorf("notice %q", got)
		}
		if u := e.getUser(t, "keys"); u.Passkeys != nil || u.HasSecondFactor() || e.sessions(t, "keys") != 0 {
			t.Errorf("keys keeps passkeys or sessions: %+v, %d sessions", u.Passkeys, e.sessions(t, "keys"))
		}
		if r := keys.get(t, "/.authgate/admin/settings"); r.status != http.StatusSeeOther || r.location != "/.authgate/login" {
			t.Errorf("keys still signed in: %d %q", r.status, r.location)
		}
		if row := userRow(t, r.body, "keys"); !strings.Contains(row, `<span class="badge off">not set up</span>`) {
			t.Errorf("row after disabling\n%s", row)
		}

		// Disable Selected: an app and a passkey, and a security key only.
		r = a.follow(t, a.post(t, DisablePath, url.Values{"user": {"both", "solo", "none"}, "confirm": {"1"}}))
		if got := message(r.body, "notice"); got != "2FA disabled for 3 users. 1 of them had no 2FA set up; their sessions were ended too." {
			t.Errorf("notice %q", got)
		}
		for _, n := range []string{"both", "solo"} {
			if u := e.getUser(t, n); u.HasTOTP() || u.Passkeys != nil || len(u.RecoveryCodes) != 0 {
				t.Errorf("%s keeps 2FA: %+v", n, u)
			}
		}
		details := map[string]string{}
		for _, ev := range e.auditEvents(t) {
			if ev.Action == audit.TOTPDisabled && ev.Actor == "root" {
				details[ev.Target] = ev.Detail
			}
		}
		for n, want := range map[string]string{
			"keys": "2 passkeys removed; 1 session(s) revoked",
			"both": "authenticator app and 1 passkey removed; 1 session(s) revoked",
			"solo": "1 passkey removed; 0 session(s) revoked",
			"none": "2FA was not set up; 0 session(s) revoked",
		} {
			if details[n] != want {
				t.Errorf("audit detail of %s = %q, want %q", n, details[n], want)
			}
		}
	})
}

// auditRows returns "actor:action:target" of the audit table's rows.
func auditRows(body string) []string {
	var out []string
	for _, m := range auditRowRe.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1])+":"+m[2]+":"+html.UnescapeString(m[3]))
	}
	return out
}

func linkOf(re *regexp.Regexp, body string) string {
	if m := re.FindStringSubmatch(body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// Many events: pages of a chosen size with newer/older links; filters by
// user (actor or target) and by event type, kept across pages and views.
func TestAuditPagingAndFilters(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		rec := audit.New(e.st, zerologNop(), e.clk.Now)
		ctx := context.Background()
		// 130 events, oldest first: e000..e129. Every 10th is bob's
		// logout; every 3rd a role change of carol by dave; the rest
		// logins of uNNN.
		for i := range 130 {
			ev := store.AuditEvent{Action: audit.Login, Actor: fmt.Sprintf("u%03d", i), Target: fmt.Sprintf("u%03d", i)}
			switch {
			case i%10 == 0:
				ev = store.AuditEvent{Action: audit.Logout, Actor: "bob", Target: "bob"}
			case i%3 == 0:
				ev = store.AuditEvent{Action: audit.RoleChanged, Actor: "dave", Target: "carol", Detail: fmt.Sprint(i)}
			}
			rec.Record(ctx, ev)
			e.clk.Advance(time.Second)
		}
		rec.Record(ctx, store.AuditEvent{Action: audit.LoginFailed, Actor: "bob", Target: "bob", Detail: "bad password"})

		// Default: 50 a page, newest first.
		r := a.get(t, AuditPath)
		rows := auditRows(r.body)
		if len(rows) != 50 || rows[0] != "dave:role_changed:carol" || rows[1] != "u128:login:u128" || linkOf(newerRe, r.body) != "" {
			t.Fatalf("page 1: %d rows, first %q, newer %q", len(rows), rows[0], linkOf(newerRe, r.body))
		}
		older := linkOf(olderRe, r.body)
		if older != AuditPath+"?page=2" {
			t.Fatalf("older link %q", older)
		}
		r = a.get(t, older)
		rows = auditRows(r.body)
		if len(rows) != 50 || rows[0] != "u079:login:u079" || linkOf(newerRe, r.body) != AuditPath || !strings.Contains(r.body, "Events 51–100") {
			t.Errorf("page 2: %d rows, first %q, newer %q", len(rows), rows[0], linkOf(newerRe, r.body))
		}
		r = a.get(t, linkOf(olderRe, r.body))
		if rows = auditRows(r.body); len(rows) != 30 || rows[29] != "bob:logout:bob" || linkOf(olderRe, r.body) != "" {
			t.Errorf("page 3: %d rows, older %q", len(rows), linkOf(olderRe, r.body))
		}
		// Past the end: the last page.
		if rows = auditRows(a.get(t, AuditPath+"?page=99").body); len(rows) != 30 {
			t.Errorf("page 99: %d rows, want the last page's 30", len(rows))
		}

		// By user: bob's events (as actor or target); the failure only in
		// the views that list failures.
		r = a.get(t, AuditPath+"?user=bob&size=25")
		rows = auditRows(r.body)
		if len(rows) != 13 || slices.ContainsFunc(rows, func(s string) bool { return s != "bob:logout:bob" }) {
			t.Errorf("user=bob: %q", rows)
		}
		if !strings.Contains(r.body, `value="bob"`) || !strings.Contains(r.body, `<option value="25" selected>25</option>`) {
			t.Error("the filter form does not show the filter")
		}
		all := ""
		for _, v := range regexp.MustCompile(`<a href="([^"]*)">All</a>`).FindAllStringSubmatch(r.body, -1) {
			all = html.UnescapeString(v[1])
		}
		if all != AuditPath+"?size=25&user=bob&view=all" {
			t.Errorf("view link %q does not keep the filter", all)
		}
		if rows = auditRows(a.get(t, all).body); len(rows) != 14 || rows[0] != "bob:login_failed:bob" {
			t.Errorf("all, user=bob: %d rows, first %q", len(rows), rows[0])
		}
		// The target counts too: carol never acted.
		if rows = auditRows(a.get(t, AuditPath+"?user=carol").body); len(rows) != 39 || rows[0] != "dave:role_changed:carol" {
			t.Errorf("user=carol: %d rows", len(rows))
		}

		// By event, paged: 39 role changes in pages of 25, the filter kept
		// in the links.
		r = a.get(t, AuditPath+"?event=role_changed&size=25")
		rows = auditRows(r.body)
		older = linkOf(olderRe, r.body)
		if len(rows) != 25 || older != AuditPath+"?event=role_changed&page=2&size=25" || !strings.Contains(r.body, `<option value="role_changed" selected>`) {
			t.Fatalf("event=role_changed: %d rows, older %q", len(rows), older)
		}
		r = a.get(t, older)
		rows = auditRows(r.body)
		if len(rows) != 14 || linkOf(olderRe, r.body) != "" || linkOf(newerRe, r.body) != AuditPath+"?event=role_changed&size=25" {
			t.Errorf("event page 2: %d rows, newer %q", len(rows), linkOf(newerRe, r.body))
		}
		for _, row := range rows {
			if !strings.HasSuffix(row, ":role_changed:carol") {
				t.Errorf("event filter let %q through", row)
			}
		}
		// Both filters, and a filter that matches nothing.
		if rows = auditRows(a.get(t, AuditPath+"?user=dave&event=logout").body); len(rows) != 0 {
			t.Errorf("dave's logouts: %q", rows)
		}
		if b := a.get(t, AuditPath+"?user=nobody").body; !strings.Contains(b, "No events match this filter.") || !strings.Contains(b, `<a href="/.authgate/admin/audit" class="filter-reset">Show all</a>`) {
			t.Error("an empty filter result is not explained")
		}
		// Unknown events and sizes are dropped, not trusted.
		r = a.get(t, AuditPath+"?event=%3Cscript%3E&size=100000")
		if rows = auditRows(r.body); r.status != http.StatusOK || len(rows) != 50 || strings.Contains(r.body, "<script>") {
			t.Errorf("bogus event and size: %d, %d rows", r.status, len(rows))
		}
	})
}

// Every admin POST that changes something answers 303 to a GET page
// showing the result; reloading that page changes nothing more.
func TestPostsRedirect(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		for _, n := range []string{"bob", "carol", "dave", "erin"} {
			e.addUser(t, user{name: n, totp: true})
			e.login(t, n, e.clk.Now())
		}
		if err := e.st.PutBan(context.Background(), store.Ban{Key: "ip:203.0.113.9", Kind: store.BanKindIP, Subject: "203.0.113.9",
			Failures: 10, Level: 1, Since: e.clk.Now(), Until: e.clk.Now().Add(time.Hour)}, time.Hour); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			path   string
			form   url.Values
			page   string // the result page (path prefix)
			notice string // the message it shows ("" = none checked)
		}{
			{"disable 2FA", DisablePath, url.Values{"user": {"bob"}, "confirm": {"1"}}, UsersPath, "2FA disabled for 1 user."},
			{"disable selected", DisablePath, url.Values{"user": {"carol", "dave"}, "confirm": {"1"}}, UsersPath, "2FA disabled for 2 users."},
			{"revoke sessions", RevokePath, url.Values{"user": {"erin"}, "confirm": {"1"}}, UsersPath, "Ended 1 session of erin."},
			{"reset password", ResetPath, url.Values{"user": {"erin"}, "confirm": {"1"}}, TempPasswordPath, ""},
			{"set role", RolePath, url.Values{"user": {"bob"}, "role": {store.RoleAdmin}}, UsersPath, "bob now has the role admin."},
			{"settings", SettingsPath, url.Values{"mode": {"required"}, "issuer": {"Acme"}}, SettingsPath, noticeSaved},
			{"lift ban", LiftBanPath, url.Values{"key": {"ip:203.0.113.9"}}, BansPath, msgBanLifted},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := len(e.auditEvents(t))
				r := a.post(t, tc.path, tc.form)
				if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, tc.page) {
					t.Fatalf("POST %s: %d %q, want 303 to %s", tc.path, r.status, r.location, tc.page)
				}
				after := len(e.auditEvents(t))
				if after == before {
					t.Fatalf("POST %s changed nothing", tc.path)
				}
				first := a.get(t, r.location)
				if first.status != http.StatusOK {
					t.Fatalf("GET %s: %d", r.location, first.status)
				}
				if tc.notice != "" && message(first.body, "notice") != tc.notice {
					t.Errorf("notice %q, want %q", message(first.body, "notice"), tc.notice)
				}
				// A reload is a GET of the same page: nothing is done again.
				reload := a.get(t, r.location)
				if reload.status != http.StatusOK && !(tc.page == TempPasswordPath && reload.status == http.StatusGone) {
					t.Errorf("reload: %d", reload.status)
				}
				if n := len(e.auditEvents(t)); n != after {
					t.Errorf("reloading the result page recorded %d more events", n-after)
				}
			})
		}
		if e.getUser(t, "bob").HasTOTP() || e.getUser(t, "dave").HasTOTP() || !e.getUser(t, "erin").MustChangePassword {
			t.Error("an action did not happen")
		}
	})
}
