package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/passkey/passkeytest"
	"github.com/authgate/authgate/gateway/store"
)

// passkeyGateway serves at http://localhost:PORT (public_url), where
// passkeys are available, with a password route (/docs) and a
// two-factor one (everything else).
func passkeyGateway(t *testing.T, driver, mode string, passwordless bool) *gateway {
	t.Helper()
	up := newUpstream(t)
	g := startGatewayWith(t, gwOpts{driver: driver, mode: mode, localhost: true, routes: []config.Route{
		{Name: "docs", PathPrefix: "/docs", Upstream: up.URL, Policy: config.PolicyPassword},
		{Name: "app", PathPrefix: "/", Upstream: up.URL, Policy: config.PolicyTwoFactor},
	}}, func(c *config.Config) {
		c.WebAuthn.Passwordless = passwordless
		// The tests' clients each come from their own address
		// (browserFrom), as they would behind a terminator.
		c.TrustedProxies = []string{"127.0.0.1", "::1"}
	})
	return g
}

// beginCeremony POSTs a passkey begin step with the CSRF token of
// formPage and returns the options (JSON) and the answer.
func beginCeremony(t *testing.T, b *browser, formPage, path string, form url.Values) ([]byte, resp) {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if formPage == "" {
		form.Set("csrf_token", b.anyToken())
	} else {
		form.Set("csrf_token", b.token(formPage))
	}
	r := b.do("POST", path, form, http.Header{"Accept": {"application/json"}})
	return []byte(r.body), r
}

// registerKey registers a new key from a's authenticator on b's account
// page and returns the answer to the add step.
func registerKey(t *testing.T, b *browser, a *passkeytest.Authenticator, name string) resp {
	t.Helper()
	opts, r := beginCeremony(t, b, "/.authgate/account", "/.authgate/account/passkeys/begin", url.Values{"name": {name}})
	mustStatus(t, r, http.StatusOK, "registration begin")
	answer, err := a.Create(opts)
	if err != nil {
		t.Fatalf("authenticator: %v (options %s)", err, opts)
	}
	return b.post("/.authgate/account", "/.authgate/account/passkeys/add", url.Values{"passkey": {string(answer)}})
}

// keyAnswer begins a second-factor use on b's verify page and returns
// a's answer.
func keyAnswer(t *testing.T, b *browser, a *passkeytest.Authenticator, verifyPage string) []byte {
	t.Helper()
	opts, r := beginCeremony(t, b, verifyPage, "/.authgate/passkey/begin", nil)
	mustStatus(t, r, http.StatusOK, "passkey begin")
	answer, err := a.Get(opts)
	if err != nil {
		t.Fatalf("authenticator: %v", err)
	}
	return answer
}

func submitKey(b *browser, verifyPage string, answer []byte) resp {
	return b.post(verifyPage, "/.authgate/verify", url.Values{"passkey": {string(answer)}})
}

// auditHas reports whether the changes or failures trail has an event
// of action for user whose detail contains detail.
func auditHas(t *testing.T, g *gateway, action, user, detail string) bool {
	t.Helper()
	for _, trail := range store.AuditTrails {
		evs, err := g.srv.Store().ListAudit(t.Context(), trail, 200)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Action == action && ev.Target == user && strings.Contains(ev.Detail, detail) {
				return true
			}
		}
	}
	return false
}

