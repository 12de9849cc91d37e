package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/regulation"
	"github.com/authgate/authgate/gateway/store"
)

// regGateway is a gateway that believes X-Forwarded-For from the test
// (127.0.0.1), so each request can come from its own client address.
func regGateway(t *testing.T, driver string, maxFailures int) *gateway {
	t.Helper()
	return startGatewayWith(t, gwOpts{driver: driver, mode: "required"}, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1", "::1"}
		c.Regulation.MaxFailures = maxFailures
	})
}

// from sends the browser's next requests as client ip.
func (b *browser) from(ip string) *browser {
	b.hdr.Set("X-Forwarded-For", ip)
	return b
}

func (g *gateway) browserFrom(t *testing.T, ip string) *browser { return g.browser(t).from(ip) }

var (
	banCSRFRE     = regexp.MustCompile(`name="csrf_token" value="[^"]*"|value="[^"]*" name="csrf_token"`)
	banRefRE      = regexp.MustCompile(`Reference: <code>[^<]*</code>`)
	banUsernameRE = regexp.MustCompile(`name="username" type="text" value="[^"]*"`)
)

// normalized drops what legitimately differs between two answers: the
// CSRF token, the request id and the name the user typed.
func normalized(body string) string {
	body = banCSRFRE.ReplaceAllString(body, "CSRF")
	body = banRefRE.ReplaceAllString(body, "REF")
	return banUsernameRE.ReplaceAllString(body, "USERNAME")
}

func loginAs(b *browser, user, pw string) resp {
	b.t.Helper()
	return b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {user}, "password": {pw}})
}

func mustBanned(t *testing.T, r resp, what string, retryAfter string) {
	t.Helper()
	mustStatus(t, r, http.StatusTooManyRequests, what)
	if !strings.Contains(r.body, "Too many attempts. Try again in 15 minutes.") {
		t.Fatalf("%s: ban message missing: %.600s", what, r.body)
	}
	if got := r.header.Get("Retry-After"); retryAfter != "" && got != retryAfter {
		t.Fatalf("%s: Retry-After %q, want %q", what, got, retryAfter)
	}
	if r.header.Get("Retry-After") == "" {
		t.Fatalf("%s: no Retry-After", what)
	}
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "authgate_session=") && !strings.Contains(c, "Max-Age=0") {
			t.Fatalf("%s: a session cookie was issued during a ban: %s", what, c)
		}
	}
}

