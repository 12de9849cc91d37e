package server_test

// Brute force by concurrency: hundreds of guesses released at the same
// moment (testkit.Burst), so that a limit implemented as "read the count,
// check, then add one" lets them all through before the first failure
// is counted. What counts is how many guesses the gateway really checked
// (authgate_factor_checks_total), not the status codes: a limit that
// answers "too many" after checking the code has already lost.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/internal/testkit"
)

// accepted reports whether a second-factor answer completed the sign-in:
// on to the target with a new session cookie.
func accepted(r testkit.BurstResponse) bool {
	return r.Status == http.StatusSeeOther && !strings.HasPrefix(r.Header.Get("Location"), "/.authgate/login") && issuedSession(r.Header) != ""
}

// TestAttackCodeBurst guards against guessing the TOTP code of one
// half-finished sign-in (password known, code owed) with 200 codes sent
// at once: the per-sign-in limit (5 wrong codes) and the per-user limit
// (regulation.max_failures 5) must hold however the guesses are timed.
// Today each request reads the failure count before any failure of the
// burst is written, so every code is checked, and the right one among
// them signs the attacker in.
func TestAttackCodeBurst(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := attackGateway(t, driver, "required", nil)
		g.addUser(t, "alice", attackPW)
		g.addUser(t, "bob", attackPW)
		secretA := giveTOTP(t, g, "alice")
		secretB := giveTOTP(t, g, "bob")

		// 1. bob: 200 wrong codes and the right one in one burst on one
		// half-finished sign-in.
		b := g.browserFrom(t, "10.200.0.1")
		r := loginAs(b, "bob", attackPW)
		if location(r) != "/.authgate/verify" {
			t.Fatalf("bob's password: %s, want the code step", describe(r))
		}
		pending := sessionCookie(t, g, b)
		tok := b.token("/.authgate/verify")
		right := codeFor(t, secretB, g.clock.Now())
		var reqs [][]byte
		for i, c := range wrongCodes(t, g, secretB, attackBurst) {
			if i == attackBurst/2 {
				reqs = append(reqs, b.raw("POST", "/.authgate/verify", url.Values{"code": {right}, "csrf_token": {tok}}, xff(burstIP(1, 999))))
			}
			reqs = append(reqs, b.raw("POST", "/.authgate/verify", url.Values{"code": {c}, "csrf_token": {tok}}, xff(burstIP(1, i))))
		}
		meter := meterChecks(t, g)
		out := burst(t, g, reqs, nil)
		estimate, full := 0, 0
		for _, r := range out {
			switch {
			case accepted(r):
				estimate++
				full++
				if !reaches(t, g, issuedSession(r.Header), twoFactorPath) {
					t.Errorf("an accepted code's session does not reach the panel")
				}
			case r.Status == http.StatusUnauthorized && (strings.Contains(r.Body, "The security code is invalid.") || strings.Contains(r.Body, "Too many invalid codes")):
				estimate++ // today both answers come after the check
			}
		}
		n, note := meter.since(checkTOTP, estimate)
		t.Logf("bob: %d codes checked%s, %d full session(s) issued", n, note, full)
		if n > attackLimit {
			t.Errorf("%d TOTP codes were checked for one half-finished sign-in%s, want at most %d: the burst got past the limit%s",
				n, note, attackLimit, map[bool]string{true: ", and the right code among them signed the attacker in", false: ""}[full > 0])
		}
		if full > 1 {
			t.Errorf("one half-finished sign-in became %d full sessions", full)
		}
		// Once the limit is reached (or the right code accepted) the
		// half-finished sign-in is over: ended by the wrong codes or
		// rotated by the right one.
		if n >= attackLimit || full > 0 {
			if r := cookieBrowser(t, g, pending).get("/.authgate/verify"); !toLogin(r) {
				t.Errorf("the half-finished sign-in survived %d checked codes: verify page %s", n, describe(r))
			}
		}

		// 2. alice: a burst of wrong codes only, then the right code
		// after a new sign-in: she is banned (5 per user per window), so
		// it is refused without being checked.
		a := g.browserFrom(t, "10.200.0.2")
		if r := loginAs(a, "alice", attackPW); location(r) != "/.authgate/verify" {
			t.Fatalf("alice's password: %s, want the code step", describe(r))
		}
		tok = a.token("/.authgate/verify")
		reqs = nil
		for i, c := range wrongCodes(t, g, secretA, attackBurst) {
			reqs = append(reqs, a.raw("POST", "/.authgate/verify", url.Values{"code": {c}, "csrf_token": {tok}}, xff(burstIP(2, i))))
		}
		meter = meterChecks(t, g)
		out = burst(t, g, reqs, nil)
		estimate = 0
		for _, r := range out {
			if r.Status == http.StatusUnauthorized {
				estimate++
			}
		}
		n, note = meter.since(checkTOTP, estimate)
		if n > attackLimit {
			t.Errorf("%d wrong TOTP codes of alice were checked%s, want at most %d", n, note, attackLimit)
		}
		if n < attackLimit {
			// Fewer than the limit failed (the rest refused unchecked):
			// no ban is owed yet.
			t.Logf("only %d of alice's codes were checked: no ban to test", n)
			return
		}
		meter = meterChecks(t, g)
		later := g.browserFrom(t, "10.200.0.3")
		r = loginAs(later, "alice", attackPW)
		if location(r) == "/.authgate/verify" {
			r = later.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {codeFor(t, secretA, g.clock.Now())}})
		}
		if r.status == http.StatusSeeOther && !strings.HasPrefix(location(r), "/.authgate/") {
			t.Errorf("alice signed in with the right code right after 200 wrong ones: %s, want refused while banned", describe(r))
		}
		if n, note := meter.since(checkTOTP, 0); n != 0 {
			t.Errorf("%d TOTP code(s) checked during alice's ban%s, want none", n, note)
		}
	})
}

