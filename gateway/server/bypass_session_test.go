package server_test

// Bypass tests of issue 5 about sessions: invalidation, fixation, group
// changes, probes, CSRF and the gateway pages' security headers.

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/account"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
)

// userAdmin is the users.Service (what the CLI and the admin pages
// use) over the gateway's store.
func userAdmin(g *gateway) *users.Service {
	st := g.srv.Store()
	src := settings.New(st, settings.Values{Mode: g.cfg.TwoFactor.Mode}, time.Second, g.clock.Now)
	return users.NewService(st, src, audit.New(st, zerolog.Nop(), g.clock.Now), "test", g.clock.Now)
}

// signInAgain signs user in on b with the password and a fresh code.
func signInAgain(t *testing.T, g *gateway, b *browser, user, pw, secret string) {
	t.Helper()
	// A signed-in browser's login page forwards at once: take the form
	// token from the logout page then.
	formPage := "/.authgate/login"
	if b.get(formPage).status == http.StatusSeeOther {
		formPage = "/.authgate/logout"
	}
	r := b.post(formPage, "/.authgate/login", url.Values{"username": {user}, "password": {pw}})
	mustStatus(t, r, http.StatusSeeOther, "login "+user)
	if location(r) != "/.authgate/verify" {
		t.Fatalf("login %s went to %q", user, location(r))
	}
	r = b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, g.clock.Now())}})
	mustStatus(t, r, http.StatusSeeOther, "verify "+user)
	g.clock.Advance(30 * time.Second) // the next sign-in needs a new code
}

