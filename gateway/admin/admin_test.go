package admin

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
)

// Every admin page refuses a signed-in user without the admin role, and
// no action of theirs changes anything.
func TestNonAdminIsForbidden(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.addUser(t, user{name: "root", role: store.RoleAdmin, totp: true})
		e.addUser(t, user{name: "mallory", totp: true})
		e.addUser(t, user{name: "bob", totp: true})
		e.login(t, "bob", e.clk.Now())
		m := e.login(t, "mallory", e.clk.Now())
		for _, path := range []string{"/.authgate/admin", "/.authgate/admin/settings", "/.authgate/admin/users",
			"/.authgate/admin/upstreams", "/.authgate/admin/audit", "/.authgate/admin/nope"} {
			r := m.get(t, path)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "for administrators only") {
				t.Errorf("GET %s: %d, want 403 page\n%s", path, r.status, r.body)
			}
			if strings.Contains(r.body, "/.authgate/admin/settings") {
				t.Errorf("GET %s: the 403 page shows admin links", path)
			}
		}
		posts := []struct {
			path string
			form url.Values
		}{
			{DisablePath, url.Values{"user": {"bob"}, "confirm": {"1"}}},
			{RevokePath, url.Values{"user": {"bob"}, "confirm": {"1"}}},
			{ResetPath, url.Values{"user": {"bob"}, "confirm": {"1"}}},
			{RolePath, url.Values{"user": {"mallory"}, "role": {store.RoleAdmin}}},
			{SettingsPath, url.Values{"mode": {"off"}, "issuer": {"Evil"}}},
		}
		for _, p := range posts {
			if r := m.post(t, p.path, p.form); r.status != http.StatusForbidden {
				t.Errorf("POST %s: %d, want 403", p.path, r.status)
			}
		}
		bob := e.getUser(t, "bob")
		if !bob.HasTOTP() || len(bob.RecoveryCodes) != 10 || e.sessions(t, "bob") != 1 || bob.MustChangePassword {
			t.Errorf("bob changed by a non-admin: %+v", bob)
		}
		if got := e.getUser(t, "mallory").Role; got != store.RoleUser {
			t.Errorf("mallory made herself %s", got)
		}
		if v, _ := e.set.Current(context.Background()); v.Mode != "on" || v.Issuer != "" {
			t.Errorf("settings changed by a non-admin: %+v", v)
		}
	})
}

// An admin whose last code is older than 10 minutes is sent to step-up,
// and comes back to the page (a POST is refused and returns to its tab).
func TestStepUp(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.addUser(t, user{name: "root", role: store.RoleAdmin, totp: true})
		e.addUser(t, user{name: "bob"})
		stale := e.login(t, "root", e.clk.Now().Add(-11*time.Minute))
		fresh := e.login(t, "root", e.clk.Now().Add(-9*time.Minute))
		noCode := e.login(t, "root", time.Time{})

		for _, a := range []*agent{stale, noCode} {
			r := a.get(t, "/.authgate/admin/users?q=bo&page=1")
			if want := auth.StepUpURL("/.authgate/admin/users?q=bo&page=1"); r.status != http.StatusSeeOther || r.location != want {
				t.Errorf("GET: %d %q, want 303 %q", r.status, r.location, want)
			}
			r = a.post(t, RolePath, url.Values{"user": {"bob"}, "role": {store.RoleAdmin}})
			if want := auth.StepUpURL(UsersPath); r.status != http.StatusSeeOther || r.location != want {
				t.Errorf("POST role: %d %q, want 303 %q", r.status, r.location, want)
			}
			r = a.post(t, SettingsPath, url.Values{"mode": {"off"}})
			if want := auth.StepUpURL(SettingsPath); r.status != http.StatusSeeOther || r.location != want {
				t.Errorf("POST settings: %d %q, want 303 %q", r.status, r.location, want)
			}
		}
		if got := e.getUser(t, "bob").Role; got != store.RoleUser {
			t.Errorf("role changed without step-up: %s", got)
		}
		if r := fresh.get(t, "/.authgate/admin/users"); r.status != http.StatusOK {
			t.Errorf("fresh admin: %d", r.status)
		}
		// Time passes: the same session needs a new code.
		e.clk.Advance(2 * time.Minute)
		if r := fresh.get(t, "/.authgate/admin/users"); r.status != http.StatusSeeOther {
			t.Errorf("after 11 minutes: %d, want step-up", r.status)
		}
		// Outside mode off, an admin without 2FA is sent to set it up
		// first (the admin area is never weaker than what it protects);
		// in mode off there is nothing to step up with.
		e.addUser(t, user{name: "plain", role: store.RoleAdmin})
		plain := e.login(t, "plain", time.Time{})
		for _, p := range []string{"/.authgate/admin/settings", "/.authgate/admin/users"} {
			r := plain.get(t, p)
			if want := auth.SetupPage + "?rd=" + url.QueryEscape(p); r.status != http.StatusSeeOther || r.location != want {
				t.Errorf("admin without 2FA in mode on, GET %s: %d %q, want 303 %q", p, r.status, r.location, want)
			}
		}
		if r := plain.post(t, SettingsPath, url.Values{"mode": {"off"}}); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, auth.SetupPage) {
			t.Errorf("admin without 2FA in mode on, POST settings: %d %q, want the set-up page", r.status, r.location)
		}
		if err := e.st.SetSetting(t.Context(), settings.KeyMode, settings.ModeOff); err != nil {
			t.Fatal(err)
		}
		if r := plain.get(t, "/.authgate/admin/settings"); r.status != http.StatusOK {
			t.Errorf("admin without 2FA in mode off: %d", r.status)
		}
	})
}