// TestAttackPasswordBurst guards against guessing one user's password
// with 200 sign-ins (each its own browser) sent at once, from 200
// addresses (so no address ban applies) or from one: at most
// regulation.max_failures (5) passwords may be hashed against the stored
// hash, even with the right password in the burst.
func TestAttackPasswordBurst(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		for _, oneAddress := range []bool{false, true} {
			t.Run(map[bool]string{false: "200 addresses", true: "one address"}[oneAddress], func(t *testing.T) {
				passwordBurst(t, driver, oneAddress)
			})
		}
	})
}

func passwordBurst(t *testing.T, driver string, oneAddress bool) {
	g := attackGateway(t, driver, "required", nil)
	g.addUser(t, "alice", attackPW)
	var reqs [][]byte
	for i := range attackBurst + 1 {
		pw := fmt.Sprintf("guess %d", i)
		if i == attackBurst/2 {
			pw = attackPW
		}
		ip := burstIP(3, i)
		if oneAddress {
			ip = "10.3.200.1"
		}
		b := g.browserFrom(t, ip)
		tok := b.token("/.authgate/login")
		reqs = append(reqs, b.raw("POST", "/.authgate/login", url.Values{"username": {"alice"}, "password": {pw}, "csrf_token": {tok}}, nil))
	}
	meter := meterChecks(t, g)
	out := burst(t, g, reqs, nil)
	estimate, in := 0, 0
	statuses := map[int]int{}
	for _, r := range out {
		statuses[r.Status]++
		switch {
		case r.Status == http.StatusSeeOther:
			estimate++
			in++
		case r.Status == http.StatusUnauthorized && strings.Contains(r.Body, "The username or password is incorrect."):
			estimate++
		}
	}
	n, note := meter.since(checkPassword, estimate)
	t.Logf("%d passwords checked%s; answers %v", n, note, statuses)
	if n > attackLimit {
		t.Errorf("%d passwords of alice were checked%s in one burst, want at most %d (regulation.max_failures)%s",
			n, note, attackLimit, map[bool]string{true: "; the right one among them was accepted", false: ""}[in > 0])
	}
	// The ban holds afterwards: the right password is not even
	// checked. (Owed only when the limit was reached with wrong
	// passwords; a right one among the checked resets nothing in
	// mode required, but leaves one failure short.)
	if in > 0 || n < attackLimit {
		t.Logf("%d checked, right password accepted %d time(s): no ban to test", n, in)
		return
	}
	meter = meterChecks(t, g)
	r := loginAs(g.browserFrom(t, "10.201.0.1"), "alice", attackPW)
	if r.status == http.StatusSeeOther {
		t.Errorf("alice's right password was accepted right after the burst: %s, want refused while banned", describe(r))
	}
	if n, note := meter.since(checkPassword, 0); n != 0 {
		t.Errorf("%d password(s) checked during alice's ban%s, want none", n, note)
	}
}

