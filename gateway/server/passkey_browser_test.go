package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/authgate/authgate/gateway/store"
)

// addVirtualAuthenticator gives u's browser a platform authenticator
// through the DevTools protocol: CTAP2, internal transport, resident
// keys (passkeys) and user verification that succeeds, presence
// simulated.
func (u *storyUser) addVirtualAuthenticator() cdpwebauthn.AuthenticatorID {
	u.t.Helper()
	return u.addVirtualAuthenticatorWith(false)
}

// addVirtualAuthenticatorWith is addVirtualAuthenticator; cmtg turns on
// the authenticator's CMTG key support, which Chromium requires of one
// given credentials through WebAuthn.addCredential (the protocol's
// Credential always carries generateCmtgKeyOnNextOperation).
func (u *storyUser) addVirtualAuthenticatorWith(cmtg bool) cdpwebauthn.AuthenticatorID {
	u.t.Helper()
	return storyRun(u, "virtual authenticator", func(ctx context.Context, t *chromedp.Target) (cdpwebauthn.AuthenticatorID, error) {
		if _, err := cdp.Call(ctx, t, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
			return "", err
		}
		res, err := cdp.Call(ctx, t, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
			Options: &cdpwebauthn.VirtualAuthenticatorOptions{
				Protocol:                    cdpwebauthn.AuthenticatorProtocolCtap2,
				Ctap2version:                cdpwebauthn.Ctap2versionCtap21,
				Transport:                   cdpwebauthn.AuthenticatorTransportInternal,
				HasResidentKey:              true,
				HasUserVerification:         true,
				IsUserVerified:              true,
				AutomaticPresenceSimulation: true,
				HasCmtgKey:                  cmtg,
			},
		})
		return res.AuthenticatorID, err
	})
}