func TestRoutingAndCSRF(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		e.addUser(t, user{name: "bob"})
		for _, p := range []string{"/.authgate/admin", "/.authgate/admin/"} {
			if r := a.get(t, p); r.status != http.StatusSeeOther || r.location != SettingsPath {
				t.Errorf("GET %s: %d %q", p, r.status, r.location)
			}
		}
		if r := a.get(t, "/.authgate/admin/nope"); r.status != http.StatusNotFound {
			t.Errorf("unknown page: %d", r.status)
		}
		// No token, or a wrong one: the CSRF middleware refuses.
		for _, tok := range []string{"", strings.Repeat("A", 43)} {
			f := url.Values{"user": {"bob"}, "role": {store.RoleAdmin}}
			a.csrfToken(t)
			if tok != "" {
				f.Set("csrf_token", tok)
			}
			if r := a.postRaw(t, RolePath, f); r.status != http.StatusForbidden {
				t.Errorf("token %q: %d, want 403", tok, r.status)
			}
		}
		if got := e.getUser(t, "bob").Role; got != store.RoleUser {
			t.Errorf("role changed without a CSRF token: %s", got)
		}
	})
}

func TestSettings(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		r := a.get(t, SettingsPath)
		for _, want := range []string{
			`<input type="radio" id="mode-on" name="mode" value="on" checked`,
			`<input type="radio" id="mode-off" name="mode" value="off" aria-describedby`,
			`placeholder="Legacy Admin"`, "the default, <strong>Legacy Admin</strong>",
			"Changing the Issuer affects new enrolments only",
			`<a href="/.authgate/admin/settings" aria-current="page">Settings</a>`,
			`<a href="/.authgate/account"`,
			`<input type="hidden" name="csrf_token" value="` + a.csrfToken(t) + `">`,
			// Where the mode in force comes from, before any is set here.
			`The mode in force comes from: two_factor.mode in the config file, until`,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("settings page lacks %q", want)
			}
		}

		r = a.post(t, SettingsPath, url.Values{"mode": {"required"}, "issuer": {"  Acme Panel "}})
		r = a.follow(t, r)
		if !strings.Contains(r.body, "The mode in force comes from: set on the admin Settings page or with") {
			t.Errorf("after saving, the page does not say the mode now comes from the Settings page")
		}
		if got := message(r.body, "notice"); !strings.Contains(got, "Settings saved") {
			t.Errorf("notice %q", got)
		}
		v, err := e.set.Current(context.Background())
		if err != nil || v.Mode != "required" || v.Issuer != "Acme Panel" {
			t.Errorf("settings.Source sees %+v, %v", v, err)
		}
		if !strings.Contains(r.body, `value="required" checked`) || !strings.Contains(r.body, `value="Acme Panel"`) {
			t.Error("page does not show the new settings")
		}
		if !e.hasEvent(t, audit.SettingChanged, "two_factor.mode", "root") || !e.hasEvent(t, audit.SettingChanged, "two_factor.issuer", "root") {
			t.Errorf("settings changes not audited with the admin as actor: %+v", e.auditEvents(t))
		}

		// Saving the same values changes nothing and says so.
		n := len(e.auditEvents(t))
		r = a.follow(t, a.post(t, SettingsPath, url.Values{"mode": {"required"}, "issuer": {"Acme Panel"}}))
		if got := message(r.body, "notice"); got != noticeNoop || len(e.auditEvents(t)) != n {
			t.Errorf("no-op save: notice %q, %d new events", got, len(e.auditEvents(t))-n)
		}

		// Back to the default Issuer.
		a.follow(t, a.post(t, SettingsPath, url.Values{"mode": {"on"}, "issuer": {""}}))
		if v, _ := e.set.Current(context.Background()); v.Mode != "on" || v.Issuer != "" {
			t.Errorf("after reset: %+v", v)
		}

		for _, tc := range []struct {
			name, mode, issuer, msg string
		}{
			{"unknown mode", "sometimes", "", msgBadMode},
			{"no mode", "", "", msgBadMode},
			{"colon in issuer", "on", "a:b", msgBadIssuer},
			{"control character", "on", "a\x01b", msgBadIssuer},
			{"too long", "on", strings.Repeat("x", 65), msgBadIssuer},
		} {
			r := a.post(t, SettingsPath, url.Values{"mode": {tc.mode}, "issuer": {tc.issuer}})
			if r.status != http.StatusBadRequest || message(r.body, "error") != tc.msg {
				t.Errorf("%s: %d %q", tc.name, r.status, message(r.body, "error"))
			}
		}
		if v, _ := e.set.Current(context.Background()); v.Mode != "on" || v.Issuer != "" {
			t.Errorf("refused input changed settings: %+v", v)
		}
	})
}

