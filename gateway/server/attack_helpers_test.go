package server_test

// Helpers of the attack tests (attack_*_test.go): a gateway that counts
// factor checks, requests that really arrive at once (testkit.Burst), and
// probes of what a session still reaches.

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/secretbox"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/store"
)

// attackLimit is both limits the attack tests set or rely on:
// regulation.max_failures (failed proofs per user, and per address,
// within the window) and the sign-in's own limit of wrong codes per
// half-finished sign-in (5; it has no config key).
const attackLimit = 5

// attackPW is every attack-test user's password.
const attackPW = "correct horse"

// attackBurst is how many requests a brute-force burst sends.
const attackBurst = 200

// Routes of the attack gateway: /docs needs a password session, anything
// else (/app/...) a two-factor one.
const (
	twoFactorPath = "/app/x"
	passwordPath  = "/docs/x"
)

// attackGateway is a gateway served by Serve (real limits) that counts
// factor checks on its metrics listener, believes X-Forwarded-For from
// the test (so every request of a burst can come from its own address and
// address bans do not hide the per-user limit) and has
// regulation.max_failures at attackLimit.
//
// password.max_concurrent is 16 (a 16-core machine's default): with the
// 2-core default the hashing queue alone refuses most of a burst, which
// hides whether the per-user limit holds.
func attackGateway(t *testing.T, driver, mode string, adjust func(*config.Config)) *gateway {
	t.Helper()
	up := newUpstream(t)
	g := startGatewayWith(t, gwOpts{driver: driver, mode: mode, routes: []config.Route{
		{Name: "docs", PathPrefix: "/docs", Upstream: up.URL, Policy: config.PolicyPassword},
		{Name: "app", PathPrefix: "/", Upstream: up.URL, Policy: config.PolicyTwoFactor},
	}}, func(c *config.Config) {
		c.Metrics.Listen = "127.0.0.1:0"
		c.TrustedProxies = []string{"127.0.0.1", "::1"}
		c.Regulation.MaxFailures = attackLimit
		c.Password.MaxConcurrent = 16
		if adjust != nil {
			adjust(c)
		}
	})
	return served(t, g)
}

// eachStore runs test once per store driver.
func eachStore(t *testing.T, test func(t *testing.T, driver string)) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) { test(t, driver) })
	}
}

// --- counting factor checks ---

// checksMetric counts, by factor (password, totp, recovery_code), every
// time a factor is really checked: a password hashed against a stored
// hash, a TOTP code compared, a recovery code compared; at sign-in,
// step-up and on the account pages alike. Refused attempts (banned,
// limited, busy) are not checks.
const checksMetric = "authgate_factor_checks_total"

// Factors of checksMetric.
const (
	checkPassword = "password"
	checkTOTP     = "totp"
	checkRecovery = "recovery_code"
)

// checkMeter reads checksMetric before and after an attack.
type checkMeter struct {
	t    *testing.T
	g    *gateway
	base map[string]float64
}

// meterChecks takes the baseline. A counter vector that has never been
// incremented is not exposed at all, so an absent metric here counts as
// zero checks so far; it must exist once something was checked.
func meterChecks(t *testing.T, g *gateway) *checkMeter {
	t.Helper()
	base, _ := factorChecks(scrape(t, g))
	return &checkMeter{t: t, g: g, base: base}
}

// factorChecks returns checksMetric by factor, and whether it is exposed.
func factorChecks(fams map[string]*dto.MetricFamily) (map[string]float64, bool) {
	out := map[string]float64{}
	f := fams[checksMetric]
	if f == nil {
		return out, false
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "factor" {
				out[l.GetValue()] += m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			}
		}
	}
	return out, true
}

// absentReported holds the tests already failed for an absent
// checksMetric (one message per test is enough).
var absentReported sync.Map

// since returns how many checks of factor happened since the baseline.
// When the gateway does not expose checksMetric the test fails here, and
// estimate (what the test could count from the answers) stands in, so
// the rest of the test still shows whether the attack got through; note
// says which it is.
func (m *checkMeter) since(factor string, estimate int) (n int, note string) {
	m.t.Helper()
	now, ok := factorChecks(scrape(m.t, m.g))
	if !ok {
		if _, told := absentReported.LoadOrStore(m.t.Name(), true); told {
			return estimate, " (ESTIMATED from the answers: " + checksMetric + " is absent)"
		}
		m.t.Errorf("%s is not exposed on the metrics listener after factors were checked: the gateway must count every "+
			"password, TOTP code and recovery code it checks (%s{factor=\"password\"|\"totp\"|\"recovery_code\"})", checksMetric, checksMetric)
		return estimate, " (ESTIMATED from the answers: " + checksMetric + " is absent)"
	}
	return int(now[factor] - m.base[factor]), ""
}