// waitText polls the text of css until it contains want.
func (u *storyUser) waitText(step, css, want string) {
	u.t.Helper()
	deadline := time.Now().Add(storyStepTimeout)
	for {
		ctx, cancel := context.WithTimeout(u.tab, 5*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
		cancel()
		if err == nil && strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			u.fail(step, fmt.Errorf("%s shows %q, want %q", css, got, want))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDone polls until the browser is at path with ?done=done (an
// action's redirect), and reports the page's passkey status line when
// it does not get there.
func (u *storyUser) waitDone(step, path, done string) {
	u.t.Helper()
	deadline := time.Now().Add(storyStepTimeout)
	for {
		if p, err := url.Parse(u.location()); err == nil && p.Path == path && p.Query().Get("done") == done {
			return
		}
		if time.Now().After(deadline) {
			ctx, cancel := context.WithTimeout(u.tab, 5*time.Second)
			status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("[data-passkey-status],#form-error")).map(e => e.textContent).join(" | ")`))
			cancel()
			u.fail(step, fmt.Errorf("not at %s?done=%s; page says %q", path, done, status))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserPasskeys takes a user from TOTP-only to passkey sign-in in
// real Chromium with a virtual authenticator, on both stores: register
// a passkey on the account page, sign out, sign in with password + key,
// sign in with the passkey alone, confirm an admin step-up with it,
// rename it, remove it; the removed key (still on the authenticator) is then
// refused.
func TestBrowserPasskeys(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := passkeyGateway(t, driver, "on", true)
		g.addUser(t, "alice", attackPW)
		if _, err := g.srv.Store().UpdateUser(t.Context(), "alice", func(x *store.User) error { x.Role = store.RoleAdmin; return nil }); err != nil {
			t.Fatal(err)
		}
		u := newStoryUser(t, g, t.TempDir(), "alice", attackPW)
		u.secret = giveTOTP(t, g, "alice")
		u.addVirtualAuthenticator()

		// TOTP-only to begin with.
		if p := u.signIn("/"); p.Path != "/.authgate/verify" {
			u.fail("after the password", fmt.Errorf("at %s, want the code page", p))
		}
		if n := storyRun(u, "verify page", chromedp.Evaluate[int](`document.querySelectorAll("#passkey-use").length`)); n != 0 {
			u.fail("verify page", fmt.Errorf("a key is offered before any is registered"))
		}
		u.enterCode("code", "/.authgate/verify")
		u.waitPath("signed in with a code", "/")

		// Register a passkey.
		u.do("account page",
			chromedp.Navigate(g.URL+"/.authgate/account"),
			chromedp.WaitVisible(chromedp.CSS(`#passkey-add`)),
			chromedp.SendKeys(chromedp.CSS(`#passkey-name`), "Laptop"),
			chromedp.Click(chromedp.CSS(`#passkey-add`)),
		)
		u.waitDone("passkey registered", "/.authgate/account", "passkey-added")
		u.waitText("passkeys table", "#passkeys", "Laptop")
		u.shoot("passkey-account-" + driver + ".png")
		if keys := getUser(t, g, "alice").Passkeys; len(keys) != 1 || !keys[0].Discoverable {
			u.fail("stored key", fmt.Errorf("%+v", keys))
		}
		u.signOut()

		// Password, then the key.
		if p := u.signIn("/"); p.Path != "/.authgate/verify" {
			u.fail("after the password", fmt.Errorf("at %s", p))
		}
		u.do("use the key", chromedp.WaitVisible(chromedp.CSS(`#passkey-use`)), chromedp.Click(chromedp.CSS(`#passkey-use`)))
		u.waitPath("signed in with password + key", "/")
		u.signOut()

		// The passkey alone.
		u.do("passkey sign-in",
			chromedp.WaitVisible(chromedp.CSS(`#passkey-signin`)),
			chromedp.Click(chromedp.CSS(`#passkey-signin`)),
		)
		u.waitPath("signed in with the passkey alone", "/")
		if !strings.Contains(u.text("panel", "body"), "alice") {
			u.fail("panel", fmt.Errorf("not signed in as alice"))
		}

		// Admin step-up with the key.
		g.clock.Advance(11 * time.Minute)
		u.do("admin area", chromedp.Navigate(g.URL+"/.authgate/admin/users"))
		p := u.waitPath("step-up asked", "/.authgate/verify")
		if p.Query().Get("stepup") != "1" {
			u.fail("step-up", fmt.Errorf("at %s", p))
		}
		u.do("step-up with the key", chromedp.WaitVisible(chromedp.CSS(`#passkey-use`)), chromedp.Click(chromedp.CSS(`#passkey-use`)))
		u.waitPath("back in the admin area", "/.authgate/admin/users")
		u.waitText("admin users table", "body", "1 passkey")

		// Rename it (a form without script, behind "Rename").
		u.do("rename the key",
			chromedp.Navigate(g.URL+"/.authgate/account"),
			chromedp.WaitVisible(chromedp.CSS(`#passkeys details.rename summary`)),
			chromedp.Click(chromedp.CSS(`#passkeys details.rename summary`)),
			chromedp.WaitVisible(chromedp.CSS(`#passkeys details.rename input[name=name]`)),
			chromedp.SetValue(chromedp.CSS(`#passkeys details.rename input[name=name]`), "Work laptop"),
			chromedp.Click(chromedp.CSS(`#passkeys details.rename button`)),
		)
		u.waitDone("key renamed", "/.authgate/account", "passkey-renamed")
		u.waitText("passkeys table", "#passkeys", "Work laptop")
		if keys := getUser(t, g, "alice").Passkeys; len(keys) != 1 || keys[0].Name != "Work laptop" {
			u.fail("key renamed", fmt.Errorf("%+v", keys))
		}

		// Remove it.
		u.do("remove the key",
			chromedp.Navigate(g.URL+"/.authgate/account"),
			chromedp.WaitVisible(chromedp.CSS(`#passkeys button.danger`)),
			chromedp.Click(chromedp.CSS(`#passkeys button.danger`)),
		)
		u.waitDone("key removed", "/.authgate/account", "passkey-removed")
		if keys := getUser(t, g, "alice").Passkeys; len(keys) != 0 {
			u.fail("key removed", fmt.Errorf("%d keys left", len(keys)))
		}
		u.signOut()

		// The authenticator still holds the passkey, but the account no
		// longer has it: refused.
		u.do("removed passkey",
			chromedp.WaitVisible(chromedp.CSS(`#passkey-signin`)),
			chromedp.Click(chromedp.CSS(`#passkey-signin`)),
		)
		u.waitText("refusal", "#form-error", "The security key or passkey was not accepted.")
		u.shoot("passkey-refused-" + driver + ".png")

		// A user without any second factor, sent to set one up by a
		// two-factor route, registers a passkey instead of an app.
		g.addUser(t, "erin", attackPW)
		e := newStoryUser(t, g, t.TempDir(), "erin", attackPW)
		e.addVirtualAuthenticator()
		if p := e.signIn("/"); p.Path != "/.authgate/enroll" {
			e.fail("after the password", fmt.Errorf("at %s, want the set-up page", p))
		}
		e.do("register at set-up",
			chromedp.WaitVisible(chromedp.CSS(`#passkey-enroll`)),
			chromedp.SendKeys(chromedp.CSS(`#passkey-name`), "Erin's laptop"),
			chromedp.Click(chromedp.CSS(`#passkey-enroll`)),
		)
		e.readCodes("first recovery codes after the key")
		erin := getUser(t, g, "erin")
		if len(erin.Passkeys) != 1 || erin.Passkeys[0].Name != "Erin's laptop" {
			e.fail("stored key", fmt.Errorf("%+v", erin.Passkeys))
		}
		e.signOut()

		// A second authenticator, never registered, holding a passkey
		// that claims Erin's account (her user handle) with a key of its
		// own: refused.
		e.replaceAuthenticator(erin.PasskeyUserID)
		e.do("unregistered authenticator",
			chromedp.WaitVisible(chromedp.CSS(`#passkey-signin`)),
			chromedp.Click(chromedp.CSS(`#passkey-signin`)),
		)
		e.waitText("refusal", "#form-error", "The security key or passkey was not accepted.")
		if loc := e.location(); !strings.Contains(loc, "/.authgate/") {
			e.fail("unregistered authenticator", fmt.Errorf("got through to %s", loc))
		}
	})
}

// replaceAuthenticator removes u's virtual authenticators and adds a new
// one holding one discoverable credential for localhost under userHandle,
// with a fresh key pair the gateway has never seen.
func (u *storyUser) replaceAuthenticator(userHandle []byte) {
	u.t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		u.t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		u.t.Fatal(err)
	}
	credID := make([]byte, 32)
	_, _ = rand.Read(credID)
	storyRun(u, "remove the authenticator", func(ctx context.Context, t *chromedp.Target) (struct{}, error) {
		_, err := cdp.Call(ctx, t, cdpwebauthn.Disable, cdp.Empty{})
		return struct{}{}, err
	})
	id := u.addVirtualAuthenticatorWith(true) // enables the domain again: a clean slate
	storyRun(u, "add a credential", func(ctx context.Context, t *chromedp.Target) (struct{}, error) {
		_, err := cdp.Call(ctx, t, cdpwebauthn.AddCredential, cdpwebauthn.AddCredentialParams{
			AuthenticatorID: id,
			Credential: &cdpwebauthn.Credential{
				CredentialID: credID, IsResidentCredential: true, RpID: "localhost",
				PrivateKey: pkcs8, UserHandle: userHandle, SignCount: 1,
			},
		})
		return struct{}{}, err
	})
}
