package server_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/passkey/passkeytest"
)

// passkeyBurst is how many copies of one answer arrive together.
const passkeyBurst = 50

// One valid key answer sent many times at once in the sign-in it was
// made for completes that sign-in at most once. Within the session's
// attempt limit (5) exactly one copy completes it, one session is made
// and the key's counter is recorded once; the other copies find the
// session moved on. Fifty copies spend the session's attempts first: it
// is ended and nobody gets in (fail closed). A passwordless answer of a
// key without a signature counter, sent fifty times with its ceremony
// cookie, spends its challenge once: one session.
func TestPasskeyAnswerBurst(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := passkeyGateway(t, driver, "on", true)
		g.addUser(t, "alice", attackPW)
		secret := giveTOTP(t, g, "alice")
		key := passkeytest.New(g.URL)
		mustStatus(t, registerKey(t, signInCode(t, g, "10.8.0.1", "alice", secret), key, "Laptop"), http.StatusSeeOther, "add key")

		// burstKey signs in with the password from ip and sends n copies
		// of one key answer together; it returns the complete sessions
		// made and how many times the key's counter moved.
		burstKey := func(ip string, n int) (sessions int, counted uint32) {
			t.Helper()
			before := getUser(t, g, "alice").Passkeys[0].SignCount
			b := g.browserFrom(t, ip)
			mustStatus(t, loginAs(b, "alice", attackPW), http.StatusSeeOther, "password of alice")
			answer := keyAnswer(t, b, key, "/.authgate/verify")
			form := url.Values{"passkey": {string(answer)}, "csrf_token": {b.token("/.authgate/verify")}}
			reqs := make([][]byte, n)
			for i := range reqs {
				reqs[i] = b.raw("POST", "/.authgate/verify", form, nil)
			}
			ids := map[string]bool{}
			for _, r := range burst(t, g, reqs, nil) {
				if id := issuedSession(r.Header); id != "" && r.Status == http.StatusSeeOther && !strings.HasPrefix(r.Header.Get("Location"), "/.authgate/") {
					ids[id] = true
				}
			}
			// A key answers with its counter one up per use: the
			// stored counter moved by the uses recorded.
			return len(ids), getUser(t, g, "alice").Passkeys[0].SignCount - before
		}
		if n, counted := burstKey("10.8.0.2", 5); n != 1 || counted != 1 {
			t.Fatalf("5 copies of one answer: %d complete sessions, counter moved %d; want 1 and 1", n, counted)
		}

		// Passwordless: one ceremony, its answer 50 times with the cookie.
		// A key that does not count its signatures (counter always 0,
		// as many passkeys do) leaves the spent challenge as the only
		// thing that stops the copies.
		uncounted := passkeytest.New(g.URL)
		uncounted.FixedCounter = true
		mustStatus(t, registerKey(t, signInCode(t, g, "10.8.0.5", "alice", secret), uncounted, "Phone"), http.StatusSeeOther, "add a key without counter")
		p := g.browserFrom(t, "10.8.0.4")
		opts, r := beginCeremony(t, p, "/.authgate/login", "/.authgate/passkey/passwordless/begin", nil)
		mustStatus(t, r, http.StatusOK, "passwordless begin")
		answer, err := uncounted.Get(opts)
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"passkey": {string(answer)}, "csrf_token": {p.token("/.authgate/login")}}
		reqs := make([][]byte, passkeyBurst)
		for i := range reqs {
			reqs[i] = p.raw("POST", "/.authgate/passkey/signin", form, nil)
		}
		sessions := map[string]bool{}
		for _, r := range burst(t, g, reqs, nil) {
			if id := issuedSession(r.Header); id != "" && r.Status == http.StatusSeeOther {
				sessions[id] = true
			}
		}
		if len(sessions) != 1 {
			t.Fatalf("%d copies of one passwordless answer gave %d sessions, want 1", passkeyBurst, len(sessions))
		}

		// Last: when none of the copies completes the sign-in, the
		// session's five spent attempts are five failures of alice, which
		// ban her name (regulation.max_failures 5), as five wrong codes
		// would; a sign-in of hers after this one would be refused.
		if n, counted := burstKey("10.8.0.3", passkeyBurst); n > 1 || counted > 1 {
			t.Fatalf("%d copies of one answer: %d complete sessions, counter moved %d; want at most 1", passkeyBurst, n, counted)
		}
	})
}

// A session that has not passed the account's second factor (mode off:
// password only) changes none of the account's keys: registering one is
// refused with the step-up address, adding, renaming and removing are
// sent to the step-up, and the keys stay as they were.
func TestPasskeyChangesNeedTheCurrentFactor(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := passkeyGateway(t, driver, "on", false)
		g.addUser(t, "bob", attackPW)
		key := passkeytest.New(g.URL)
		mustStatus(t, registerKey(t, signInPassword(t, g, "10.9.0.1", "bob"), key, "YubiKey"), http.StatusOK, "first key")
		setMode(t, g, "off")
		b := signInPassword(t, g, "10.9.0.2", "bob") // no key asked in mode off
		_, r := beginCeremony(t, b, "/.authgate/account", "/.authgate/account/passkeys/begin", url.Values{"name": {"Second"}})
		mustStatus(t, r, http.StatusForbidden, "registration from a password-only session")
		if !strings.Contains(r.body, "/.authgate/verify?stepup=1") {
			t.Fatalf("no step-up address in %s", r.body)
		}
		id := getUser(t, g, "bob").Passkeys[0].ID
		for _, tc := range []struct {
			path string
			form url.Values
		}{
			{"/.authgate/account/passkeys/add", url.Values{"passkey": {"{}"}}},
			{"/.authgate/account/passkeys/rename", url.Values{"id": {base64URL(id)}, "name": {"Renamed"}}},
			{"/.authgate/account/passkeys/remove", url.Values{"id": {base64URL(id)}}},
		} {
			r := b.post("/.authgate/account", tc.path, tc.form)
			if r.status != http.StatusSeeOther || !strings.HasPrefix(location(r), "/.authgate/verify?stepup=1") {
				t.Fatalf("%s from a password-only session: %d %q", tc.path, r.status, location(r))
			}
		}
		if keys := getUser(t, g, "bob").Passkeys; len(keys) != 1 || keys[0].Name != "YubiKey" {
			t.Fatalf("keys changed: %+v", keys)
		}
	})
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