// TestPasskeyAsSecondFactor: a user with an authenticator app registers
// a passkey on the account page, then signs in with password + key; the
// key's answer is accepted once, for its own challenge and its own
// account only, and a copied key whose counter lags is refused and
// audited.
func TestPasskeyAsSecondFactor(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := passkeyGateway(t, driver, "on", false)
		g.addUser(t, "alice", attackPW)
		g.addUser(t, "bob", attackPW)
		secret := giveTOTP(t, g, "alice")
		key := passkeytest.New(g.URL)

		b := signInCode(t, g, "10.1.0.1", "alice", secret)
		acct := b.get("/.authgate/account")
		mustStatus(t, acct, http.StatusOK, "account page")
		if !strings.Contains(acct.body, "Add a passkey or security key") || !strings.Contains(acct.header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("account page offers no passkey registration (CSP %q)", acct.header.Get("Content-Security-Policy"))
		}
		r := registerKey(t, b, key, "Laptop")
		mustStatus(t, r, http.StatusSeeOther, "add key")
		if location(r) != "/.authgate/account?done=passkey-added" {
			t.Fatalf("add key led to %q", location(r))
		}
		u := getUser(t, g, "alice")
		if len(u.Passkeys) != 1 || u.Passkeys[0].Name != "Laptop" || !u.Passkeys[0].Discoverable || len(u.PasskeyUserID) == 0 {
			t.Fatalf("stored passkeys %+v", u.Passkeys)
		}
		if !auditHas(t, g, "passkey_added", "alice", "Laptop") {
			t.Error("no passkey_added audit event")
		}
		copied := key.Clone() // a copy of the key, taken now

		// Password, then the key.
		b2 := g.browserFrom(t, "10.1.0.2")
		r = loginAs(b2, "alice", attackPW)
		if location(r) != "/.authgate/verify" {
			t.Fatalf("password led to %q", location(r))
		}
		page := b2.get("/.authgate/verify")
		if !strings.Contains(page.body, "Use your security key or passkey") || !strings.Contains(page.body, `name="code"`) {
			t.Fatalf("verify page offers not both key and code: %.600s", page.body)
		}
		// The page's CSP must let it load passkey.js (a regression: the
		// sign-in pages' renderer reset it to the script-free policy).
		if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("verify page CSP %q does not allow passkey.js", csp)
		}
		answer := keyAnswer(t, b2, key, "/.authgate/verify")
		r = submitKey(b2, "/.authgate/verify", answer)
		mustStatus(t, r, http.StatusSeeOther, "key as second factor")
		if got := b2.get(twoFactorPath); got.status != http.StatusOK {
			t.Fatalf("two-factor route after the key: %d %s", got.status, location(got))
		}
		if !auditHas(t, g, "login", "alice", "passkey") {
			t.Error("no login audit event naming the passkey")
		}
		if u := getUser(t, g, "alice"); u.Passkeys[0].LastUsedAt.IsZero() || u.Passkeys[0].SignCount == 0 {
			t.Errorf("use not recorded: %+v", u.Passkeys[0])
		}

		// The same answer again, in the session it completed: that
		// session holds no challenge any more.
		r = submitKey(b2, "/.authgate/verify?stepup=1", answer)
		mustStatus(t, r, http.StatusUnauthorized, "replayed answer in the completed session")
		// ... and in a new sign-in, whose challenge is another one.
		b3 := g.browserFrom(t, "10.1.0.3")
		loginAs(b3, "alice", attackPW)
		_, r = beginCeremony(t, b3, "/.authgate/verify", "/.authgate/passkey/begin", nil) // a new challenge
		r = submitKey(b3, "/.authgate/verify", answer)
		mustStatus(t, r, http.StatusUnauthorized, "replayed answer in a new sign-in")
		if !strings.Contains(r.body, "The security key or passkey was not accepted.") {
			t.Fatalf("refusal page: %.400s", r.body)
		}

		// Bob's key answering Alice's challenge.
		bobKey := passkeytest.New(g.URL)
		bb := signInPassword(t, g, "10.1.0.4", "bob")
		r = registerKey(t, bb, bobKey, "Bob's key")
		mustStatus(t, r, http.StatusOK, "bob's first key (shows his first recovery codes)")
		if !strings.Contains(r.body, "recovery") {
			t.Fatalf("bob's first key did not show recovery codes: %.400s", r.body)
		}
		b4 := g.browserFrom(t, "10.1.0.5")
		loginAs(b4, "alice", attackPW)
		opts, _ := beginCeremony(t, b4, "/.authgate/verify", "/.authgate/passkey/begin", nil)
		wrong, err := bobKey.GetWith(opts, bobKey.Credentials()[0])
		if err != nil {
			t.Fatal(err)
		}
		r = submitKey(b4, "/.authgate/verify", wrong)
		mustStatus(t, r, http.StatusUnauthorized, "another account's key")

		// The copy answers with a counter the original has passed.
		b5 := g.browserFrom(t, "10.1.0.6")
		loginAs(b5, "alice", attackPW)
		r = submitKey(b5, "/.authgate/verify", keyAnswer(t, b5, copied, "/.authgate/verify"))
		mustStatus(t, r, http.StatusUnauthorized, "copied key with a lagging counter")
		if !auditHas(t, g, "passkey_refused", "alice", "copied") {
			t.Error("no passkey_refused audit event for the lagging counter")
		}
		// The original still works.
		b6 := g.browserFrom(t, "10.1.0.7")
		loginAs(b6, "alice", attackPW)
		r = submitKey(b6, "/.authgate/verify", keyAnswer(t, b6, key, "/.authgate/verify"))
		mustStatus(t, r, http.StatusSeeOther, "the original key after the copy was refused")
	})
}

