package server_test

// Sessions that never passed a second factor: what a password-only
// session may still do after the account or the gateway starts asking
// for one, and the admin area in every 2FA mode.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/admin"
)

// submit posts form to path with a CSRF token b can get whatever its
// session (the form page itself may refuse b).
func (b *browser) submit(path string, form url.Values) resp {
	b.t.Helper()
	form.Set("csrf_token", b.anyToken())
	return b.do("POST", path, form, nil)
}

// setUpAuthenticator sets up a (new) authenticator from b's account page
// and returns its secret; b keeps its (rotated) session.
func setUpAuthenticator(t *testing.T, g *gateway, b *browser) string {
	t.Helper()
	page := b.get("/.authgate/account/2fa/setup")
	mustStatus(t, page, http.StatusOK, "set-up page")
	m := secretRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("no secret on the set-up page")
	}
	r := b.post("/.authgate/account/2fa/setup", "/.authgate/account/2fa/setup", url.Values{"code": {codeFor(t, m[1], g.clock.Now())}})
	if r.status != http.StatusOK && r.status != http.StatusSeeOther {
		t.Fatalf("set-up: %s %.300s", describe(r), r.body)
	}
	g.clock.Advance(30 * time.Second)
	return m[1]
}

// TestAttackPasswordSessionOutlivesEnrolment guards against a stolen
// password used before its owner turns on 2FA (mode on): the attacker's
// password-only session must end when alice sets up her authenticator.
// Today it lives on: it is only sent to the code on two-factor routes,
// still reaches password routes and the account pages, and can put the
// attacker's own authenticator in place of hers or remove hers.
func TestAttackPasswordSessionOutlivesEnrolment(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := attackGateway(t, driver, "on", nil)
		g.addUser(t, "alice", attackPW)
		attacker := signInPassword(t, g, "10.230.0.1", "alice")
		attackerID := sessionCookie(t, g, attacker)
		victim := signInPassword(t, g, "10.230.0.2", "alice")
		setUpAuthenticator(t, g, victim)
		stored := getUser(t, g, "alice").TOTPSecret
		if len(stored) == 0 {
			t.Fatal("alice's set-up stored no authenticator")
		}
		mustStatus(t, victim.get(twoFactorPath), http.StatusOK, "alice after her set-up")

		mustBeDead(t, g, attackerID, "the attacker's password-only session after alice set up 2FA")

		// No way to take over the factor from that session: set up its own
		// key, or remove hers with the (stolen) password.
		if page := attacker.get("/.authgate/account/2fa/setup"); page.status == http.StatusOK {
			if m := secretRE.FindStringSubmatch(page.body); m != nil {
				attacker.submit("/.authgate/account/2fa/setup", url.Values{"code": {codeFor(t, m[1], g.clock.Now())}})
			}
		}
		if !bytes.Equal(getUser(t, g, "alice").TOTPSecret, stored) {
			t.Error("the attacker's password-only session replaced alice's authenticator with its own")
		}
		attacker.submit("/.authgate/account/2fa/remove", url.Values{"confirm": {"1"}, "password": {attackPW}})
		if !getUser(t, g, "alice").HasTOTP() {
			t.Error("the attacker's password-only session removed alice's authenticator")
		}
	})
}

// TestAttackModeRaiseEndsPasswordSessions guards against a session that
// signed in with the password alone while 2FA was off surviving an
// admin's switch to "required": within the settings cache time it must
// be signed out (whether or not its user has an authenticator), not
// merely sent to the code on some routes.
func TestAttackModeRaiseEndsPasswordSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := attackGateway(t, driver, "off", nil)
		g.addUser(t, "alice", attackPW)
		g.addUser(t, "bob", attackPW)
		giveTOTP(t, g, "bob")
		ids := map[string]string{}
		for i, u := range []string{"alice", "bob"} {
			b := signInPassword(t, g, fmt.Sprintf("10.231.0.%d", i+1), u)
			mustStatus(t, b.get(twoFactorPath), http.StatusOK, u+" with 2FA off")
			ids[u] = sessionCookie(t, g, b)
		}
		setMode(t, g, "required")
		for u, id := range ids {
			if dead, still := deadWithin(t, g, id); !dead {
				t.Errorf("%s's password-only session (2FA off at sign-in) still gets %s 5 s after 2FA became required", u, still)
			}
		}
	})
}