// Disable Selected: confirm page listing the users, then 2FA, recovery
// codes and every session of exactly those users are gone.
func TestBulkDisable(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		for _, n := range []string{"bob", "carol", "dave"} {
			e.addUser(t, user{name: n, totp: true})
		}
		e.addUser(t, user{name: "erin"})
		bob1, bob2 := e.login(t, "bob", e.clk.Now()), e.login(t, "bob", e.clk.Now())
		carol := e.login(t, "carol", e.clk.Now())
		e.login(t, "dave", e.clk.Now())
		e.login(t, "erin", time.Time{})

		list := a.get(t, UsersPath)
		for _, n := range []string{"bob", "carol", "dave", "erin"} {
			if !strings.Contains(list.body, `name="selected" value="`+n+`" form="bulk"`) {
				t.Errorf("no checkbox for %s", n)
			}
		}
		r := a.post(t, DisablePath, url.Values{"selected": {"bob", "carol", "erin", "bob"}, "back": {"q=&page=1"}})
		if r.status != http.StatusOK || !strings.Contains(r.body, "these 3 users") {
			t.Fatalf("confirm page: %d\n%s", r.status, r.body)
		}
		for _, n := range []string{"bob", "carol", "erin"} {
			if !strings.Contains(r.body, "<li><strong>"+n+"</strong></li>") {
				t.Errorf("confirm page does not list %s", n)
			}
		}
		users := hidden(r.body, "user")
		if !slices.Equal(users, []string{"bob", "carol", "erin"}) || !slices.Equal(hidden(r.body, "confirm"), []string{"1"}) {
			t.Fatalf("confirm form carries users %q confirm %q", users, hidden(r.body, "confirm"))
		}
		if !e.getUser(t, "bob").HasTOTP() || e.sessions(t, "bob") != 2 {
			t.Fatal("the confirmation page already changed something")
		}

		r = a.post(t, DisablePath, url.Values{"user": users, "confirm": {"1"}, "back": hidden(r.body, "back")})
		r = a.follow(t, r)
		if got := message(r.body, "notice"); !strings.HasPrefix(got, "2FA disabled for 3 users.") || !strings.Contains(got, "1 of them had no 2FA") {
			t.Errorf("notice %q", got)
		}
		for _, n := range []string{"bob", "carol", "erin"} {
			u := e.getUser(t, n)
			if u.HasTOTP() || len(u.RecoveryCodes) != 0 || !u.TOTPEnrolledAt.IsZero() {
				t.Errorf("%s keeps 2FA: %+v", n, u)
			}
			if got := e.sessions(t, n); got != 0 {
				t.Errorf("%s keeps %d sessions", n, got)
			}
		}
		// Their browsers are signed out at once.
		for _, b := range []*agent{bob1, bob2, carol} {
			if r := b.get(t, "/.authgate/admin/settings"); r.status != http.StatusSeeOther || r.location != "/.authgate/login" {
				t.Errorf("%s still signed in: %d %q", b.name, r.status, r.location)
			}
		}
		// Others are untouched.
		if d := e.getUser(t, "dave"); !d.HasTOTP() || len(d.RecoveryCodes) != 10 || e.sessions(t, "dave") != 1 {
			t.Errorf("dave changed: %+v", d)
		}
		if !e.getUser(t, "root").HasTOTP() {
			t.Error("the admin lost 2FA")
		}
		for _, n := range []string{"bob", "carol", "erin"} {
			if !e.hasEvent(t, audit.TOTPDisabled, n, "root") {
				t.Errorf("no totp_disabled event for %s by root", n)
			}
		}
	})
}