// TestPasskeyOnlyAccount: an account whose only second factor is a key
// is asked for the key (no code form), in mode required too, and cannot
// remove its last factor there.
func TestPasskeyOnlyAccount(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := passkeyGateway(t, driver, "on", false)
		g.addUser(t, "bob", attackPW)
		key := passkeytest.New(g.URL)
		b := signInPassword(t, g, "10.2.0.1", "bob")
		mustStatus(t, registerKey(t, b, key, "YubiKey"), http.StatusOK, "first key")

		setMode(t, g, "required")
		b2 := g.browserFrom(t, "10.2.0.2")
		r := loginAs(b2, "bob", attackPW)
		if location(r) != "/.authgate/verify" {
			t.Fatalf("password led to %q, want the verify page (not enrolment)", location(r))
		}
		page := b2.get("/.authgate/verify")
		if strings.Contains(page.body, `name="code"`) || !strings.Contains(page.body, "Use your security key or passkey") {
			t.Fatalf("verify page of a key-only account: %.600s", page.body)
		}
		mustStatus(t, submitKey(b2, "/.authgate/verify", keyAnswer(t, b2, key, "/.authgate/verify")), http.StatusSeeOther, "key")
		id := base64.RawURLEncoding.EncodeToString(getUser(t, g, "bob").Passkeys[0].ID)
		r = b2.post("/.authgate/account", "/.authgate/account/passkeys/remove", url.Values{"id": {id}})
		mustStatus(t, r, http.StatusConflict, "removing the last factor in mode required")
		if n := len(getUser(t, g, "bob").Passkeys); n != 1 {
			t.Fatalf("%d keys left after a refused removal", n)
		}
		setMode(t, g, "on")
		b3 := g.browserFrom(t, "10.2.0.3")
		loginAs(b3, "bob", attackPW)
		mustStatus(t, submitKey(b3, "/.authgate/verify", keyAnswer(t, b3, key, "/.authgate/verify")), http.StatusSeeOther, "key")
		r = b3.post("/.authgate/account", "/.authgate/account/passkeys/remove", url.Values{"id": {id}})
		mustStatus(t, r, http.StatusSeeOther, "remove key")
		u := getUser(t, g, "bob")
		if len(u.Passkeys) != 0 || len(u.RecoveryCodes) != 0 {
			t.Fatalf("after removing the last key: %d keys, %d recovery codes", len(u.Passkeys), len(u.RecoveryCodes))
		}
		if !auditHas(t, g, "passkey_removed", "bob", "YubiKey") {
			t.Error("no passkey_removed audit event")
		}
	})
}

// TestPasskeyStepUp: an admin whose second factor is older than the
// step-up window confirms it with the key to reach the admin area.
func TestPasskeyStepUp(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := passkeyGateway(t, driver, "on", false)
		g.addUser(t, "root", attackPW)
		if _, err := g.srv.Store().UpdateUser(t.Context(), "root", func(u *store.User) error { u.Role = store.RoleAdmin; return nil }); err != nil {
			t.Fatal(err)
		}
		secret := giveTOTP(t, g, "root")
		key := passkeytest.New(g.URL)
		b := signInCode(t, g, "10.3.0.1", "root", secret)
		mustStatus(t, registerKey(t, b, key, "Admin key"), http.StatusSeeOther, "add key")
		g.clock.Advance(11 * time.Minute)
		r := b.get("/.authgate/admin/users")
		mustStatus(t, r, http.StatusSeeOther, "stale admin session")
		step := location(r)
		if !strings.HasPrefix(step, "/.authgate/verify?stepup=1") {
			t.Fatalf("stale admin session sent to %q", step)
		}
		r = submitKey(b, step, keyAnswer(t, b, key, step))
		mustStatus(t, r, http.StatusSeeOther, "step-up with the key")
		if got := b.get("/.authgate/admin/users"); got.status != http.StatusOK {
			t.Fatalf("admin area after the step-up: %d %s", got.status, location(got))
		}
	})
}