// TestAttackRemoveNeedsCurrentFactor guards against removing 2FA from a
// session that never passed it: with mode off, alice (who has an
// authenticator) signs in with the password alone; the removal must ask
// for a code first (step-up) or refuse, even with the right password.
// After a step-up the same removal works (the control).
func TestAttackRemoveNeedsCurrentFactor(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := attackGateway(t, driver, "off", nil)
		g.addUser(t, "alice", attackPW)
		secret := giveTOTP(t, g, "alice")
		b := signInPassword(t, g, "10.232.0.1", "alice")
		r := b.post("/.authgate/account", "/.authgate/account/2fa/remove", url.Values{"confirm": {"1"}, "password": {attackPW}})
		if !getUser(t, g, "alice").HasTOTP() {
			t.Errorf("a password-only session removed alice's 2FA with the password (%s), want a step-up to a code first", describe(r))
		}
		if r.status == http.StatusSeeOther && strings.Contains(location(r), "done=removed") {
			t.Errorf("removal answered %s", describe(r))
		}

		// Control: after a code in this session, the removal works.
		if !getUser(t, g, "alice").HasTOTP() {
			return
		}
		g.clock.Advance(30 * time.Second)
		r = b.post("/.authgate/verify?stepup=1&rd=%2F.authgate%2Faccount", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, g.clock.Now())}, "rd": {"/.authgate/account"}})
		mustStatus(t, r, http.StatusSeeOther, "step-up")
		r = b.post("/.authgate/account", "/.authgate/account/2fa/remove", url.Values{"confirm": {"1"}, "password": {attackPW}})
		if getUser(t, g, "alice").HasTOTP() {
			t.Errorf("after a step-up the removal still failed: %s", describe(r))
		}
	})
}

// TestAttackChangesEndSessions guards against sessions outliving a change
// of what the account or the gateway requires: setting up an
// authenticator (at sign-in or on the account page) and reconfiguring it
// end the account's other sessions, password-only and 2FA ones alike;
// raising the 2FA mode ends sessions that have not passed a code (and
// only those); an admin disabling a user's 2FA ends the user's sessions.
func TestAttackChangesEndSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		t.Run("set-up on the account page", func(t *testing.T) {
			g := attackGateway(t, driver, "on", nil)
			g.addUser(t, "alice", attackPW)
			other := sessionCookie(t, g, signInPassword(t, g, "10.233.0.1", "alice"))
			a := signInPassword(t, g, "10.233.0.2", "alice")
			setUpAuthenticator(t, g, a)
			mustStatus(t, a.get(twoFactorPath), http.StatusOK, "the session that set up 2FA")
			mustBeDead(t, g, other, "a password-only session after another set up 2FA")
		})
		t.Run("set-up at sign-in", func(t *testing.T) {
			g := attackGateway(t, driver, "on", nil)
			g.addUser(t, "alice", attackPW)
			other := sessionCookie(t, g, signInPassword(t, g, "10.233.0.3", "alice"))
			a := signInPassword(t, g, "10.233.0.4", "alice")
			r := a.get(twoFactorPath)
			if !toEnrol(r) {
				t.Fatalf("a password-only session on a two-factor route: %s, want the enrolment", describe(r))
			}
			secretEnrol(t, g, a)
			mustStatus(t, a.get(twoFactorPath), http.StatusOK, "the session that enrolled")
			mustBeDead(t, g, other, "a password-only session after another enrolled at sign-in")
		})
		t.Run("reconfiguring", func(t *testing.T) {
			g := attackGateway(t, driver, "on", nil)
			g.addUser(t, "alice", attackPW)
			secret := giveTOTP(t, g, "alice")
			other := sessionCookie(t, g, signInCode(t, g, "10.233.0.5", "alice", secret))
			a := signInCode(t, g, "10.233.0.6", "alice", secret)
			setUpAuthenticator(t, g, a)
			mustStatus(t, a.get(twoFactorPath), http.StatusOK, "the session that reconfigured 2FA")
			mustBeDead(t, g, other, "a 2FA session after another reconfigured the authenticator")
		})
		t.Run("raising the mode", func(t *testing.T) {
			g := attackGateway(t, driver, "on", nil)
			g.addUser(t, "alice", attackPW)
			g.addUser(t, "bob", attackPW)
			secret := giveTOTP(t, g, "alice")
			withCode := signInCode(t, g, "10.233.0.7", "alice", secret)
			without := sessionCookie(t, g, signInPassword(t, g, "10.233.0.8", "bob"))
			setMode(t, g, "required")
			if dead, still := deadWithin(t, g, without); !dead {
				t.Errorf("bob's password-only session still gets %s after 2FA became required", still)
			}
			mustStatus(t, withCode.get(twoFactorPath), http.StatusOK, "alice's 2FA session after 2FA became required")
		})
		t.Run("admin disables 2FA", func(t *testing.T) {
			g := attackGateway(t, driver, "on", nil)
			g.addUser(t, "alice", attackPW)
			secret := giveTOTP(t, g, "alice")
			full := sessionCookie(t, g, signInCode(t, g, "10.233.0.9", "alice", secret))
			half := g.browserFrom(t, "10.233.0.10")
			if r := loginAs(half, "alice", attackPW); location(r) != "/.authgate/verify" {
				t.Fatalf("alice's password: %s", describe(r))
			}
			pending := sessionCookie(t, g, half)
			if _, err := userAdmin(g).DisableTwoFactor(context.Background(), []string{"alice"}); err != nil {
				t.Fatal(err)
			}
			mustBeDead(t, g, full, "alice's 2FA session after an admin disabled her 2FA")
			mustBeDead(t, g, pending, "alice's half-finished sign-in after an admin disabled her 2FA")
		})
	})
}