// --- sessions and forms ---

// token returns the CSRF token of the form on page, as b sees it.
func (b *browser) token(page string) string {
	b.t.Helper()
	r := b.get(page)
	m := csrfRE.FindStringSubmatch(r.body)
	if m == nil {
		b.t.Fatalf("no csrf token on %s (status %d, Location %q): %.300s", page, r.status, location(r), r.body)
	}
	return m[1] + m[2]
}

// anyToken returns a CSRF token for b whatever its session: the sign-out
// page has a form for every session, the sign-in page for none.
func (b *browser) anyToken() string {
	b.t.Helper()
	for _, p := range []string{"/.authgate/logout", "/.authgate/login"} {
		r := b.get(p)
		if m := csrfRE.FindStringSubmatch(r.body); m != nil {
			return m[1] + m[2]
		}
	}
	b.t.Fatal("no page with a csrf token for this browser")
	return ""
}

// raw serialises a request as b would send it (its headers and cookies,
// and for a form the content type and same-origin Origin), for a burst.
func (b *browser) raw(method, path string, form url.Values, extra http.Header) []byte {
	b.t.Helper()
	req := b.request(method, path, form, extra)
	for _, c := range b.c.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	data, err := testkit.RawRequest(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}

// xff is the header that makes a request come from ip.
func xff(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }

// burstIP is the i-th address of a burst (10.k.x.y: a /16 per burst).
func burstIP(k, i int) string { return fmt.Sprintf("10.%d.%d.%d", k, i/250, i%250+1) }

// burst sends reqs so that they reach the gateway together.
func burst(t *testing.T, g *gateway, reqs [][]byte, atRelease func()) []testkit.BurstResponse {
	t.Helper()
	res, err := testkit.Burst(hostOf(g), reqs, testkit.BurstOptions{AtRelease: atRelease})
	if err != nil {
		t.Fatalf("burst: %v", err)
	}
	for i, r := range res.Responses {
		if r.Err != nil {
			t.Fatalf("burst request %d of %d got no answer: %v", i+1, len(reqs), r.Err)
		}
	}
	t.Logf("%d requests released within %v", len(reqs), res.Spread)
	return res.Responses
}

// issuedSession is the session id a response set, "" if none (a cookie
// being cleared is none).
func issuedSession(h http.Header) string {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "authgate_session" && c.MaxAge >= 0 && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// cookieBrowser is a browser holding only the session id.
func cookieBrowser(t *testing.T, g *gateway, id string) *browser {
	b := g.browser(t)
	u, _ := url.Parse(g.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "authgate_session", Value: id, Path: "/"}})
	return b
}

// reaches reports whether session id gets path (200) as a browser.
func reaches(t *testing.T, g *gateway, id, path string) bool {
	t.Helper()
	return cookieBrowser(t, g, id).get(path).status == http.StatusOK
}

// toLogin reports whether r sends the browser to sign in again (or, for
// a non-navigation, answers 401): the session is dead.
func toLogin(r resp) bool {
	switch r.status {
	case http.StatusUnauthorized:
		return true
	case http.StatusFound, http.StatusSeeOther:
		return strings.HasPrefix(location(r), "/.authgate/login")
	}
	return false
}

// toEnrol reports whether r sends the browser to set up an
// authenticator: the sign-in enrolment page or the account's set-up page.
func toEnrol(r resp) bool {
	if r.status != http.StatusFound && r.status != http.StatusSeeOther {
		return false
	}
	l := location(r)
	return strings.HasPrefix(l, "/.authgate/enroll") || strings.HasPrefix(l, "/.authgate/account/2fa/setup")
}

// describe is a short account of an answer for failure messages.
func describe(r resp) string {
	if l := location(r); l != "" {
		return fmt.Sprintf("%d -> %s", r.status, l)
	}
	return fmt.Sprintf("%d", r.status)
}