// TestPasskeyPasswordless: with webauthn.passwordless a passkey alone
// signs in (user verification required); each challenge is answered
// once.
func TestPasskeyPasswordless(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := passkeyGateway(t, driver, "required", true)
		g.addUser(t, "alice", attackPW)
		secret := giveTOTP(t, g, "alice")
		key := passkeytest.New(g.URL)
		mustStatus(t, registerKey(t, signInCode(t, g, "10.4.0.1", "alice", secret), key, "Phone"), http.StatusSeeOther, "add key")

		b := g.browserFrom(t, "10.4.0.2")
		if page := b.get("/.authgate/login"); !strings.Contains(page.body, "Sign in with a passkey") ||
			!strings.Contains(page.header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("login page offers no passkey sign-in (CSP %q): %.500s", page.header.Get("Content-Security-Policy"), page.body)
		}
		opts, r := beginCeremony(t, b, "/.authgate/login", "/.authgate/passkey/passwordless/begin", nil)
		mustStatus(t, r, http.StatusOK, "passwordless begin")
		var o struct {
			PublicKey struct {
				UserVerification string            `json:"userVerification"`
				Allow            []json.RawMessage `json:"allowCredentials"`
			} `json:"publicKey"`
		}
		if err := json.Unmarshal(opts, &o); err != nil || o.PublicKey.UserVerification != "required" || len(o.PublicKey.Allow) != 0 {
			t.Fatalf("passwordless options %s (%v)", opts, err)
		}
		answer, err := key.Get(opts)
		if err != nil {
			t.Fatal(err)
		}
		r = b.post("/.authgate/login", "/.authgate/passkey/signin", url.Values{"passkey": {string(answer)}, "rd": {"/app/home"}})
		mustStatus(t, r, http.StatusSeeOther, "passwordless sign-in")
		if location(r) != "/app/home" {
			t.Fatalf("passwordless sign-in led to %q", location(r))
		}
		if got := b.get(twoFactorPath); got.status != http.StatusOK {
			t.Fatalf("two-factor route after a passwordless sign-in: %d", got.status)
		}
		// The same answer again, from another browser with its own
		// ceremony cookie, and from this one without one: refused.
		b2 := g.browserFrom(t, "10.4.0.3")
		beginCeremony(t, b2, "/.authgate/login", "/.authgate/passkey/passwordless/begin", nil)
		r = b2.post("/.authgate/login", "/.authgate/passkey/signin", url.Values{"passkey": {string(answer)}})
		mustStatus(t, r, http.StatusUnauthorized, "replayed passwordless answer with a new challenge")
		r = b.do("POST", "/.authgate/passkey/signin", url.Values{"passkey": {string(answer)}, "csrf_token": {b.anyToken()}}, nil)
		mustStatus(t, r, http.StatusUnauthorized, "replayed passwordless answer without a challenge")

		// Without user verification (presence only): refused.
		lazy := key.Clone()
		lazy.UserVerified = false
		b3 := g.browserFrom(t, "10.4.0.4")
		opts, _ = beginCeremony(t, b3, "/.authgate/login", "/.authgate/passkey/passwordless/begin", nil)
		answer, err = lazy.Get(opts)
		if err != nil {
			t.Fatal(err)
		}
		r = b3.post("/.authgate/login", "/.authgate/passkey/signin", url.Values{"passkey": {string(answer)}})
		mustStatus(t, r, http.StatusUnauthorized, "passwordless answer without user verification")
	})
}