// --- the admin area in every mode and after every change of mode ---

// reach is what a live session of an admin without an authenticator may
// still do.
type reach int

const (
	// reachAll: everything, the admin area and its actions included
	// (mode off).
	reachAll reach = iota + 1
	// reachEnrol: password routes and the set-up page; two-factor routes
	// and the admin area send it to set up an authenticator first, and
	// no admin action takes effect (mode on, no authenticator).
	reachEnrol
	// reachNothing: a half-finished sign-in (enrolment owed, mode
	// required) reaches no route, account page or admin page.
	reachNothing
	// reachDead: the session was ended: everything sends it to sign in.
	reachDead
)

var reachNames = map[reach]string{reachAll: "everything", reachEnrol: "password routes and enrolment only", reachNothing: "nothing (enrolment owed)", reachDead: "nothing (signed out)"}

// modeCase signs in an admin without an authenticator in mode from,
// switches to mode to (if set) and checks what the session reaches.
type modeCase struct {
	from, to string
	want     reach
}

func (c modeCase) name() string {
	if c.to == "" {
		return c.from
	}
	return c.from + "->" + c.to
}

// TestAttackAdminWithoutAuthenticator guards against the admin area (and
// its actions: turning 2FA off, disabling others' 2FA, resetting their
// passwords) being used by an admin who signed in with the password
// alone while 2FA is on or required: such an admin must set up an
// authenticator first. With 2FA off the password is enough. Today the
// step-up check lets anyone without an authenticator through.
func TestAttackAdminWithoutAuthenticator(t *testing.T) {
	runModeCases(t, []modeCase{
		{from: "off", want: reachAll},
		{from: "on", want: reachEnrol},
		{from: "required", want: reachNothing},
	})
}

// TestAttackModeTransitions guards against a live password-only session
// (or half-finished one) keeping what it reached under the previous mode
// after an admin changes the 2FA mode: raising it ends sessions that
// have not passed a code; lowering it grants nothing to a half-finished
// sign-in and keeps what a password session may do under the new mode.
func TestAttackModeTransitions(t *testing.T) {
	runModeCases(t, []modeCase{
		{from: "off", to: "on", want: reachDead},
		{from: "off", to: "required", want: reachDead},
		{from: "on", to: "required", want: reachDead},
		{from: "required", to: "on", want: reachNothing},
		{from: "on", to: "off", want: reachAll},
		{from: "required", to: "off", want: reachNothing},
	})
}

func runModeCases(t *testing.T, cases []modeCase) {
	eachStore(t, func(t *testing.T, driver string) {
		for _, c := range cases {
			t.Run(c.name(), func(t *testing.T) { runModeCase(t, driver, c) })
		}
	})
}