// mustBeDead fails unless session id is sent to sign in again on every
// kind of page: a two-factor route, a password route, the account page
// and the authenticator set-up page.
func mustBeDead(t *testing.T, g *gateway, id, what string) {
	t.Helper()
	for _, p := range []string{twoFactorPath, passwordPath, "/.authgate/account", "/.authgate/account/2fa/setup"} {
		if r := cookieBrowser(t, g, id).get(p); !toLogin(r) {
			t.Errorf("%s: the session still gets %s: %s, want a new sign-in", what, p, describe(r))
		}
	}
}

// deadWithin polls (advancing the gateway's clock a second at a time, so
// its settings cache expires) until session id is dead everywhere, for up
// to five seconds; it reports the last probe that still worked.
func deadWithin(t *testing.T, g *gateway, id string) (bool, string) {
	t.Helper()
	last := ""
	for range 6 {
		last = ""
		for _, p := range []string{twoFactorPath, passwordPath, "/.authgate/account", "/.authgate/account/2fa/setup"} {
			if r := cookieBrowser(t, g, id).get(p); !toLogin(r) {
				last = p + ": " + describe(r)
				break
			}
		}
		if last == "" {
			return true, ""
		}
		g.clock.Advance(time.Second)
		time.Sleep(100 * time.Millisecond)
	}
	return false, last
}

// --- users and sign-ins ---

// giveTOTP stores a new authenticator secret for user (sealed with the
// gateway's key, as set-up stores it) and returns it in base32.
func giveTOTP(t *testing.T, g *gateway, user string) string {
	t.Helper()
	key, err := server.LoadKey(g.cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	sealed, err := box.Seal(raw, []byte(user))
	if err != nil {
		t.Fatal(err)
	}
	now := g.clock.Now().UTC()
	if _, err := g.srv.Store().UpdateUser(context.Background(), user, func(u *store.User) error {
		u.TOTPSecret = sealed
		u.TOTPEnrolledAt = now
		u.UpdatedAt = now
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
}

// signInCode signs user in on a new browser (from ip) with the password
// and a code, and moves the clock on a step so the next code is fresh.
func signInCode(t *testing.T, g *gateway, ip, user, secret string) *browser {
	t.Helper()
	b := g.browserFrom(t, ip)
	r := loginAs(b, user, attackPW)
	mustStatus(t, r, http.StatusSeeOther, "password of "+user)
	if location(r) != "/.authgate/verify" {
		t.Fatalf("%s's password led to %q, want the code step", user, location(r))
	}
	r = b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, g.clock.Now())}})
	mustStatus(t, r, http.StatusSeeOther, "code of "+user)
	g.clock.Advance(30 * time.Second)
	return b
}

// signInPassword signs user in on a new browser (from ip) with the
// password only and checks that this gave a complete session.
func signInPassword(t *testing.T, g *gateway, ip, user string) *browser {
	t.Helper()
	b := g.browserFrom(t, ip)
	r := loginAs(b, user, attackPW)
	mustStatus(t, r, http.StatusSeeOther, "password of "+user)
	if strings.HasPrefix(location(r), "/.authgate/") {
		t.Fatalf("%s's password led to %q, want a complete session", user, location(r))
	}
	return b
}

// wrongCodes returns n distinct six-digit codes none of which the secret
// gives within five steps of now.
func wrongCodes(t *testing.T, g *gateway, secret string, n int) []string {
	t.Helper()
	valid := map[string]bool{}
	for d := -5; d <= 5; d++ {
		valid[codeFor(t, secret, g.clock.Now().Add(time.Duration(d)*30*time.Second))] = true
	}
	var out []string
	for i := 0; len(out) < n; i++ {
		c := fmt.Sprintf("%06d", (123457+i*7919)%1000000)
		if !valid[c] {
			out = append(out, c)
		}
	}
	return out
}

// setMode changes the 2FA mode as an admin does (the service behind the
// admin page and the CLI), then moves the gateway's clock past its
// settings cache (2 s).
func setMode(t *testing.T, g *gateway, mode string) {
	t.Helper()
	if err := userAdmin(g).SetMode(context.Background(), mode); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(3 * time.Second)
}

// getUser reads user from the gateway's store.
func getUser(t *testing.T, g *gateway, name string) store.User {
	t.Helper()
	u, err := g.srv.Store().GetUser(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