func TestBruteForceBans(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			g := regGateway(t, driver, 3)
			g.addUser(t, "alice", "correct horse")
			g.addUser(t, "bob", "bob password")
			// carol's bcrypt hash would be upgraded by any successful
			// password check: it shows whether a check happened.
			bh, _ := bcrypt.GenerateFromPassword([]byte("carol password"), bcrypt.MinCost)
			now := time.Now().UTC()
			if err := g.srv.Store().CreateUser(context.Background(), store.User{Name: "carol", PasswordHash: string(bh), Role: store.RoleUser, CreatedAt: now, UpdatedAt: now}); err != nil {
				t.Fatal(err)
			}
			secret := enroll(t, g, g.browserFrom(t, "10.0.0.100"))
			g.clock.Advance(time.Minute) // a new step: the enrolment code is used

			// Wrong TOTP codes count: three (each from its own session and
			// address) ban alice, and the third says so at once; then even
			// the right code gets 429.
			var last *browser
			for i := range 3 {
				last = g.browserFrom(t, fmt.Sprintf("10.0.0.%d", i+1))
				mustStatus(t, loginAs(last, "alice", "correct horse"), http.StatusSeeOther, "alice's password")
				r := last.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {"000000"}})
				if i < 2 {
					mustStatus(t, r, http.StatusUnauthorized, "wrong code")
				} else {
					mustBanned(t, r, "the wrong code that starts the ban", "900")
				}
			}
			r := last.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, g.clock.Now())}})
			mustBanned(t, r, "right code during a ban", "")

			// At the login, right and wrong passwords get the same answer.
			right := loginAs(g.browserFrom(t, "10.0.0.20"), "alice", "correct horse")
			mustBanned(t, right, "right password during a ban", "")
			wrong := loginAs(g.browserFrom(t, "10.0.0.21"), "alice", "wrong")
			mustBanned(t, wrong, "wrong password during a ban", "")
			if normalized(right.body) != normalized(wrong.body) || right.header.Get("Retry-After") != wrong.header.Get("Retry-After") {
				t.Fatalf("ban answers differ for right and wrong passwords:\n%s\n---\n%s", right.body, wrong.body)
			}

			// Unknown user names are counted and banned alike: same answer.
			for i := range 2 {
				mustStatus(t, loginAs(g.browserFrom(t, fmt.Sprintf("10.0.1.%d", i)), "nobody", "guess"), http.StatusUnauthorized, "unknown user")
			}
			mustBanned(t, loginAs(g.browserFrom(t, "10.0.1.2"), "nobody", "guess"), "the failure that starts the ban", "900")
			unknown := loginAs(g.browserFrom(t, "10.0.1.9"), "nobody", "guess")
			mustBanned(t, unknown, "unknown user during a ban", "900")
			if normalized(unknown.body) != normalized(wrong.body) {
				t.Fatalf("ban answers differ for an unknown and a known user:\n%s\n---\n%s", unknown.body, wrong.body)
			}

			// During a ban the password is not even checked: carol's
			// bcrypt hash is not upgraded by her right password.
			for i := range 2 {
				mustStatus(t, loginAs(g.browserFrom(t, fmt.Sprintf("10.0.2.%d", i)), "carol", "wrong"), http.StatusUnauthorized, "carol wrong")
			}
			mustBanned(t, loginAs(g.browserFrom(t, "10.0.2.2"), "carol", "wrong"), "carol's failure that starts her ban", "900")
			mustBanned(t, loginAs(g.browserFrom(t, "10.0.2.9"), "carol", "carol password"), "carol during her ban", "")
			if u, _ := g.srv.Store().GetUser(context.Background(), "carol"); !strings.HasPrefix(u.PasswordHash, "$2") {
				t.Fatal("carol's password was checked (and her hash upgraded) during her ban")
			}

			// An address spraying user names is banned for every name.
			for i := range 2 {
				mustStatus(t, loginAs(g.browserFrom(t, "192.0.2.66"), fmt.Sprintf("spray%d", i), "x"), http.StatusUnauthorized, "spray")
			}
			mustBanned(t, loginAs(g.browserFrom(t, "192.0.2.66"), "spray2", "x"), "the spray that starts the address's ban", "900")
			mustBanned(t, loginAs(g.browserFrom(t, "192.0.2.66"), "bob", "bob password"), "bob from the banned address", "900")
			mustStatus(t, loginAs(g.browserFrom(t, "192.0.2.67"), "bob", "bob password"), http.StatusSeeOther, "bob from another address")

			// Lifting alice's ban lets her in at once.
			if _, err := regulation.Lift(context.Background(), g.srv.Store(), "alice"); err != nil {
				t.Fatal(err)
			}
			mustStatus(t, loginAs(g.browserFrom(t, "10.0.0.30"), "alice", "correct horse"), http.StatusSeeOther, "alice after the lift")

			// Every ban start is in the audit trail (with the failures).
			evs, _ := g.srv.Store().ListAudit(context.Background(), store.AuditFailures, audit.KeepFailures)
			started := map[string]bool{}
			for _, ev := range evs {
				if ev.Action == audit.BanStarted {
					started[ev.Target] = true
				}
			}
			for _, want := range []string{"alice", "nobody", "carol", "192.0.2.66"} {
				if !started[want] {
					t.Errorf("no %s event for %s (have %v)", audit.BanStarted, want, started)
				}
			}

			// Bans end by themselves (the embedded store runs on the
			// test's clock; Redis would need 15 real minutes).
			if driver == "embedded" {
				g.clock.Advance(16 * time.Minute)
				mustStatus(t, loginAs(g.browserFrom(t, "10.0.1.20"), "nobody", "guess"), http.StatusUnauthorized, "unknown user after the ban")
				mustStatus(t, loginAs(g.browserFrom(t, "192.0.2.66"), "bob", "bob password"), http.StatusSeeOther, "bob from the address after its ban")
			}
		})
	}
}

// Two gateways sharing one Redis share the counts: failures on one ban
// on the other.
func TestBansSharedAcrossInstances(t *testing.T) {
	a, b := twoInstances(t, func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1"}
		c.Regulation.MaxFailures = 4
	})
	a.addUser(t, "alice", "correct horse")
	for i := range 4 {
		g := a
		if i%2 == 1 {
			g = b
		}
		r := loginAs(g.browserFrom(t, fmt.Sprintf("10.1.0.%d", i)), "alice", "wrong")
		if i < 3 {
			mustStatus(t, r, http.StatusUnauthorized, "wrong password")
		} else {
			mustBanned(t, r, "the fourth failure, on the other instance", "")
		}
	}
	for _, g := range []*gateway{a, b} {
		mustBanned(t, loginAs(g.browserFrom(t, "10.1.0.9"), "alice", "correct horse"), "alice on either instance", "")
	}
}