// TestAttackRecoveryCodeBurst guards against guessing a recovery code of
// one half-finished sign-in with 200 codes sent at once (the right one
// among them): at most 5 recovery codes may be compared.
func TestAttackRecoveryCodeBurst(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := attackGateway(t, driver, "required", nil)
		g.addUser(t, "alice", attackPW)
		giveTOTP(t, g, "alice")
		codes := giveRecoveryCodes(t, g, "alice")
		b := g.browserFrom(t, "10.202.0.1")
		if r := loginAs(b, "alice", attackPW); location(r) != "/.authgate/verify" {
			t.Fatalf("alice's password: %s, want the code step", describe(r))
		}
		pending := sessionCookie(t, g, b)
		tok := b.token("/.authgate/recovery")
		const alphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
		var reqs [][]byte
		for i := range attackBurst {
			if i == attackBurst/2 {
				reqs = append(reqs, b.raw("POST", "/.authgate/recovery", url.Values{"recovery_code": {codes[3]}, "csrf_token": {tok}}, xff(burstIP(4, 999))))
			}
			var c bytes.Buffer
			for j := range 10 {
				if j == 5 {
					c.WriteByte('-')
				}
				c.WriteByte(alphabet[(i*7+j*13+i*j)%len(alphabet)])
			}
			reqs = append(reqs, b.raw("POST", "/.authgate/recovery", url.Values{"recovery_code": {c.String()}, "csrf_token": {tok}}, xff(burstIP(4, i))))
		}
		meter := meterChecks(t, g)
		out := burst(t, g, reqs, nil)
		estimate, full := 0, 0
		for _, r := range out {
			switch {
			case accepted(r):
				estimate++
				full++
			case r.Status == http.StatusUnauthorized && (strings.Contains(r.Body, "The recovery code is invalid.") || strings.Contains(r.Body, "Too many invalid codes")):
				estimate++
			}
		}
		n, note := meter.since(checkRecovery, estimate)
		t.Logf("%d recovery codes checked%s, %d full session(s)", n, note, full)
		if n > attackLimit {
			t.Errorf("%d recovery codes were checked for one half-finished sign-in%s, want at most %d%s",
				n, note, attackLimit, map[bool]string{true: "; the right one among them signed the attacker in", false: ""}[full > 0])
		}
		if full > 1 {
			t.Errorf("one half-finished sign-in became %d full sessions", full)
		}
		// A code is used up only by the sign-in it completes.
		switch left := len(getUser(t, g, "alice").RecoveryCodes); {
		case left < 10-full:
			t.Errorf("%d recovery codes left after %d sign-in(s) by recovery code, want %d: the right code was used up without signing in", left, full, 10-full)
		case left > 10-full:
			t.Errorf("%d recovery codes left after %d sign-in(s) by recovery code, want %d: a sign-in did not use up its code", left, full, 10-full)
		}
		if n >= attackLimit || full > 0 {
			if r := cookieBrowser(t, g, pending).get("/.authgate/recovery"); !toLogin(r) {
				t.Errorf("the half-finished sign-in survived %d checked recovery codes: %s", n, describe(r))
			}
		}
	})
}

// TestAttackAccountProofBurst guards against a stolen complete session
// (say a cookie lifted from a shared machine) guessing the account's
// password on the account pages, where it is asked again before a change:
// 200 password changes with wrong current passwords, and 200 removals of
// 2FA with wrong passwords and codes, each burst at once. At most 5
// proofs may be checked per user and window.
func TestAttackAccountProofBurst(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := attackGateway(t, driver, "on", nil)
		g.addUser(t, "alice", attackPW)
		g.addUser(t, "bob", attackPW)
		secretA := giveTOTP(t, g, "alice")
		secretB := giveTOTP(t, g, "bob")

		t.Run("password change", func(t *testing.T) {
			a := signInCode(t, g, "10.203.0.1", "alice", secretA)
			hash := getUser(t, g, "alice").PasswordHash
			tok := a.token("/.authgate/account/password")
			var reqs [][]byte
			for i := range attackBurst {
				reqs = append(reqs, a.raw("POST", "/.authgate/account/password", url.Values{
					"current_password": {fmt.Sprintf("guess %d", i)}, "new_password": {"attacker's password"},
					"new_password_repeat": {"attacker's password"}, "csrf_token": {tok}}, xff(burstIP(5, i))))
			}
			meter := meterChecks(t, g)
			out := burst(t, g, reqs, nil)
			estimate := 0
			for _, r := range out {
				if r.Status == http.StatusForbidden && strings.Contains(r.Body, "The current password is incorrect.") {
					estimate++
				}
			}
			n, note := meter.since(checkPassword, estimate)
			t.Logf("%d current passwords checked%s", n, note)
			if n > attackLimit {
				t.Errorf("%d current passwords were checked in one burst%s, want at most %d", n, note, attackLimit)
			}
			if getUser(t, g, "alice").PasswordHash != hash {
				t.Error("alice's password changed")
			}
		})

		t.Run("2FA removal", func(t *testing.T) {
			b := signInCode(t, g, "10.203.0.2", "bob", secretB)
			tok := b.token("/.authgate/account")
			wrong := wrongCodes(t, g, secretB, attackBurst)
			var reqs [][]byte
			for i := range attackBurst {
				f := url.Values{"confirm": {"1"}, "csrf_token": {tok}}
				if i%2 == 0 {
					f.Set("password", fmt.Sprintf("guess %d", i))
				} else {
					f.Set("code", wrong[i])
				}
				reqs = append(reqs, b.raw("POST", "/.authgate/account/2fa/remove", f, xff(burstIP(6, i))))
			}
			meter := meterChecks(t, g)
			out := burst(t, g, reqs, nil)
			estPW, estCode := 0, 0
			for i, r := range out {
				if r.Status == http.StatusForbidden && strings.Contains(r.Body, "The password or code is incorrect.") {
					if i%2 == 0 {
						estPW++
					} else {
						estCode++
					}
				}
			}
			pw, note := meter.since(checkPassword, estPW)
			codes, _ := meter.since(checkTOTP, estCode)
			t.Logf("%d passwords and %d codes checked%s", pw, codes, note)
			if pw+codes > attackLimit {
				t.Errorf("%d passwords and %d codes were checked in one burst of 2FA removals%s, want at most %d together", pw, codes, note, attackLimit)
			}
			if !getUser(t, g, "bob").HasTOTP() {
				t.Error("bob's 2FA was removed")
			}
		})
	})
}
