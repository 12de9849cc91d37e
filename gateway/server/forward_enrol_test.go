//go:build linux

package server_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/config"
)

var continueLinkRE = regexp.MustCompile(`<a href="([^"]+)">I have saved them: continue</a>`)

// TestForwardAuthEnrolmentReturnsToThePageAsked: behind forward-auth the
// first sign-in of an account without a second factor goes through the
// authenticator set-up and the first recovery codes, whose "Continue"
// leads back to the page first asked for: an absolute URL on the
// gateway's host. (It used to lead to the account page: the codes page
// kept only local paths.) A URL on a host the gateway does not serve is
// still dropped.
func TestForwardAuthEnrolmentReturnsToThePageAsked(t *testing.T) {
	g := startGatewayWith(t, gwOpts{mode: "required", localhost: true, routes: passkeyForwardRoutes(newUpstream(t).URL)},
		func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1", "::1"} })
	g.addUser(t, "carol", attackPW)
	original := g.URL + "/app/report?id=7"
	r := askForwardAuth(t, g, "fwd", original, htmlAccept, "")
	mustStatus(t, r, http.StatusFound, "anonymous browser")
	login, err := url.Parse(location(r))
	if err != nil || login.Query().Get("rd") != original {
		t.Fatalf("forward-auth sent the browser to %q", location(r))
	}
	b := g.browser(t)
	r = b.post(login.RequestURI(), "/.authgate/login", url.Values{"username": {"carol"}, "password": {attackPW}, "rd": {original}})
	if location(r) != "/.authgate/enroll" {
		t.Fatalf("password led to %q", location(r))
	}
	page := b.get("/.authgate/enroll")
	m := secretRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("no secret on the set-up page")
	}
	r = b.post("/.authgate/enroll", "/.authgate/enroll", url.Values{"code": {codeFor(t, m[1], g.clock.Now())}})
	mustStatus(t, r, http.StatusSeeOther, "set-up code")
	codes := b.get(location(r))
	mustStatus(t, codes, http.StatusOK, "first recovery codes")
	cm := continueLinkRE.FindStringSubmatch(codes.body)
	if cm == nil || html.UnescapeString(cm[1]) != original {
		t.Fatalf("the codes page continues to %v, want %q", cm, original)
	}

	// The same page asked with an rd on a host the gateway does not serve
	// continues to the account page instead.
	foreign := b.get("/.authgate/account/recovery/first?rd=" + url.QueryEscape("http://evil.example/app"))
	if loc := location(foreign); foreign.status != http.StatusSeeOther || strings.Contains(loc, "evil") {
		t.Fatalf("a foreign rd: %d %q", foreign.status, loc)
	}
}