// TestPasskeysUnavailable: on a plain-http origin other than localhost
// browsers refuse WebAuthn, so the pages say why instead of offering
// it, and the begin steps answer 404.
func TestPasskeysUnavailable(t *testing.T) {
	g := startGatewayWith(t, gwOpts{mode: "on"}, func(c *config.Config) { c.PublicURL = "http://panel.lan:8080" })
	g.addUser(t, "carol", attackPW)
	b := g.browser(t)
	mustStatus(t, loginAs(b, "carol", attackPW), http.StatusSeeOther, "password")
	page := b.get("/.authgate/account")
	if strings.Contains(page.body, "data-passkey-begin") || !strings.Contains(page.body, "Passkeys are unavailable on this gateway") || !strings.Contains(page.body, "https") {
		t.Fatalf("account page on an insecure origin: %.2000s", page.body)
	}
	if strings.Contains(page.header.Get("Content-Security-Policy"), "script-src") {
		t.Error("a page without passkeys allows scripts")
	}
	_, r := beginCeremony(t, b, "", "/.authgate/account/passkeys/begin", url.Values{"name": {"x"}})
	mustStatus(t, r, http.StatusNotFound, "registration begin without passkeys")
}

// TestPasskeyAtEnrolment: in mode required an account without a second
// factor may register a key at sign-in instead of an authenticator app;
// it then gets its first recovery codes, and the next sign-in asks for
// the key.
func TestPasskeyAtEnrolment(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := passkeyGateway(t, driver, "required", false)
		g.addUser(t, "dana", attackPW)
		key := passkeytest.New(g.URL)
		b := g.browserFrom(t, "10.5.0.1")
		r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"dana"}, "password": {attackPW}, "rd": {"/app/start"}})
		if location(r) != "/.authgate/enroll" {
			t.Fatalf("password led to %q", location(r))
		}
		if page := b.get("/.authgate/enroll"); !strings.Contains(page.body, "Register a passkey or security key") {
			t.Fatalf("enrolment page offers no key: %.500s", page.body)
		}
		opts, r := beginCeremony(t, b, "/.authgate/enroll", "/.authgate/passkey/enroll/begin", url.Values{"name": {"Work key"}})
		mustStatus(t, r, http.StatusOK, "enrolment begin")
		answer, err := key.Create(opts)
		if err != nil {
			t.Fatal(err)
		}
		r = b.post("/.authgate/enroll", "/.authgate/enroll", url.Values{"passkey": {string(answer)}})
		mustStatus(t, r, http.StatusSeeOther, "key at enrolment")
		if !strings.HasPrefix(location(r), "/.authgate/account/recovery/first?rd=") {
			t.Fatalf("key at enrolment led to %q", location(r))
		}
		codes := b.get(location(r))
		mustStatus(t, codes, http.StatusOK, "first recovery codes")
		if n := len(recoveryCodeRE.FindAllString(codes.body, -1)); n != 10 {
			t.Fatalf("%d recovery codes shown", n)
		}
		u := getUser(t, g, "dana")
		if len(u.Passkeys) != 1 || u.Passkeys[0].Name != "Work key" || u.HasTOTP() || len(u.RecoveryCodes) != 10 {
			t.Fatalf("after enrolment: %d keys, totp %v, %d codes", len(u.Passkeys), u.HasTOTP(), len(u.RecoveryCodes))
		}
		if !auditHas(t, g, "passkey_added", "dana", "at sign-in") {
			t.Error("no passkey_added audit event")
		}
		// The same answer again registers nothing: the session moved on.
		r = b.post("/.authgate/account", "/.authgate/enroll", url.Values{"passkey": {string(answer)}})
		if n := len(getUser(t, g, "dana").Passkeys); n != 1 {
			t.Fatalf("a replayed registration left %d keys (answer %d %q)", n, r.status, location(r))
		}
		b2 := g.browserFrom(t, "10.5.0.2")
		if r := loginAs(b2, "dana", attackPW); location(r) != "/.authgate/verify" {
			t.Fatalf("next sign-in led to %q", location(r))
		}
		mustStatus(t, submitKey(b2, "/.authgate/verify", keyAnswer(t, b2, key, "/.authgate/verify")), http.StatusSeeOther, "key")
	})
}