// TestChangesEndSessionsAtOnce: logout, 2FA removal, password changes,
// role changes and deletion end the user's sessions before the next
// request, on every browser.
func TestChangesEndSessionsAtOnce(t *testing.T) {
	g, pub, adm := twoRoutes(t, nil)
	svc := userAdmin(g)
	ctx := context.Background()
	// Another admin, so role changes and deletes of alice's peers are
	// allowed.
	g.addUser(t, "root", "correct horse")
	if err := svc.SetRole(ctx, "root", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	newHash := func() string {
		h, err := hasher().Hash("another password")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, tc := range []struct {
		name string
		// act changes the user; b1 is one of the user's browsers.
		act func(t *testing.T, user string, b1 *browser)
		// b1Rotated: b1 itself keeps a (new) session, only its old id dies.
		b1Rotated bool
		// onlyB1: the change ends b1's session only (signing out ends
		// this browser's session; "sign out everywhere" is the account
		// page's revoke-others).
		onlyB1 bool
	}{
		{"logout", func(t *testing.T, user string, b1 *browser) {
			mustStatus(t, b1.post("/.authgate/logout", "/.authgate/logout", url.Values{}), http.StatusSeeOther, "logout")
		}, false, true},
		{"2FA disabled by an admin", func(t *testing.T, user string, _ *browser) {
			if _, err := svc.DisableTwoFactor(ctx, []string{user}); err != nil {
				t.Fatal(err)
			}
		}, false, false},
		{"password set by an admin", func(t *testing.T, user string, _ *browser) {
			if err := svc.SetPassword(ctx, user, newHash()); err != nil {
				t.Fatal(err)
			}
		}, false, false},
		{"password reset by an admin", func(t *testing.T, user string, _ *browser) {
			if err := svc.ResetPassword(ctx, user, newHash()); err != nil {
				t.Fatal(err)
			}
		}, false, false},
		{"password changed on the account page", func(t *testing.T, user string, b1 *browser) {
			r := b1.post(account.PathPassword, account.PathPassword, url.Values{
				"current_password": {"correct horse"}, "new_password": {"another password"}, "new_password_repeat": {"another password"}})
			if r.status != http.StatusSeeOther {
				t.Fatalf("password change: %d %.300s", r.status, r.body)
			}
		}, true, false},
		{"promoted to admin", func(t *testing.T, user string, _ *browser) {
			if err := svc.SetRole(ctx, user, store.RoleAdmin); err != nil {
				t.Fatal(err)
			}
		}, false, false},
		{"demoted from admin", func(t *testing.T, user string, _ *browser) {
			if err := svc.SetRole(ctx, user, store.RoleUser); err != nil {
				t.Fatal(err)
			}
		}, false, false},
		{"deleted", func(t *testing.T, user string, _ *browser) {
			if err := svc.Delete(ctx, user); err != nil {
				t.Fatal(err)
			}
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "u" + strings.NewReplacer(" ", "", "2", "two").Replace(tc.name)
			user = user[:min(len(user), 30)]
			g.addUser(t, user, "correct horse", "ops")
			if tc.name == "demoted from admin" {
				if err := svc.SetRole(ctx, user, store.RoleAdmin); err != nil {
					t.Fatal(err)
				}
			}
			b1, b2 := g.browser(t), g.browser(t)
			r := b1.post("/.authgate/login", "/.authgate/login", url.Values{"username": {user}, "password": {"correct horse"}})
			mustStatus(t, r, http.StatusSeeOther, "login")
			secret := secretEnrol(t, g, b1)
			signInAgain(t, g, b2, user, "correct horse", secret)
			old1, old2 := sessionCookie(t, g, b1), sessionCookie(t, g, b2)
			for _, b := range []*browser{b1, b2} {
				mustStatus(t, b.get("/admin/x"), http.StatusOK, "before")
			}
			adm.take()
			tc.act(t, user, b1)
			host := hostOf(g)
			dead := []string{old1, old2}
			if tc.onlyB1 {
				dead = dead[:1]
				mustStatus(t, b2.get("/admin/x"), http.StatusOK, "the other browser after a sign-out")
			}
			for i, id := range dead {
				r := rawDo(t, host, "GET /admin/x HTTP/1.1\r\nHost: "+host+"\r\nCookie: authgate_session="+id)
				if r.status == http.StatusOK {
					t.Errorf("old session %d still reaches the panel", i+1)
				}
				for _, p := range []string{"/.authgate/account", "/.authgate/admin"} {
					if r := rawDo(t, host, "GET "+p+" HTTP/1.1\r\nHost: "+host+"\r\nCookie: authgate_session="+id); r.status == http.StatusOK {
						t.Errorf("old session %d still opens %s", i+1, p)
					}
				}
			}
			if tc.b1Rotated {
				if sessionCookie(t, g, b1) == old1 {
					t.Error("the changing browser kept its session id")
				}
				mustStatus(t, b1.get("/admin/x"), http.StatusOK, "the changing browser, new id")
			}
			noHits(t, tc.name, pub)
			if !tc.b1Rotated && !tc.onlyB1 {
				noHits(t, tc.name, adm)
			}
		})
	}
}

// TestGroupChangesReachExistingSessions: groups are read per request, so
// an existing session sees a change at its next request (identity header
// and allow lists alike).
func TestGroupChangesReachExistingSessions(t *testing.T) {
	open, ops := newRecorder(t), newRecorder(t)
	g := startGateway(t, gwOpts{mode: "required", routes: []config.Route{
		{Name: "ops", PathPrefix: "/ops", Upstream: ops.URL, Policy: config.PolicyTwoFactor, Allow: config.Allow{Groups: []string{"ops"}}},
		{Name: "panel", PathPrefix: "/", Upstream: open.URL, Policy: config.PolicyTwoFactor},
	}})
	g.addUser(t, "alice", "correct horse", "ops")
	b := g.browser(t)
	login(t, b, "alice", "correct horse")
	secretEnrol(t, g, b)
	groups := func() string {
		t.Helper()
		mustStatus(t, b.get("/x"), http.StatusOK, "panel")
		h := open.take()
		if len(h) != 1 {
			t.Fatalf("%d upstream requests", len(h))
		}
		return strings.Join(h[0].Header.Values("Remote-Groups"), "|")
	}
	set := func(gs ...string) {
		t.Helper()
		if _, err := g.srv.Store().UpdateUser(context.Background(), "alice", func(u *store.User) error { u.Groups = gs; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if got := groups(); got != "ops" {
		t.Fatalf("Remote-Groups %q, want ops", got)
	}
	mustStatus(t, b.get("/ops/x"), http.StatusOK, "ops route as a member")
	ops.take()
	set("ops", "web")
	if got := groups(); got != "ops,web" {
		t.Fatalf("after adding web: Remote-Groups %q, want ops,web", got)
	}
	set("web")
	if got := groups(); got != "web" {
		t.Fatalf("after removing ops: Remote-Groups %q, want web", got)
	}
	mustStatus(t, b.get("/ops/x"), http.StatusForbidden, "ops route after leaving ops")
	set()
	if got := groups(); got != "" {
		t.Fatalf("no groups: Remote-Groups %q, want none", got)
	}
	noHits(t, "ops route after leaving ops", ops)
}

// TestSessionFixation: no id known before a step survives it.
func TestSessionFixation(t *testing.T) {
	g, _, _ := twoRoutes(t, nil)
	u, _ := url.Parse(g.URL)
	host := hostOf(g)
	works := func(id string) bool {
		return rawDo(t, host, "GET /admin/x HTTP/1.1\r\nHost: "+host+"\r\nCookie: authgate_session="+id).status == http.StatusOK
	}

	// 1. An attacker-chosen id planted before the login.
	planted := strings.Repeat("Q", 43)
	victim := g.browser(t)
	victim.c.Jar.SetCookies(u, []*http.Cookie{{Name: "authgate_session", Value: planted, Path: "/"}})
	login(t, victim, "alice", "correct horse")
	pending := sessionCookie(t, g, victim)
	if pending == planted {
		t.Fatal("login kept the planted session id")
	}
	secret := secretEnrol(t, g, victim)
	full := sessionCookie(t, g, victim)
	if full == pending || full == planted {
		t.Fatal("the code step did not issue a new session id")
	}
	if works(planted) || works(pending) || !works(full) {
		t.Fatalf("planted works %v, pending works %v, full works %v", works(planted), works(pending), works(full))
	}

	// 2. An attacker who knows the password plants their half-finished
	// sign-in in the victim's browser; the victim enters the code.
	attacker := g.browser(t)
	login(t, attacker, "alice", "correct horse")
	attackerID := sessionCookie(t, g, attacker)
	victim2 := g.browser(t)
	victim2.c.Jar.SetCookies(u, []*http.Cookie{{Name: "authgate_session", Value: attackerID, Path: "/"}})
	r := victim2.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, g.clock.Now())}})
	mustStatus(t, r, http.StatusSeeOther, "victim enters the code")
	if got := sessionCookie(t, g, victim2); got == attackerID || !works(got) {
		t.Fatal("the completed session kept the planted id")
	}
	if works(attackerID) {
		t.Fatal("the attacker's planted id became a signed-in session")
	}
	mustStatus(t, attacker.get("/admin/x"), http.StatusFound, "attacker after the victim's code")
	g.clock.Advance(30 * time.Second)

	// 3. A new login ends the browser's previous complete session.
	before := sessionCookie(t, g, victim)
	signInAgain(t, g, victim, "alice", "correct horse", secret)
	if after := sessionCookie(t, g, victim); after == before || works(before) || !works(after) {
		t.Fatal("a second login kept or revived the previous session id")
	}
}

// TestProbesAuthoriseNothing: healthz and readyz answer without a
// session, set no cookie, forward nothing and leave the next request as
// anonymous as before. (There is no metrics endpoint yet.)
func TestProbesAuthoriseNothing(t *testing.T) {
	g, pub, adm := twoRoutes(t, nil)
	host := hostOf(g)
	for _, p := range []string{"/.authgate/healthz", "/.authgate/readyz"} {
		for _, m := range []string{"GET", "HEAD", "POST"} {
			r := rawDo(t, host, m+" "+p+" HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Basic "+basicToken("alice", "correct horse"))
			if m != "POST" && r.status != http.StatusOK {
				t.Errorf("%s %s: %d", m, p, r.status)
			}
			if sc := r.header.Values("Set-Cookie"); len(sc) > 0 {
				t.Errorf("%s %s sets cookies: %q", m, p, sc)
			}
		}
		for _, q := range []string{"?rd=/admin", "/../../admin/x", "/x"} {
			r := rawDo(t, host, "GET "+p+q+" HTTP/1.1\r\nHost: "+host+"\r\nAccept: text/html")
			if r.status == http.StatusOK && q == "/x" {
				t.Errorf("%s%s: 200", p, q)
			}
		}
	}
	r := rawDo(t, host, "GET /admin/x HTTP/1.1\r\nHost: "+host+"\r\nAccept: text/html")
	if r.status != http.StatusFound {
		t.Fatalf("after the probes: %d", r.status)
	}
	noHits(t, "probes", pub, adm)
}

// csrfPosts are every state-changing form of the gateway.
var csrfPosts = []string{
	"/.authgate/login", "/.authgate/verify", "/.authgate/recovery", "/.authgate/enroll", "/.authgate/logout",
	account.PathSetup, account.PathRemove, account.PathGenerate, account.PathPassword, account.PathRevoke, account.PathRevokeOthers,
	admin.SettingsPath, admin.DisablePath, admin.RevokePath, admin.ResetPath, admin.RolePath,
}

func TestCSRFOnEveryPost(t *testing.T) {
	g, _, adm := twoRoutes(t, nil)
	if err := userAdmin(g).SetRole(context.Background(), "alice", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	formToken := func(page resp) string {
		t.Helper()
		m := csrfRE.FindStringSubmatch(page.body)
		if m == nil {
			t.Fatalf("no csrf token (status %d)", page.status)
		}
		return m[1] + m[2]
	}
	b := g.browser(t)
	// The token b's login page carried, before there was a session.
	before := formToken(b.get("/.authgate/login"))
	login(t, b, "alice", "correct horse")
	secretEnrol(t, g, b)
	page := b.get("/.authgate/account")
	mustStatus(t, page, http.StatusOK, "account page")
	tok := formToken(page)
	session := sessionCookie(t, g, b)
	csrfCookie := ""
	pagesURL, _ := url.Parse(g.URL + "/.authgate/")
	for _, c := range b.c.Jar.Cookies(pagesURL) {
		if c.Name == "authgate_csrf" {
			csrfCookie = c.Value
		}
	}
	if csrfCookie == "" {
		t.Fatal("no csrf cookie")
	}
	if tok == before {
		t.Errorf("the token did not change at sign-in: %q", tok)
	}
	// Another browser's session (alice again, code owed) and its token.
	other := g.browser(t)
	login(t, other, "alice", "correct horse")
	otherTok := formToken(other.get("/.authgate/verify"))

	host := hostOf(g)
	form := url.Values{"username": {"alice"}, "password": {"correct horse"}, "code": {"123456"}, "user": {"alice"},
		"role": {"user"}, "users": {"alice"}, "mode": {"off"}, "current_password": {"correct horse"},
		"new_password": {"xxxxxxxxxx"}, "new_password_repeat": {"xxxxxxxxxx"}}
	cookies := "\r\nCookie: authgate_csrf=" + csrfCookie + "; authgate_session=" + session
	planted := strings.Repeat("P", 43) // a token cookie an attacker planted
	cases := []struct {
		name, extra, body string
	}{
		{"no token", "\r\nOrigin: " + g.URL + cookies, form.Encode()},
		{"wrong token", "\r\nOrigin: " + g.URL + cookies, form.Encode() + "&csrf_token=" + strings.Repeat("A", 43)},
		// Regression: the token was the cookie's value (plain double
		// submit), so a planted cookie echoed in the form passed.
		{"planted cookie echoed as the token", "\r\nOrigin: " + g.URL + "\r\nCookie: authgate_csrf=" + planted + "; authgate_session=" + session, form.Encode() + "&csrf_token=" + planted},
		{"the token from before sign-in", "\r\nOrigin: " + g.URL + cookies, form.Encode() + "&csrf_token=" + before},
		{"another session's token", "\r\nOrigin: " + g.URL + cookies, form.Encode() + "&csrf_token=" + otherTok},
		{"the session's token without the session", "\r\nOrigin: " + g.URL + "\r\nCookie: authgate_csrf=" + csrfCookie, form.Encode() + "&csrf_token=" + tok},
		{"cross-site origin", "\r\nOrigin: https://evil.example" + cookies, form.Encode() + "&csrf_token=" + tok},
		{"null origin", "\r\nOrigin: null" + cookies, form.Encode() + "&csrf_token=" + tok},
		{"sec-fetch-site cross-site", "\r\nSec-Fetch-Site: cross-site" + cookies, form.Encode() + "&csrf_token=" + tok},
		{"sec-fetch-site same-site", "\r\nSec-Fetch-Site: same-site" + cookies, form.Encode() + "&csrf_token=" + tok},
	}
	for _, p := range csrfPosts {
		for _, tc := range cases {
			r := rawDoBody(t, host, "POST "+p+" HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: application/x-www-form-urlencoded"+tc.extra, tc.body)
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "Your form expired") {
				t.Errorf("POST %s (%s): status %d, want the CSRF refusal", p, tc.name, r.status)
			}
		}
	}
	// Nothing happened: still signed in, still an admin, 2FA still on.
	mustStatus(t, b.get("/admin/x"), http.StatusOK, "after the refused posts")
	adm.take()
	u, err := g.srv.Store().GetUser(context.Background(), "alice")
	if err != nil || u.Role != store.RoleAdmin || !u.HasTOTP() {
		t.Fatalf("alice changed: role %q, 2FA %v, %v", u.Role, u.HasTOTP(), err)
	}
}

// TestSecurityHeadersOnGatewayPages covers the gateway's own pages and
// its error pages, also those rendered in place of a proxied response.
func TestSecurityHeadersOnGatewayPages(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	panel := newRecorder(t)
	g := startGateway(t, gwOpts{mode: "required", routes: []config.Route{
		{Name: "ops", PathPrefix: "/ops", Upstream: panel.URL, Policy: config.PolicyTwoFactor, Allow: config.Allow{Groups: []string{"ops"}}},
		{Name: "dead", PathPrefix: "/dead", Upstream: dead, Policy: config.PolicyTwoFactor},
		{Name: "panel", PathPrefix: "/app", Upstream: panel.URL, Policy: config.PolicyTwoFactor},
	}})
	g.addUser(t, "alice", "correct horse")
	g = served(t, g)
	anon := g.browser(t)
	b := g.browser(t)
	login(t, b, "alice", "correct horse")
	enrolPage := b.get("/.authgate/enroll")
	secretEnrol(t, g, b)
	check := func(what string, r resp, status int) {
		t.Helper()
		if status != 0 && r.status != status {
			t.Errorf("%s: status %d, want %d", what, r.status, status)
		}
		h := r.header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", what, csp)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"} {
			if h.Get(k) != want {
				t.Errorf("%s: %s = %q, want %q", what, k, h.Get(k), want)
			}
		}
	}
	check("login page", anon.get("/.authgate/login"), http.StatusOK)
	check("enrol page", enrolPage, http.StatusOK)
	check("logout page", b.get("/.authgate/logout"), http.StatusOK)
	check("account page", b.get("/.authgate/account"), http.StatusOK)
	check("unknown gateway page", anon.get("/.authgate/nope"), http.StatusNotFound)
	check("bad path", b.get("/app/a%2fb"), http.StatusBadRequest)
	check("no route", b.get("/nowhere"), http.StatusNotFound)
	check("not in the allow list", b.get("/ops/x"), http.StatusForbidden)
	check("upstream down", b.get("/dead/x"), http.StatusBadGateway)
	check("csrf refusal", anon.do("POST", "/.authgate/login", url.Values{"username": {"x"}}, nil), http.StatusForbidden)
	// A proxied page keeps the panel's own headers: the gateway's CSP is
	// not forced on it.
	r := b.get("/app/x")
	mustStatus(t, r, http.StatusOK, "proxied page")
	if r.header.Get("Content-Security-Policy") != "" {
		t.Errorf("proxied page got the gateway's CSP")
	}
}

// hasher hashes with the tests' cheap argon2id parameters.
func hasher() *password.Hasher {
	return password.NewHasher(password.Params{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}, nil)
}
