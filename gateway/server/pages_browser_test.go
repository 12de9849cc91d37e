package server_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
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
)

// testLogoPNG is a real 48×48 PNG, so the browser can draw it.
func testLogoPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 48, 48))
	for y := range 48 {
		for x := range 48 {
			img.Set(x, y, color.RGBA{R: uint8(4 * x), G: 90, B: uint8(4 * y), A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// noSideScroll fails unless the page fits the browser's width (1024 px):
// no table or URL pushes it sideways.
func (u *storyUser) noSideScroll(step string) {
	u.t.Helper()
	w := storyRun(u, step, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`))
	if w[0] > w[1] {
		u.fail(step, fmt.Errorf("the page is %d px wide in a %d px window", w[0], w[1]))
	}
}

// TestBrowserChangedPages walks, in real Chromium at 1024 px, the pages
// the issue "Real panels behind the gateway" changed, checks what a user
// would notice on each, and saves a screenshot of each (copied to
// storyShotsDir): the branded sign-in page, Manage Users with a row's
// action menu open, the temporary password shown once after a reset, the
// filtered audit, the upstreams with long URLs, and the sign-out page.
func TestBrowserChangedPages(t *testing.T) {
	panel := httptest.NewServer(demo.NewPanel(demo.PanelOptions{}))
	t.Cleanup(panel.Close)
	logo := filepath.Join(t.TempDir(), "logo.png")
	if err := os.WriteFile(logo, testLogoPNG(t), 0o600); err != nil {
		t.Fatal(err)
	}
	const longBase = "/an/upstream/path/long/enough/to/need/wrapping/in/the/table/of/routes/"
	g := startGatewayWith(t, gwOpts{mode: "off", routes: []config.Route{
		{Name: "legacy-panel", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyTwoFactor},
		{Name: "a-panel-mounted-under-a-long-prefix", PathPrefix: "/mounted/under/a/long/prefix", Upstream: "http://127.0.0.1:9" + longBase, Policy: config.PolicyTwoFactor},
	}}, func(c *config.Config) {
		c.UI.Title = "Acme Hosting"
		c.UI.LogoFile = logo
	})
	g.addAdmin(t, "root", "root password 1")
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		g.addUser(t, name, name+" password 1", "ops")
	}
	shots := t.TempDir()
	root := newStoryUser(t, g, shots, "root", "root password 1")

	// The sign-in page: title, the host being signed into, the logo.
	root.do("login page",
		chromedp.Navigate(g.URL+"/.authgate/login"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
	)
	if b := root.text("brand", ".brand"); b != "Acme Hosting" {
		root.fail("brand", fmt.Errorf("title %q, want Acme Hosting", b))
	}
	host := strings.TrimPrefix(g.URL, "http://")
	if body := root.text("login text", "body"); !strings.Contains(body, "Sign in to "+host) {
		root.fail("login text", fmt.Errorf("no %q on the page: %.300q", "Sign in to "+host, body))
	}
	if w := storyRun(root, "logo", chromedp.Evaluate[int](`document.querySelector("img.brand-logo").naturalWidth`)); w != 48 {
		root.fail("logo", fmt.Errorf("the logo drew %d px wide, want 48 (not loaded?)", w))
	}
	root.shoot("changed-login.png")

	// Manage Users: each row's actions in one closed menu.
	root.signIn("/.authgate/admin/users")
	root.waitPath("users page", "/.authgate/admin/users")
	root.do("users table", chromedp.WaitVisible(chromedp.ID("users")))
	root.noSideScroll("users page")
	const aliceRow = `[...document.querySelectorAll("#users tbody tr")].find(tr => tr.querySelector("th.name").innerText.startsWith("alice"))`
	visible := func(step, sel string) bool {
		js := fmt.Sprintf(`(() => { const e = %s.querySelector(%q); const r = e.getBoundingClientRect(); return e.checkVisibility({visibilityProperty: true}) && r.width > 0 && r.height > 0 && r.right <= document.documentElement.clientWidth })()`, aliceRow, sel)
		return storyRun(root, step, chromedp.Evaluate[bool](js))
	}
	if visible("menu closed", `form[action$="/reset-password"] button`) {
		root.fail("menu closed", fmt.Errorf("the row's actions show before the menu is opened"))
	}
	if !visible("role form", `form.role-form select`) || !visible("role form", `form.role-form button`) {
		root.fail("role form", fmt.Errorf("the role select and its button are not both on screen"))
	}
	storyRun(root, "open menu", chromedp.Evaluate[bool](aliceRow+`.querySelector("details.menu > summary").click() || true`))
	if !visible("menu open", `form[action$="/reset-password"] button`) {
		root.fail("menu open", fmt.Errorf("Reset password is not on screen with the menu open"))
	}
	root.noSideScroll("users page, menu open")
	root.shoot("changed-users-menu.png")

	// Reset password: confirm, then the temporary password once.
	storyRun(root, "reset", chromedp.Evaluate[bool](aliceRow+`.querySelector('form[action$="/reset-password"] button').click() || true`))
	root.do("confirm page", chromedp.WaitVisible(chromedp.CSS(`ul.confirm-items`)))
	root.do("confirm reset", chromedp.Click(chromedp.CSS(`form[action="/.authgate/admin/users/reset-password"] button[type="submit"]`)))
	root.waitPath("temporary password", "/.authgate/admin/users/temp-password")
	if pw := root.text("temporary password", "#temp-password"); len(pw) < 8 {
		root.fail("temporary password", fmt.Errorf("shown %q", pw))
	}
	root.shoot("changed-temp-password.png")
	root.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("temp-password-gone")))
	if html := root.pageHTML("reloaded"); strings.Contains(html, `id="temp-password"`) {
		root.fail("reloaded", fmt.Errorf("the temporary password is shown again after a reload"))
	}

	// Audit, filtered by user: every row is about alice.
	root.do("audit",
		chromedp.Navigate(g.URL+"/.authgate/admin/audit"),
		chromedp.WaitVisible(chromedp.ID("audit-filter")),
		chromedp.SendKeys(chromedp.ID("audit-user"), "alice"),
		chromedp.Submit(chromedp.ID("audit-user")),
	)
	// The unfiltered page has the table too: wait for the filtered one
	// (reading the rows at once could read the page before the submit).
	if p := root.waitPath("filtered audit", "/.authgate/admin/audit"); p.Query().Get("user") != "alice" {
		deadline := time.Now().Add(storyStepTimeout)
		for {
			if u, err := url.Parse(root.location()); err == nil && u.Query().Get("user") == "alice" {
				break
			}
			if time.Now().After(deadline) {
				root.fail("filtered audit", fmt.Errorf("not filtered by alice: %s", root.location()))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	root.do("filtered audit table", chromedp.WaitVisible(chromedp.ID("audit")))
	rows := root.rows("audit rows", "#audit")
	if len(rows) == 0 {
		root.fail("audit rows", fmt.Errorf("no event for alice"))
	}
	for _, r := range rows {
		// class, time, actor, action, target, ...
		if len(r) < 5 || (r[2] != "alice" && r[4] != "alice") {
			root.fail("audit rows", fmt.Errorf("row not about alice: %q", r))
		}
	}
	root.noSideScroll("audit page")
	root.shoot("changed-audit-filter.png")

	// Upstreams: measurements, and long URLs that wrap instead of
	// widening the page.
	root.do("upstreams",
		chromedp.Navigate(g.URL+"/.authgate/admin/upstreams"),
		chromedp.WaitVisible(chromedp.ID("routes")),
	)
	root.noSideScroll("upstreams page")
	if txt := root.text("upstreams", "#routes"); !strings.Contains(txt, "probe") && !strings.Contains(txt, "no data yet") {
		root.fail("upstreams", fmt.Errorf("no probe measurement or 'no data yet': %.400q", txt))
	}
	root.shoot("changed-upstreams.png")

	// Sign-out asks first and offers Cancel.
	root.do("logout page",
		chromedp.Navigate(g.URL+"/.authgate/logout"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/.authgate/logout"] button[type="submit"]`)),
	)
	if links := root.text("cancel", "p.links"); !strings.Contains(links, "Cancel") {
		root.fail("cancel", fmt.Errorf("no Cancel on the sign-out page: %q", links))
	}
	root.shoot("changed-logout.png")
}
