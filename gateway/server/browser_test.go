package server_test

import (
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/demo"
	"github.com/authgate/authgate/gateway/internal/browsertest"
)

var recoveryCodeTextRE = regexp.MustCompile(`[2-9A-Z]{5}-[2-9A-Z]{5}`)

// TestBrowserLoginWithEnrolment drives Debian's chromium through the whole
// first sign-in: password, QR enrolment with a generated code, then the
// demo panel behind the gateway. (It caught Referrer-Policy: no-referrer
// making Chromium post our forms with "Origin: null", which the CSRF check
// refused: every real-browser login failed while the HTTP-client tests passed.)
func TestBrowserLoginWithEnrolment(t *testing.T) {
	ctx := browsertest.New(t)
	panel := httptest.NewServer(demo.NewPanel(demo.PanelOptions{}))
	t.Cleanup(panel.Close)
	g := startGateway(t, gwOpts{mode: "required", routes: []config.Route{{
		Name: "panel", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyTwoFactor,
		IdentityHeaders: config.IdentityHeaders{User: "Remote-User", Groups: "Remote-Groups"},
	}}})
	g.addUser(t, "alice", "correct horse battery", "ops")

	fail := func(step string, err error) {
		t.Helper()
		browsertest.Screenshot(t, ctx, filepath.Join(t.TempDir(), "failure.png"))
		t.Fatalf("%s: %v", step, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(g.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "correct horse battery"),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="code"]`)),
	); err != nil {
		fail("password step", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.Contains(loc, "/.authgate/enroll") {
		fail("expected the enrolment page, at "+loc, err)
	}
	page, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		fail("read enrolment page", err)
	}
	if !strings.Contains(page, `src="data:image/png;base64,`) {
		t.Fatal("enrolment page shows no QR code image")
	}
	m := secretRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no otpauth secret on the enrolment page")
	}
	code := codeFor(t, m[1], g.clock.Now())
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="code"]`), code),
		chromedp.Submit(chromedp.CSS(`input[name="code"]`)),
		// The first recovery codes are shown once; the user saves them
		// and continues.
		chromedp.WaitVisible(chromedp.CSS(`ol.codes`)),
	); err != nil {
		fail("code step", err)
	}
	codesText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`ol.codes`)))
	if err != nil || len(recoveryCodeTextRE.FindAllString(codesText, -1)) != 10 {
		fail("recovery codes page: "+codesText, err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="/"]`))); err != nil {
		fail("continue after the codes", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		loc, _ = chromedp.Run(ctx, chromedp.Location())
		if loc == g.URL+"/" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if loc != g.URL+"/" {
		fail("after the code the browser is at "+loc, nil)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		fail("read panel page", err)
	}
	if !strings.Contains(body, "alice") {
		t.Fatalf("panel page does not show the signed-in user: %.400s", body)
	}
	browsertest.Screenshot(t, ctx, filepath.Join(t.TempDir(), "panel.png"))
}