func TestDisableOneAndRefusals(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		e.addUser(t, user{name: "bob", totp: true})
		e.login(t, "bob", e.clk.Now())

		r := a.post(t, DisablePath, url.Values{"user": {"bob"}})
		if r.status != http.StatusOK || !strings.Contains(r.body, "for this user?") || !slices.Equal(hidden(r.body, "user"), []string{"bob"}) {
			t.Fatalf("confirm: %d\n%s", r.status, r.body)
		}
		r = a.follow(t, a.post(t, DisablePath, url.Values{"user": {"bob"}, "confirm": {"1"}}))
		if got := message(r.body, "notice"); got != "2FA disabled for 1 user." {
			t.Errorf("notice %q", got)
		}
		if u := e.getUser(t, "bob"); u.HasTOTP() || e.sessions(t, "bob") != 0 {
			t.Error("bob keeps 2FA or sessions")
		}

		for _, tc := range []struct {
			name   string
			form   url.Values
			status int
			msg    string
		}{
			{"nothing selected", url.Values{}, http.StatusBadRequest, msgNoneChosen},
			{"nothing confirmed", url.Values{"confirm": {"1"}, "selected": {"bob"}}, http.StatusBadRequest, msgNoneChosen},
			{"unknown user", url.Values{"confirm": {"1"}, "user": {"ghost"}}, http.StatusNotFound, "No such user."},
			{"unknown among known", url.Values{"confirm": {"1"}, "user": {"root", "ghost"}}, http.StatusNotFound, "No such user."},
		} {
			r := a.post(t, DisablePath, tc.form)
			if r.status != tc.status || message(r.body, "error") != tc.msg {
				t.Errorf("%s: %d %q", tc.name, r.status, message(r.body, "error"))
			}
		}
		if !e.getUser(t, "root").HasTOTP() {
			t.Error("a refused bulk disable changed the admin")
		}
	})
}

func TestRevokeSessions(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		e.addUser(t, user{name: "bob", totp: true})
		b1, _ := e.login(t, "bob", e.clk.Now()), e.login(t, "bob", e.clk.Now())

		r := a.post(t, RevokePath, url.Values{"user": {"bob"}, "back": {"q=bo"}})
		if r.status != http.StatusOK || !strings.Contains(r.body, "End all sessions of this user?") ||
			!strings.Contains(r.body, `<a href="/.authgate/admin/users?q=bo">Cancel</a>`) {
			t.Fatalf("confirm: %d\n%s", r.status, r.body)
		}
		if e.sessions(t, "bob") != 2 {
			t.Fatal("sessions revoked before confirming")
		}
		r = a.post(t, RevokePath, url.Values{"user": {"bob"}, "confirm": {"1"}, "back": {"q=bo"}})
		if !strings.HasPrefix(r.location, UsersPath+"?q=bo&") {
			t.Errorf("back to %q, want the filtered list", r.location)
		}
		r = a.follow(t, r)
		if got := message(r.body, "notice"); got != "Ended 2 sessions of bob." {
			t.Errorf("notice %q", got)
		}
		if e.sessions(t, "bob") != 0 || !e.getUser(t, "bob").HasTOTP() {
			t.Error("revoke: sessions left or 2FA touched")
		}
		if r := b1.get(t, "/.authgate/admin/users"); r.location != "/.authgate/login" {
			t.Errorf("bob still signed in: %d", r.status)
		}
		if !e.hasEvent(t, audit.SessionsRevoked, "bob", "root") {
			t.Error("revoke not audited")
		}
		r = a.post(t, RevokePath, url.Values{"user": {"ghost"}, "confirm": {"1"}})
		if r.status != http.StatusNotFound || message(r.body, "error") != "No such user." {
			t.Errorf("unknown user: %d %q", r.status, message(r.body, "error"))
		}
	})
}

