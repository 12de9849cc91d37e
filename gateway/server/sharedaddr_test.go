package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
)

// Regression: behind a terminator that is not in trusted_proxies every
// client shares one address. Three users typing codes from phones five
// minutes slow, plus two typos, banned that address for 15 minutes:
// every user and the admin got 429. Codes that match the secret at a
// clock offset prove the secret (drift evidence, not guesses), and
// failures after the password belong to the user and the session, not
// the address.
func TestSharedAddressIsNotLockedOutByCodes(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		// No trusted proxies: every browser of the test is 127.0.0.1.
		g := attackGateway(t, driver, "required", func(c *config.Config) {
			c.TrustedProxies = nil
			c.Regulation.MaxFailures = 3
		})
		users := []string{"ann", "ben", "cat"}
		secrets := map[string]string{}
		for _, u := range users {
			g.addUser(t, u, attackPW)
			secrets[u] = giveTOTP(t, g, u)
		}
		g.addUser(t, "root", attackPW)
		rootSecret := giveTOTP(t, g, "root")

		for _, u := range users {
			b := g.browser(t)
			if r := loginAs(b, u, attackPW); location(r) != "/.authgate/verify" {
				t.Fatalf("%s: password led to %s", u, describe(r))
			}
			// Two codes from a phone five minutes slow: refused, with the
			// hint, and recorded as drift, not as guesses.
			for range 2 {
				r := b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {phoneCode(t, g, secrets[u], -5*time.Minute)}})
				mustStatus(t, r, http.StatusUnauthorized, u+"'s drifted code")
				if !strings.Contains(r.body, "The security code is invalid.") || !strings.Contains(r.body, "sets its date and time automatically") {
					t.Fatalf("%s: drifted code answered without the message and the hint: %.400s", u, r.body)
				}
				g.clock.Advance(30 * time.Second)
			}
		}
		// Two plain typos by two users (below each user's limit of 3).
		for _, u := range users[:2] {
			b := g.browser(t)
			loginAs(b, u, attackPW)
			r := b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {wrongCodes(t, g, secrets[u], 1)[0]}})
			mustStatus(t, r, http.StatusUnauthorized, u+"'s typo")
		}
		// Nobody is locked out: the shared address is not banned, and the
		// admin signs in.
		for _, u := range append(users, "root") {
			secret := secrets[u]
			if u == "root" {
				secret = rootSecret
			}
			b := g.browser(t)
			r := loginAs(b, u, attackPW)
			if r.status == http.StatusTooManyRequests {
				t.Fatalf("%s locked out after drifted codes and typos from the shared address: %s", u, describe(r))
			}
			r = b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, g.clock.Now())}})
			if r.status != http.StatusSeeOther || strings.HasPrefix(location(r), "/.authgate/") {
				t.Fatalf("%s could not sign in: %s", u, describe(r))
			}
			g.clock.Advance(30 * time.Second)
		}
	})
}

// A user's own code failures still ban that user (not the address): the
// third wrong code answers with the ban at once, and other users from the
// same address sign in.
func TestCodeFailuresBanTheUserNotTheAddress(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := attackGateway(t, driver, "required", func(c *config.Config) {
			c.TrustedProxies = nil
			c.Regulation.MaxFailures = 3
		})
		g.addUser(t, "dan", attackPW)
		danSecret := giveTOTP(t, g, "dan")
		g.addUser(t, "eve", attackPW)
		eveSecret := giveTOTP(t, g, "eve")

		b := g.browser(t)
		loginAs(b, "dan", attackPW)
		wrong := wrongCodes(t, g, danSecret, 3)
		for i, c := range wrong {
			r := b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {c}})
			if i < 2 {
				mustStatus(t, r, http.StatusUnauthorized, "dan's wrong code")
				continue
			}
			// The failure that starts the ban says so at once.
			mustBanned(t, r, "dan's third wrong code", "")
		}
		if r := loginAs(g.browser(t), "dan", attackPW); r.status != http.StatusTooManyRequests {
			t.Fatalf("dan after his ban started: %s, want 429", describe(r))
		}
		e := g.browser(t)
		if r := loginAs(e, "eve", attackPW); location(r) != "/.authgate/verify" {
			t.Fatalf("eve from the same address: %s, want the code step", describe(r))
		}
		r := e.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {codeFor(t, eveSecret, g.clock.Now())}})
		if r.status != http.StatusSeeOther || strings.HasPrefix(location(r), "/.authgate/") {
			t.Fatalf("eve could not sign in from dan's address: %s", describe(r))
		}
	})
}
