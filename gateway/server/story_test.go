package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/demo"
	"github.com/authgate/authgate/gateway/internal/browsertest"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/store"
)

// storyShotsDir receives a copy of the story's screenshots, so a person can
// look at them after the run (the originals live in the test's temp dir).
const storyShotsDir = "/tmp/story-shots"

// storyStepTimeout bounds one group of browser actions. Every wait in the
// story is bounded by it, so a missing element fails the test instead of
// hanging it.
const storyStepTimeout = 45 * time.Second

// addAdmin creates a user with the admin role and no 2FA.
func (g *gateway) addAdmin(t *testing.T, name, pw string) {
	t.Helper()
	h, err := password.NewHasher(password.Params{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}, nil).Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := g.srv.Store().CreateUser(context.Background(), store.User{Name: name, PasswordHash: h, Role: store.RoleAdmin, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// storyUser is one person of the story with their own browser (a separate
// Chromium with its own profile, so cookies are not shared).
type storyUser struct {
	t        *testing.T
	g        *gateway
	name, pw string
	// tab is the browser tab without browsertest's overall deadline: the
	// admin's browser lives through the whole story, which can take longer
	// than one StepTimeout on two slow cores. Each step gets its own
	// storyStepTimeout instead. browsertest still closes the browser when
	// the test ends.
	tab    context.Context
	shots  string   // where screenshots go (the test's temp dir)
	secret string   // TOTP secret, once enrolled
	codes  []string // recovery codes, once shown
}

func newStoryUser(t *testing.T, g *gateway, shots, name, pw string) *storyUser {
	t.Helper()
	return &storyUser{t: t, g: g, name: name, pw: pw, shots: shots, tab: context.WithoutCancel(browsertest.New(t))}
}

// fail saves a screenshot of u's page and ends the test.
func (u *storyUser) fail(step string, err error) {
	u.t.Helper()
	shot := fmt.Sprintf("failure-%s.png", u.name)
	loc := u.location()
	ctx, cancel := context.WithTimeout(u.tab, 15*time.Second)
	defer cancel()
	browsertest.Screenshot(u.t, ctx, filepath.Join(u.shots, shot))
	copyShot(u.t, filepath.Join(u.shots, shot))
	u.t.Fatalf("%s (%s, at %s): %v", step, u.name, loc, err)
}

// do runs a group of actions within storyStepTimeout.
func (u *storyUser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.tab, storyStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		u.fail(step, err)
	}
}

// run runs one action returning a value within storyStepTimeout.
func storyRun[T any](u *storyUser, step string, a chromedp.Action[T]) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.tab, storyStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		u.fail(step, err)
	}
	return v
}

