package account_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/store"
)

func TestOverviewShowsStatusCodesAndSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("alice", store.RoleUser)
		e.enrol("alice", 2)
		other := e.signIn("alice", "198.51.100.7", "Firefox on Linux")
		b := e.signIn("alice", "192.0.2.1", "Safari on iPhone")

		r := b.get("/.authgate/account")
		wantStatus(t, r, http.StatusOK)
		wantBody(t, r,
			`<main class="card wide"`, `aria-current="page">My account</a>`, "alice · <a href=\"/.authgate/logout\">Sign out</a>",
			`<span class="badge on">Enabled</span>`, "Reconfigure", "Remove two-factor authentication",
			`<span class="badge warn">2 left</span>`, "You are running out of recovery codes.", "Regenerate recovery codes",
			"Change password",
			"198.51.100.7", "Firefox on Linux", "192.0.2.1", "Safari on iPhone",
			`<span class="badge on">This session</span>`,
			`name="session" value="`+other.idHash[:12]+`"`,
			"Sign out all other sessions",
			`name="csrf_token" value="`+b.csrfToken()+`"`,
		)
		// The current session has no revoke button of its own.
		wantNotBody(t, r, `name="session" value="`+b.idHash[:12]+`"`)
		// Not an admin: no admin tabs.
		wantNotBody(t, r, "/.authgate/admin/settings", `<span class="badge warn">Signing in</span>`)
	})
}

func TestOverviewVariants(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("root", store.RoleAdmin)
		e.addUser("bob", store.RoleUser)
		e.enrol("bob", 10)

		// An admin without 2FA: the admin tabs, "not set up", no codes.
		r := e.signIn("root", "", "").get("/.authgate/account")
		wantStatus(t, r, http.StatusOK)
		wantBody(t, r, `href="/.authgate/admin/settings"`, `<span class="badge off">Not set up</span>`,
			"Set up two-factor authentication", "Recovery codes come with two-factor authentication")
		wantNotBody(t, r, "Remove two-factor authentication", "Regenerate recovery codes", "Sign out all other sessions")

		// Mode required: removal is not offered, and the page says why.
		e.setMode("required")
		r = e.signIn("bob", "", "").get("/.authgate/account")
		wantBody(t, r, `<span class="badge on">10 left</span>`, "required for every account on this gateway, so it cannot be removed")
		wantNotBody(t, r, `action="/.authgate/account/2fa/remove"`, "running out")

		// Mode off: the page says codes are not asked for now.
		e.setMode("off")
		r = e.signIn("bob", "", "").get("/.authgate/account")
		wantBody(t, r, "codes are not asked for at sign-in right now", `action="/.authgate/account/2fa/remove"`)
		wantBody(t, e.signIn("bob", "", "").get("/.authgate/account/2fa/setup"), "turned off for this gateway right now")

		// A half-finished login of bob's shows as signing in.
		if _, _, err := e.mgr.Create(e.ctx(), store.Session{User: "bob", Stage: store.StagePending, IP: "203.0.113.9"}); err != nil {
			t.Fatal(err)
		}
		r = e.signIn("bob", "", "").get("/.authgate/account?done=password")
		wantBody(t, r, `<span class="badge warn">Signing in</span>`, "203.0.113.9",
			`role="status">Your password was changed. Your other sessions were signed out.</div>`)
		// An unknown notice key shows nothing; the query never carries text.
		r = e.signIn("bob", "", "").get("/.authgate/account?done=%3Cb%3Ehi")
		wantNotBody(t, r, `role="status"`, "&lt;b&gt;hi")
	})
}

func TestAccountNeedsSignIn(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("alice", store.RoleUser)
		for _, path := range []string{"/.authgate/account", "/.authgate/account/2fa/setup", "/.authgate/account/recovery/codes.txt", "/.authgate/account/password"} {
			r := e.anonymous().get(path)
			if r.status != http.StatusFound || !strings.HasPrefix(r.location(), "/.authgate/login") {
				t.Errorf("GET %s without a session: %d %q, want a redirect to the login", path, r.status, r.location())
			}
		}
		// A POST without a session changes nothing and is refused.
		a := e.anonymous()
		r := a.post("/.authgate/account/sessions/revoke-others", url.Values{"confirm": {"1"}})
		if r.status != http.StatusUnauthorized {
			t.Errorf("POST without a session: %d, want 401", r.status)
		}
		// Unknown paths under the account are a 404 page.
		r = e.signIn("alice", "", "").get("/.authgate/account/nope")
		wantStatus(t, r, http.StatusNotFound)
	})
}

// Every POST needs the CSRF token: without it nothing happens.
func TestPostsNeedCSRFToken(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("alice", store.RoleUser)
		e.enrol("alice", 5)
		other := e.signIn("alice", "", "")
		b := e.signIn("alice", "", "")
		b.csrfToken() // has the cookie, but sends no field
		forms := map[string]url.Values{
			"/.authgate/account/2fa/remove":             {"confirm": {"1"}, "password": {goodPassword}},
			"/.authgate/account/recovery/generate":      {"confirm": {"1"}},
			"/.authgate/account/password":               {"current_password": {goodPassword}, "new_password": {"another password"}, "new_password_repeat": {"another password"}},
			"/.authgate/account/sessions/revoke":        {"session": {other.idHash[:12]}},
			"/.authgate/account/sessions/revoke-others": {"confirm": {"1"}},
			"/.authgate/account/2fa/setup":              {"code": {"123456"}},
		}
		before := e.user("alice")
		for path, form := range forms {
			r := b.postRaw(path, form)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "Your form expired") {
				t.Errorf("POST %s without token: %d", path, r.status)
			}
			form.Set("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
			if r := b.postRaw(path, form); r.status != http.StatusForbidden {
				t.Errorf("POST %s with a wrong token: %d", path, r.status)
			}
		}
		after := e.user("alice")
		if after.PasswordHash != before.PasswordHash || !after.HasTOTP() || len(after.RecoveryCodes) != 5 || len(e.sessions("alice")) != 2 {
			t.Error("a POST without a valid CSRF token changed the account")
		}
	})
}

// User names and session details are untrusted: every page escapes them.
func TestUntrustedValuesAreEscaped(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		const evil = `<img src=x onerror=alert(1)>"'`
		e.addUser(evil, store.RoleUser)
		e.signIn(evil, "", `<script>alert("ua")</script>`)
		b := e.signIn(evil, "", "")
		pages := []response{
			b.get("/.authgate/account"),
			b.get("/.authgate/account/2fa/setup"),
			b.get("/.authgate/account/password"),
			b.post("/.authgate/account/sessions/revoke-others", nil),
		}
		for i, r := range pages {
			if r.status != http.StatusOK {
				t.Fatalf("page %d: status %d", i, r.status)
			}
			if strings.Contains(r.body, "<img src=x") || strings.Contains(r.body, `<script>alert("ua")`) {
				t.Errorf("page %d: unescaped user input", i)
			}
			if !strings.Contains(r.body, "&lt;img src=x onerror=alert(1)&gt;") {
				t.Errorf("page %d: escaped user name missing", i)
			}
		}
		wantBody(t, pages[0], "&lt;script&gt;alert(&#34;ua&#34;)&lt;/script&gt;")
	})
}