func TestResetPassword(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		e.addUser(t, user{name: "bob", totp: true})
		e.login(t, "bob", e.clk.Now())

		r := a.post(t, ResetPath, url.Values{"user": {"bob"}})
		if r.status != http.StatusOK || !strings.Contains(r.body, "Reset the password of this user?") {
			t.Fatalf("confirm: %d\n%s", r.status, r.body)
		}
		if e.getUser(t, "bob").MustChangePassword {
			t.Fatal("reset before confirming")
		}
		// The POST answers 303 to the page that shows the password; the
		// password is in neither the redirect nor the POST's answer.
		r = a.post(t, ResetPath, url.Values{"user": {"bob"}, "confirm": {"1"}, "back": {"q=bo"}})
		if r.status != http.StatusSeeOther || r.location != TempPasswordPath || tempPassRe.MatchString(r.body) {
			t.Fatalf("reset: %d %q, want 303 to %s", r.status, r.location, TempPasswordPath)
		}
		r = a.get(t, r.location)
		m := tempPassRe.FindStringSubmatch(r.body)
		if r.status != http.StatusOK || m == nil {
			t.Fatalf("no temporary password shown: %d\n%s", r.status, r.body)
		}
		pw := m[1]
		if !strings.Contains(r.body, `<a href="/.authgate/admin/users?q=bo">Back to Manage users</a>`) {
			t.Error("the result page does not lead back to the list the reset came from")
		}
		// Shown once: a reload shows it no more, and does not reset again.
		hashAfter := e.getUser(t, "bob").PasswordHash
		again := a.get(t, TempPasswordPath)
		if again.status != http.StatusGone || tempPassRe.MatchString(again.body) || strings.Contains(again.body, pw) ||
			!strings.Contains(again.body, `id="temp-password-gone"`) {
			t.Errorf("reload of the result page: %d, password shown again or not explained", again.status)
		}
		if e.getUser(t, "bob").PasswordHash != hashAfter {
			t.Error("reloading the result page reset the password again")
		}
		if len(pw) != TempPasswordLen || strings.ContainsAny(pw, "0O1lI") {
			t.Errorf("temporary password %q: want %d unambiguous characters", pw, TempPasswordLen)
		}
		bob := e.getUser(t, "bob")
		if ok, err := e.hasher.Verify(bob.PasswordHash, pw); !ok || err != nil {
			t.Errorf("temporary password does not verify: %v", err)
		}
		if ok, _ := e.hasher.Verify(bob.PasswordHash, oldPassword); ok {
			t.Error("old password still works")
		}
		if !bob.MustChangePassword || e.sessions(t, "bob") != 0 {
			t.Errorf("must change %v, %d sessions", bob.MustChangePassword, e.sessions(t, "bob"))
		}
		if strings.Contains(e.logs.String(), pw) {
			t.Error("the temporary password reached the log")
		}
		for _, ev := range e.auditEvents(t) {
			if strings.Contains(ev.Detail, pw) {
				t.Error("the temporary password reached the audit trail")
			}
		}
		if !e.hasEvent(t, audit.PasswordReset, "bob", "root") {
			t.Error("reset not audited")
		}
		// Two resets give two different passwords.
		r2 := a.get(t, a.post(t, ResetPath, url.Values{"user": {"bob"}, "confirm": {"1"}}).location)
		if m2 := tempPassRe.FindStringSubmatch(r2.body); m2 == nil || m2[1] == pw {
			t.Error("second reset did not give a new password")
		}
		// The list shows who must change their password.
		if !strings.Contains(a.get(t, UsersPath).body, "must change password") {
			t.Error("users page does not flag the reset")
		}

		for _, tc := range []struct {
			name   string
			user   string
			status int
			msg    string
		}{
			{"own password", "root", http.StatusBadRequest, msgSelfReset},
			{"unknown user", "ghost", http.StatusNotFound, "No such user."},
			{"no user", "", http.StatusBadRequest, msgNoneChosen},
		} {
			r := a.post(t, ResetPath, url.Values{"user": {tc.user}, "confirm": {"1"}})
			if r.status != tc.status || message(r.body, "error") != tc.msg || tempPassRe.MatchString(r.body) {
				t.Errorf("%s: %d %q", tc.name, r.status, message(r.body, "error"))
			}
		}
		if e.getUser(t, "root").MustChangePassword {
			t.Error("admin reset their own password")
		}
	})
}