func runModeCase(t *testing.T, driver string, c modeCase) {
	ctx := context.Background()
	g := attackGateway(t, driver, c.from, nil)
	g.addAdmin(t, "root", attackPW)
	g.addUser(t, "bob", attackPW)
	giveTOTP(t, g, "bob")
	b := g.browserFrom(t, "10.240.0.1")
	r := loginAs(b, "root", attackPW)
	mustStatus(t, r, http.StatusSeeOther, "root's password")
	if enrol := strings.HasPrefix(location(r), "/.authgate/enroll"); enrol != (c.from == "required") {
		t.Fatalf("root's password in mode %s led to %q", c.from, location(r))
	}
	id := sessionCookie(t, g, b)
	if c.to != "" {
		setMode(t, g, c.to)
	}
	bobBefore := getUser(t, g, "bob")
	setBefore, err := userAdmin(g).Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := reachNames[c.want]
	if c.want == reachDead {
		if dead, still := deadWithin(t, g, id); !dead {
			t.Errorf("the session still gets %s, want %s", still, want)
		}
	}

	// The four kinds of page.
	probe := func(what, path string, ok func(resp) bool, wantDesc string) {
		t.Helper()
		if r := cookieBrowser(t, g, id).get(path); !ok(r) {
			t.Errorf("%s (%s): %s, want %s (the session should reach %s)", what, path, describe(r), wantDesc, want)
		}
	}
	is200 := func(r resp) bool { return r.status == http.StatusOK }
	refused := func(r resp) bool {
		return r.status != http.StatusOK && (r.status == http.StatusUnauthorized || strings.HasPrefix(location(r), "/.authgate/"))
	}
	adminPage := admin.SettingsPath
	switch c.want {
	case reachAll:
		probe("two-factor route", twoFactorPath, is200, "200")
		probe("password route", passwordPath, is200, "200")
		probe("admin area", adminPage, is200, "200")
		probe("set-up page", "/.authgate/account/2fa/setup", is200, "200")
	case reachEnrol:
		probe("two-factor route", twoFactorPath, toEnrol, "the enrolment")
		probe("password route", passwordPath, is200, "200")
		probe("admin area", adminPage, toEnrol, "the enrolment")
		probe("set-up page", "/.authgate/account/2fa/setup", is200, "200")
	case reachNothing:
		for _, p := range []string{twoFactorPath, passwordPath, adminPage, "/.authgate/account/2fa/setup"} {
			probe("page", p, refused, "a refusal")
		}
	case reachDead:
		for _, p := range []string{twoFactorPath, passwordPath, adminPage, "/.authgate/account/2fa/setup"} {
			probe("page", p, toLogin, "a new sign-in")
		}
	}

	// The admin actions: turn 2FA off (and rename the Issuer, which
	// shows whether the form was taken), disable bob's 2FA, reset bob's
	// password.
	a := cookieBrowser(t, g, id)
	answers := map[string]resp{
		"settings": a.submit(admin.SettingsPath, url.Values{"mode": {"off"}, "issuer": {"Taken Over"}}),
		"disable":  a.submit(admin.DisablePath, url.Values{"user": {"bob"}, "confirm": {"1"}}),
		"reset":    a.submit(admin.ResetPath, url.Values{"user": {"bob"}, "confirm": {"1"}}),
	}
	bob := getUser(t, g, "bob")
	set, err := userAdmin(g).Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	took := map[string]bool{
		"settings": set.Issuer != setBefore.Issuer || set.Mode != setBefore.Mode,
		"disable":  !bob.HasTOTP(),
		"reset":    bob.PasswordHash != bobBefore.PasswordHash,
	}
	for _, act := range []string{"settings", "disable", "reset"} {
		r := answers[act]
		switch {
		case c.want == reachAll && !took[act]:
			t.Errorf("admin action %s did not take effect with 2FA off (%s): the harness or the admin area is broken", act, describe(r))
		case c.want != reachAll && took[act]:
			t.Errorf("admin action %s took effect from a session that should reach %s (answer %s)", act, want, describe(r))
		case c.want != reachAll && r.status == http.StatusOK:
			t.Errorf("admin action %s answered 200 from a session that should reach %s", act, want)
		case c.want == reachEnrol && !toEnrol(r) && r.status != http.StatusForbidden && r.status != http.StatusUnauthorized:
			t.Errorf("admin action %s: %s, want the enrolment (or a refusal)", act, describe(r))
		}
	}
}