// location is the current URL ("" if the page is between documents).
func (u *storyUser) location() string {
	ctx, cancel := context.WithTimeout(u.tab, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// waitPath polls the location until its path is path, and returns the
// whole URL.
func (u *storyUser) waitPath(step, path string) *url.URL {
	u.t.Helper()
	deadline := time.Now().Add(storyStepTimeout)
	var last string
	for {
		last = u.location()
		if p, err := url.Parse(last); err == nil && p.Path == path {
			return p
		}
		if time.Now().After(deadline) {
			u.fail(step, fmt.Errorf("the browser did not reach %s", path))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text is the visible text of the first element matching css.
func (u *storyUser) text(step, css string) string {
	u.t.Helper()
	return storyRun(u, step, chromedp.Text(chromedp.CSS(css), chromedp.NodeVisible))
}

// pageHTML is the markup of the whole page.
func (u *storyUser) pageHTML(step string) string {
	u.t.Helper()
	return storyRun(u, step, chromedp.OuterHTML(chromedp.CSS("html")))
}

// rows returns the visible text of every cell of the body rows of table
// sel, row by row, with a leading cell holding the row's class (so the
// audit tab's flagged rows can be told apart).
func (u *storyUser) rows(step, sel string) [][]string {
	u.t.Helper()
	js := fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(tr => [tr.className].concat(Array.from(tr.cells).map(c => c.innerText.trim())))`, sel+" tbody tr")
	return storyRun(u, step, chromedp.Evaluate[[][]string](js))
}

// shoot saves a screenshot under the test's temp dir and copies it to
// storyShotsDir.
func (u *storyUser) shoot(name string) {
	u.t.Helper()
	path := filepath.Join(u.shots, name)
	ctx, cancel := context.WithTimeout(u.tab, storyStepTimeout)
	defer cancel()
	browsertest.Screenshot(u.t, ctx, path)
	copyShot(u.t, path)
}

func copyShot(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("screenshot %s: %v", path, err)
		return
	}
	if len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Errorf("screenshot %s is not a PNG", path)
	}
	if err := os.MkdirAll(storyShotsDir, 0o755); err != nil {
		t.Logf("copy screenshot: %v", err)
		return
	}
	dst := filepath.Join(storyShotsDir, filepath.Base(path))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Logf("copy screenshot: %v", err)
	}
}

// code is u's current TOTP code at the gateway's time.
func (u *storyUser) code() string {
	u.t.Helper()
	return codeFor(u.t, u.secret, u.g.clock.Now())
}

// signIn opens the panel and signs in with the password; it returns where
// the gateway sent the browser next (enrolment, code or the panel).
func (u *storyUser) signIn(start string) *url.URL {
	u.t.Helper()
	u.do("open "+start,
		chromedp.Navigate(u.g.URL+start),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
	)
	u.waitPath("login page", "/.authgate/login")
	u.do("password",
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), u.name),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), u.pw),
		chromedp.Click(chromedp.CSS(`form[action="/.authgate/login"] button[type="submit"]`)),
	)
	deadline := time.Now().Add(storyStepTimeout)
	for {
		loc := u.location()
		if p, err := url.Parse(loc); err == nil && p.Path != "/.authgate/login" && p.Path != "" {
			return p
		}
		if time.Now().After(deadline) {
			u.fail("after the password", fmt.Errorf("still on the login page"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signOut uses the logout page's confirm button and checks the notice.
func (u *storyUser) signOut() {
	u.t.Helper()
	u.do("logout page",
		chromedp.Navigate(u.g.URL+"/.authgate/logout"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/.authgate/logout"] button[type="submit"]`)),
		chromedp.Click(chromedp.CSS(`form[action="/.authgate/logout"] button[type="submit"]`)),
	)
	u.waitPath("signed out", "/.authgate/login")
	if n := u.text("signed-out notice", "#form-notice"); !strings.Contains(n, "signed out") {
		u.fail("signed-out notice", fmt.Errorf("notice %q", n))
	}
}

// enterCode types a TOTP code into the page's code field and submits it.
func (u *storyUser) enterCode(step, formAction string) {
	u.t.Helper()
	btn := fmt.Sprintf(`form[action=%q] button[type="submit"]`, formAction)
	u.do(step,
		chromedp.WaitVisible(chromedp.CSS(`input[name="code"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="code"]`), u.code()),
		chromedp.Click(chromedp.CSS(btn)),
	)
}

// readCodes reads the recovery codes page: exactly 10 codes, shown once.
func (u *storyUser) readCodes(step string) {
	u.t.Helper()
	u.do(step, chromedp.WaitVisible(chromedp.CSS(`ol.codes`)))
	u.codes = recoveryCodeTextRE.FindAllString(u.text(step, `ol.codes`), -1)
	if len(u.codes) != 10 {
		u.fail(step, fmt.Errorf("%d recovery codes shown, want 10: %q", len(u.codes), u.codes))
	}
}

// atPanel checks that the browser shows the demo panel signed in as u.
func (u *storyUser) atPanel(step string) {
	u.t.Helper()
	u.waitPath(step, "/")
	// The location changes as soon as the panel's document commits:
	// poll its text until it has loaded.
	deadline := time.Now().Add(storyStepTimeout)
	for {
		body := u.text(step, "body")
		if strings.Contains(body, "Legacy Admin Panel") && strings.Contains(body, u.name) {
			return
		}
		if time.Now().After(deadline) {
			u.fail(step, fmt.Errorf("not the panel signed in as %s: %.300q", u.name, body))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// forcedEnrolment walks the sign-in of a user without 2FA while the mode
// is Required: the enrolment page (issuer checked), a code from the key
// shown on the page, the first recovery codes, then the panel.
func (u *storyUser) forcedEnrolment(wantIssuer string) {
	u.t.Helper()
	if p := u.signIn("/"); p.Path != "/.authgate/enroll" {
		u.fail("forced enrolment", fmt.Errorf("sent to %s, want the enrolment page", p))
	}
	u.do("enrolment page",
		chromedp.WaitVisible(chromedp.CSS(`img.qr`)),
		// "Can't scan the code?" shows the key, the way a user would
		// type it into the app.
		chromedp.Click(chromedp.CSS(`details > summary`)),
		chromedp.WaitVisible(chromedp.ID("totp-key")),
	)
	key := strings.ReplaceAll(u.text("setup key", "#totp-key"), " ", "")
	details := u.text("enrolment details", "details dl.details")
	if !strings.Contains(details, wantIssuer) || !strings.Contains(details, u.name) {
		u.fail("enrolment details", fmt.Errorf("issuer %q or account %q missing from %q", wantIssuer, u.name, details))
	}
	page := u.pageHTML("enrolment page")
	m := secretRE.FindStringSubmatch(page)
	if m == nil {
		u.fail("enrolment page", fmt.Errorf("no otpauth link"))
	}
	if m[1] != key {
		u.fail("enrolment page", fmt.Errorf("key shown %q differs from the QR/otpauth secret %q", key, m[1]))
	}
	if !strings.Contains(page, "issuer="+url.QueryEscape(wantIssuer)) && !strings.Contains(page, "issuer="+strings.ReplaceAll(url.QueryEscape(wantIssuer), "+", "%20")) {
		u.fail("enrolment page", fmt.Errorf("the otpauth link does not carry the issuer %q", wantIssuer))
	}
	u.secret = key
	u.shoot("story-" + u.name + "-enrol.png")
	u.enterCode("enrolment code", "/.authgate/enroll")
	u.readCodes("first recovery codes")
	u.shoot("story-" + u.name + "-first-codes.png")
	u.do("continue to the panel", chromedp.Click(chromedp.CSS(`p.links a[href="/"]`)))
	u.atPanel("panel after enrolment")
}

// visitAdmin opens an admin page by its address; see reachAdmin.
func (u *storyUser) visitAdmin(path, readySel string) (steppedUp bool) {
	u.t.Helper()
	u.do("open "+path, chromedp.Navigate(u.g.URL+path))
	return u.reachAdmin(path, readySel)
}

// reachAdmin waits until the browser shows the admin page path (readySel
// visible, its tab marked active in the nav). If the gateway asks for a
// fresh code first (step-up), the admin gives one and is sent back.
func (u *storyUser) reachAdmin(path, readySel string) (steppedUp bool) {
	u.t.Helper()
	deadline := time.Now().Add(storyStepTimeout)
	for {
		p, err := url.Parse(u.location())
		if err == nil && p.Path == path {
			break
		}
		if err == nil && p.Path == "/.authgate/verify" {
			if p.Query().Get("stepup") != "1" {
				u.fail("step-up", fmt.Errorf("verify page without stepup: %s", p))
			}
			u.g.clock.Advance(30 * time.Second) // a new step: no replay
			u.enterCode("step-up code", "/.authgate/verify")
			u.waitPath("back from step-up", path)
			steppedUp = true
			break
		}
		if time.Now().After(deadline) {
			u.fail("open "+path, fmt.Errorf("did not reach it"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	u.do("admin page "+path, chromedp.WaitVisible(chromedp.CSS(readySel)))
	if cur := u.text("admin nav", `nav.topnav a[aria-current="page"]`); cur == "" {
		u.fail("admin nav", fmt.Errorf("no active tab"))
	}
	return steppedUp
}

// findRow returns the first row whose cell col starts with the word name
// (the users table adds a "you" badge after the admin's own name).
func findRow(rows [][]string, col int, name string) []string {
	for _, r := range rows {
		if len(r) > col && len(strings.Fields(r[col])) > 0 && strings.Fields(r[col])[0] == name {
			return r
		}
	}
	return nil
}

// TestBrowserAdminStory walks issue 3's story in real Chromium browsers,
// one per person: the admin requires 2FA with a new Issuer, a user is
// forced to enrol, signs in with a code, then with a recovery code after
// "losing the phone"; the admin bulk-disables 2FA of two users and both
// users' sessions end at once; every admin tab renders its rows and is
// saved as a screenshot.
func TestBrowserAdminStory(t *testing.T) {
	panel := httptest.NewServer(demo.NewPanel(demo.PanelOptions{}))
	t.Cleanup(panel.Close)
	g := startGateway(t, gwOpts{mode: "on", routes: []config.Route{{
		Name: "legacy-panel", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyTwoFactor,
		IdentityHeaders: config.IdentityHeaders{User: "Remote-User", Groups: "Remote-Groups"},
	}}})
	g.addAdmin(t, "root", "root password 1")
	g.addUser(t, "alice", "alice password 1", "ops")
	g.addUser(t, "bob", "bob password 1", "web")
	_ = os.RemoveAll(storyShotsDir)
	shots := t.TempDir()

	// 1. The admin signs in (mode On, no 2FA yet: password only), sets up
	// 2FA from the account page, then requires 2FA with a new Issuer.
	root := newStoryUser(t, g, shots, "root", "root password 1")
	if p := root.signIn("/.authgate/account"); p.Path != "/.authgate/account" {
		root.fail("admin sign-in", fmt.Errorf("sent to %s, want the account page", p))
	}
	root.do("account page",
		chromedp.WaitVisible(chromedp.CSS(`form[action="/.authgate/account/2fa/setup"] button`)),
	)
	if s := root.text("2FA status", `section[aria-labelledby="twofactor-heading"]`); !strings.Contains(s, "Not set up") {
		root.fail("2FA status", fmt.Errorf("account page says %q", s))
	}
	root.do("start set-up", chromedp.Click(chromedp.CSS(`form[action="/.authgate/account/2fa/setup"] button`)))
	root.waitPath("set-up page", "/.authgate/account/2fa/setup")
	root.do("set-up page", chromedp.WaitVisible(chromedp.CSS(`img.qr`)))
	m := secretRE.FindStringSubmatch(root.pageHTML("set-up page"))
	if m == nil {
		root.fail("set-up page", fmt.Errorf("no otpauth link"))
	}
	root.secret = m[1]
	root.enterCode("set-up code", "/.authgate/account/2fa/setup")
	root.readCodes("admin's recovery codes")
	root.shoot("story-root-codes.png")

	root.do("to Settings", chromedp.Click(chromedp.CSS(`nav.topnav a[href="/.authgate/admin/settings"]`)))
	// The code was just given: the admin area asks for no other.
	if root.reachAdmin("/.authgate/admin/settings", `#mode-required`) {
		root.fail("settings", fmt.Errorf("asked for a fresh code right after setting up 2FA"))
	}
	root.do("set Required and the Issuer",
		chromedp.Click(chromedp.ID("mode-required")),
		chromedp.Clear(chromedp.ID("issuer")),
		chromedp.SendKeys(chromedp.ID("issuer"), "ACME Panel"),
		chromedp.Click(chromedp.CSS(`form[action="/.authgate/admin/settings"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("form-notice")),
	)
	if n := root.text("settings notice", "#form-notice"); !strings.Contains(n, "Settings saved") {
		root.fail("settings notice", fmt.Errorf("notice %q", n))
	}
	if v := storyRun(root, "issuer field", chromedp.Value(chromedp.ID("issuer"))); v != "ACME Panel" {
		root.fail("issuer field", fmt.Errorf("issuer field shows %q after saving", v))
	}
	if checked := storyRun(root, "mode", chromedp.Evaluate[bool](`document.getElementById("mode-required").checked`)); !checked {
		root.fail("mode", fmt.Errorf("Required is not selected after saving"))
	}

	// 2. alice, without 2FA, is forced to enrol; her app shows the new
	// Issuer.
	alice := newStoryUser(t, g, shots, "alice", "alice password 1")
	alice.forcedEnrolment("ACME Panel")

	// 3. She signs out and back in with a fresh code.
	alice.signOut()
	g.clock.Advance(30 * time.Second)
	if p := alice.signIn("/"); p.Path != "/.authgate/verify" {
		alice.fail("second sign-in", fmt.Errorf("sent to %s, want the code page", p))
	}
	alice.enterCode("sign-in code", "/.authgate/verify")
	alice.atPanel("panel after the code")

	// 4. She loses her phone: password, then one of her recovery codes.
	alice.signOut()
	if p := alice.signIn("/"); p.Path != "/.authgate/verify" {
		alice.fail("sign-in without phone", fmt.Errorf("sent to %s, want the code page", p))
	}
	alice.do("lost phone link",
		chromedp.WaitVisible(chromedp.CSS(`a[href^="/.authgate/recovery"]`)),
		chromedp.Click(chromedp.CSS(`a[href^="/.authgate/recovery"]`)),
	)
	alice.waitPath("recovery page", "/.authgate/recovery")
	alice.do("recovery page", chromedp.WaitVisible(chromedp.CSS(`input[name="recovery_code"]`)))
	alice.shoot("story-alice-recovery.png")
	alice.do("recovery code",
		chromedp.SendKeys(chromedp.CSS(`input[name="recovery_code"]`), alice.codes[3]),
		chromedp.Click(chromedp.CSS(`form[action="/.authgate/recovery"] button[type="submit"]`)),
	)
	// The phone is lost: she is offered to set up her authenticator again
	// and skips it for now ("Not now" leads on to where she was going).
	alice.waitPath("set-up offered after the recovery code", "/.authgate/account/2fa/setup")
	alice.do("skip the new set-up",
		chromedp.WaitVisible(chromedp.CSS(`p.links a`)),
		chromedp.Click(chromedp.CSS(`p.links a`)),
	)
	alice.atPanel("panel after the recovery code")
	alice.do("account page",
		chromedp.Navigate(g.URL+"/.authgate/account"),
		chromedp.WaitVisible(chromedp.CSS(`section[aria-labelledby="recovery-heading"]`)),
	)
	if s := alice.text("recovery codes left", `section[aria-labelledby="recovery-heading"]`); !strings.Contains(s, "9 left") {
		alice.fail("recovery codes left", fmt.Errorf("account page says %q, want 9 left", s))
	}
	alice.shoot("story-alice-account.png")
	alice.do("back to the panel", chromedp.Navigate(g.URL+"/"))
	alice.atPanel("panel before the admin acts")

	// 5. bob enrols too, in his own browser.
	bob := newStoryUser(t, g, shots, "bob", "bob password 1")
	bob.forcedEnrolment("ACME Panel")

	// 6. Eleven minutes later the admin's last code is too old for the
	// admin area: Manage users asks for a fresh one (step-up) first.
	// alice and bob are still signed in (sessions idle out after an hour).
	g.clock.Advance(11 * time.Minute)
	for _, u := range []*storyUser{alice, bob} {
		u.do("reload the panel", chromedp.Reload())
		u.atPanel("still signed in before the admin acts")
	}
	if !root.visitAdmin("/.authgate/admin/users", `#users`) {
		root.fail("step-up", fmt.Errorf("the admin area did not ask for a fresh code 11 minutes after the last one"))
	}
	// The admin bulk-disables 2FA for alice and bob.
	rows := root.rows("users table", "#users")
	for _, name := range []string{"alice", "bob"} {
		r := findRow(rows, 2, name)
		if r == nil || !strings.Contains(r[5], "enabled") || r[9] == "0" {
			root.fail("users before disabling", fmt.Errorf("row of %s = %q, want 2FA enabled with a session", name, r))
		}
	}
	root.do("tick alice and bob",
		chromedp.Click(chromedp.CSS(`input[name="selected"][value="alice"]`)),
		chromedp.Click(chromedp.CSS(`input[name="selected"][value="bob"]`)),
		chromedp.Click(chromedp.CSS(`form#bulk button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`ul.confirm-items`)),
	)
	if items := root.text("confirm page", `ul.confirm-items`); !strings.Contains(items, "alice") || !strings.Contains(items, "bob") || strings.Contains(items, "root") {
		root.fail("confirm page", fmt.Errorf("confirm lists %q, want alice and bob", items))
	}
	root.shoot("story-root-confirm-disable.png")
	root.do("confirm",
		chromedp.Click(chromedp.CSS(`form[action="/.authgate/admin/users/disable"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("form-notice")),
	)
	root.waitPath("users after disabling", "/.authgate/admin/users")
	if n := root.text("disable notice", "#form-notice"); !strings.Contains(n, "2FA disabled for 2 users") {
		root.fail("disable notice", fmt.Errorf("notice %q", n))
	}
	rows = root.rows("users table after disabling", "#users")
	for _, name := range []string{"alice", "bob"} {
		r := findRow(rows, 2, name)
		if r == nil || !strings.Contains(r[5], "not set up") || r[9] != "0" {
			root.fail("users after disabling", fmt.Errorf("row of %s = %q, want 2FA not set up and no session", name, r))
		}
	}
	root.shoot("story-root-disabled.png")
	// Their sessions died at once: a reload of the panel asks them to
	// sign in.
	for _, u := range []*storyUser{alice, bob} {
		u.do("reload the panel", chromedp.Reload())
		p := u.waitPath("sent to sign in", "/.authgate/login")
		if p.Query().Get("rd") != "/" {
			u.fail("sent to sign in", fmt.Errorf("login page without rd=/: %s", p))
		}
		u.do("login form", chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)))
	}

	// 7. and 8. Each admin tab renders its rows; screenshots of each.
	root.visitAdmin("/.authgate/admin/settings", `#mode-required`)
	root.shoot("admin-settings.png")

	root.visitAdmin("/.authgate/admin/users", `#users`)
	rows = root.rows("users tab", "#users")
	for _, name := range []string{"root", "alice", "bob"} {
		if findRow(rows, 2, name) == nil {
			root.fail("users tab", fmt.Errorf("no row for %s in %q", name, rows))
		}
	}
	if r := findRow(rows, 2, "root"); !strings.Contains(r[3], "admin") || !strings.Contains(r[5], "enabled") {
		root.fail("users tab", fmt.Errorf("root's row = %q, want admin with 2FA enabled", r))
	}
	if c := root.text("user count", "#user-count"); !strings.HasPrefix(c, "3 users") {
		root.fail("user count", fmt.Errorf("count line %q", c))
	}
	root.shoot("admin-users.png")

	root.visitAdmin("/.authgate/admin/upstreams", `#routes`)
	rows = root.rows("upstreams tab", "#routes")
	// The health cell shows measurements (a probe line, this story's
	// proxied requests by status class), not a verdict.
	if len(rows) != 1 || rows[0][1] != "legacy-panel" || !strings.Contains(rows[0][2], "probe: ") ||
		!strings.Contains(rows[0][2], "2xx") || rows[0][5] != panel.URL {
		root.fail("upstreams tab", fmt.Errorf("routes = %q, want legacy-panel → %s, with a probe line and 2xx requests", rows, panel.URL))
	}
	root.shoot("admin-upstreams.png")

	root.visitAdmin("/.authgate/admin/audit", `#audit`)
	rows = root.rows("audit tab", "#audit")
	// Columns: class, time, actor, action, target, ip, detail.
	var recovery []string
	disabled := map[string]bool{}
	for _, r := range rows {
		if len(r) < 7 {
			root.fail("audit tab", fmt.Errorf("short row %q", r))
		}
		if strings.HasPrefix(r[3], "login_recovery_code") && r[4] == "alice" && recovery == nil {
			recovery = r
		}
		if strings.HasPrefix(r[3], "totp_disabled") && r[2] == "root" {
			disabled[r[4]] = true
		}
	}
	if recovery == nil || !strings.Contains(recovery[0], "flag") || !strings.Contains(recovery[3], "recovery code") {
		root.fail("audit tab", fmt.Errorf("alice's recovery-code login is not flagged: %q", recovery))
	}
	if !disabled["alice"] || !disabled["bob"] {
		root.fail("audit tab", fmt.Errorf("totp_disabled events by root for alice and bob missing: %v", disabled))
	}
	// Newest first: the admin's disabling comes before alice's recovery
	// login.
	firstDisabled, recoveryAt := -1, -1
	for i, r := range rows {
		if firstDisabled < 0 && strings.HasPrefix(r[3], "totp_disabled") {
			firstDisabled = i
		}
		if recoveryAt < 0 && strings.HasPrefix(r[3], "login_recovery_code") {
			recoveryAt = i
		}
	}
	if firstDisabled > recoveryAt {
		root.fail("audit tab", fmt.Errorf("events not newest first: totp_disabled at row %d, recovery login at row %d", firstDisabled, recoveryAt))
	}
	root.shoot("admin-audit.png")

	// The user's browsers at the end, for the record.
	alice.shoot("alice-signed-out.png")
}