// The temporary password waits in the resetting admin's session only:
// sealed in the store, unreadable from another admin's session or another
// browser of the same admin, and gone after a few minutes.
func TestTempPasswordHeldForOneSession(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		e.addUser(t, user{name: "boss", role: store.RoleAdmin, totp: true})
		other := e.login(t, "boss", e.clk.Now())
		sameAdmin := e.login(t, "root", e.clk.Now())
		e.addUser(t, user{name: "bob"})
		e.addUser(t, user{name: "carol"})

		r := a.post(t, ResetPath, url.Values{"user": {"bob"}, "confirm": {"1"}})
		if r.status != http.StatusSeeOther || r.location != TempPasswordPath {
			t.Fatalf("reset: %d %q", r.status, r.location)
		}
		// Neither another admin nor another browser of root sees it, and
		// their look does not use it up.
		for name, b := range map[string]*agent{"another admin": other, "another session of root": sameAdmin} {
			if g := b.get(t, TempPasswordPath); g.status != http.StatusGone || tempPassRe.MatchString(g.body) {
				t.Errorf("%s: %d, password shown", name, g.status)
			}
		}
		// The store holds it sealed, in root's session only.
		var held []byte
		for _, n := range []string{"root", "boss"} {
			ss, err := e.st.ListUserSessions(context.Background(), n)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				if len(s.AdminResultSealed) > 0 {
					if n != "root" || held != nil {
						t.Errorf("a result held in a session of %s", n)
					}
					held = s.AdminResultSealed
				}
			}
		}
		g := a.get(t, TempPasswordPath)
		m := tempPassRe.FindStringSubmatch(g.body)
		if g.status != http.StatusOK || m == nil {
			t.Fatalf("root's own session: %d, no password", g.status)
		}
		if held == nil || strings.Contains(string(held), m[1]) {
			t.Error("the password was not held, or held in clear")
		}
		if strings.Contains(e.logs.String(), m[1]) {
			t.Error("the temporary password reached the log")
		}
		ss, _ := e.st.ListUserSessions(context.Background(), "root")
		for _, s := range ss {
			if len(s.AdminResultSealed) > 0 {
				t.Error("the shown password is still held in the session")
			}
		}

		// Not shown after the few minutes it waits.
		a.post(t, ResetPath, url.Values{"user": {"carol"}, "confirm": {"1"}})
		e.clk.Advance(DefaultResultFor)
		if g := a.get(t, TempPasswordPath); g.status != http.StatusGone || tempPassRe.MatchString(g.body) {
			t.Errorf("after %v: %d, password shown", DefaultResultFor, g.status)
		}
		if !e.getUser(t, "carol").MustChangePassword {
			t.Error("carol's reset did not happen")
		}
	})
}

func TestSetRole(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		e.addUser(t, user{name: "bob"})

		r := a.post(t, RolePath, url.Values{"user": {"root"}, "role": {store.RoleUser}})
		if r.status != http.StatusConflict || message(r.body, "error") != msgLastAdmin {
			t.Errorf("demoting the last admin: %d %q", r.status, message(r.body, "error"))
		}
		if e.getUser(t, "root").Role != store.RoleAdmin {
			t.Fatal("last admin demoted")
		}

		r = a.follow(t, a.post(t, RolePath, url.Values{"user": {"bob"}, "role": {store.RoleAdmin}}))
		if got := message(r.body, "notice"); got != "bob now has the role admin." {
			t.Errorf("notice %q", got)
		}
		if e.getUser(t, "bob").Role != store.RoleAdmin || !e.hasEvent(t, audit.RoleChanged, "bob", "root") {
			t.Error("bob not made admin, or not audited")
		}
		// With another admin, root may step down. A role change ends the
		// user's sessions, so root is signed out at once.
		r = a.follow(t, a.post(t, RolePath, url.Values{"user": {"root"}, "role": {store.RoleUser}}))
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/.authgate/login") || e.getUser(t, "root").Role != store.RoleUser {
			t.Errorf("root stepping down: %d to %q, role %s", r.status, r.location, e.getUser(t, "root").Role)
		}

		e.addUser(t, user{name: "boss", role: store.RoleAdmin, totp: true})
		b := e.login(t, "boss", e.clk.Now())
		for _, tc := range []struct {
			name, user, role string
			status           int
			msg              string
		}{
			{"bad role", "bob", "superuser", http.StatusBadRequest, msgBadRole},
			{"unknown user", "ghost", store.RoleAdmin, http.StatusNotFound, "No such user."},
		} {
			r := b.post(t, RolePath, url.Values{"user": {tc.user}, "role": {tc.role}})
			if r.status != tc.status || message(r.body, "error") != tc.msg {
				t.Errorf("%s: %d %q", tc.name, r.status, message(r.body, "error"))
			}
		}
	})
}
