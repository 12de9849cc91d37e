package server_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/passkey/passkeytest"
)

// A key is renamed on the account page: the new name is stored, shown
// and audited, the key still signs in, and the account's other sessions
// stay signed in (a name is only a label). Names that are empty, too
// long or hold control characters, and ids that are not the account's
// keys, change nothing.
func TestPasskeyRename(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := passkeyGateway(t, driver, "on", false)
		g.addUser(t, "alice", attackPW)
		g.addUser(t, "bob", attackPW)
		secret := giveTOTP(t, g, "alice")
		key := passkeytest.New(g.URL)
		b := signInCode(t, g, "10.12.0.1", "alice", secret)
		mustStatus(t, registerKey(t, b, key, "Laptop"), http.StatusSeeOther, "add key")
		other := signInCode(t, g, "10.12.0.2", "alice", secret) // after the add, which signs others out
		id := base64URL(getUser(t, g, "alice").Passkeys[0].ID)

		acct := b.get("/.authgate/account")
		if !strings.Contains(acct.body, `action="/.authgate/account/passkeys/rename"`) || !strings.Contains(acct.body, `value="`+id+`"`) {
			t.Fatalf("account page offers no rename of the key: %.2000s", acct.body)
		}
		rename := func(id, name string) resp {
			return b.post("/.authgate/account", "/.authgate/account/passkeys/rename", url.Values{"id": {id}, "name": {name}})
		}
		r := rename(id, "  Work laptop <3  ")
		mustStatus(t, r, http.StatusSeeOther, "rename")
		if location(r) != "/.authgate/account?done=passkey-renamed" {
			t.Fatalf("rename led to %q", location(r))
		}
		if k := getUser(t, g, "alice").Passkeys[0]; k.Name != "Work laptop <3" {
			t.Fatalf("stored name %q", k.Name)
		}
		page := b.get(location(r))
		if !strings.Contains(page.body, "The key was renamed.") || !strings.Contains(page.body, html.EscapeString("Work laptop <3")) {
			t.Fatalf("account page after the rename: %.2000s", page.body)
		}
		if !auditHas(t, g, "passkey_renamed", "alice", "Laptop\u201d to \u201cWork laptop <3") {
			t.Error("no passkey_renamed audit event naming both names")
		}
		if got := other.get(twoFactorPath); got.status != http.StatusOK {
			t.Fatalf("another session after the rename: %d %s", got.status, location(got))
		}

		for _, tc := range []struct{ what, id, name string }{
			{"empty name", id, "   "},
			{"name of 65 characters", id, strings.Repeat("k", 65)},
			{"control character", id, "Lap\x07top"},
		} {
			r := rename(tc.id, tc.name)
			mustStatus(t, r, http.StatusBadRequest, tc.what)
			if !strings.Contains(r.body, "Give the key a name of at most 64 characters.") {
				t.Fatalf("%s: page %.600s", tc.what, r.body)
			}
		}
		bobKey := passkeytest.New(g.URL)
		mustStatus(t, registerKey(t, signInPassword(t, g, "10.12.0.3", "bob"), bobKey, "Bob's key"), http.StatusOK, "bob's first key")
		for _, tc := range []struct{ what, id string }{
			{"bob's key", base64URL(getUser(t, g, "bob").Passkeys[0].ID)},
			{"no such key", base64URL([]byte("nothing of that name"))},
			{"not base64", "%%%"},
		} {
			mustStatus(t, rename(tc.id, "Mine now"), http.StatusNotFound, tc.what)
		}
		if got := getUser(t, g, "bob").Passkeys[0].Name; got != "Bob's key" {
			t.Fatalf("bob's key renamed to %q", got)
		}
		if got := getUser(t, g, "alice").Passkeys[0].Name; got != "Work laptop <3" {
			t.Fatalf("refused renames changed the name to %q", got)
		}

		// The renamed key still signs in.
		b2 := g.browserFrom(t, "10.12.0.4")
		mustStatus(t, loginAs(b2, "alice", attackPW), http.StatusSeeOther, "password")
		mustStatus(t, submitKey(b2, "/.authgate/verify", keyAnswer(t, b2, key, "/.authgate/verify")), http.StatusSeeOther, "the renamed key")
		if got := b2.get(twoFactorPath); got.status != http.StatusOK {
			t.Fatalf("two-factor route after the renamed key: %d %s", got.status, location(got))
		}
	})
}

// Renames arriving together, and renames racing the key's removal in the
// same burst: every answer is a redirect or a refusal (never a server
// error), the name is one of those sent, the removal goes through, and a
// removed key stays removed (a rename never writes it back).
func TestPasskeyRenameBurst(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := passkeyGateway(t, driver, "on", false)
		g.addUser(t, "alice", attackPW)
		secret := giveTOTP(t, g, "alice")
		key := passkeytest.New(g.URL)
		b := signInCode(t, g, "10.13.0.1", "alice", secret)
		mustStatus(t, registerKey(t, b, key, "Laptop"), http.StatusSeeOther, "add key")
		id := base64URL(getUser(t, g, "alice").Passkeys[0].ID)
		tok := b.token("/.authgate/account")

		rename := func(name string) []byte {
			return b.raw("POST", "/.authgate/account/passkeys/rename", url.Values{"id": {id}, "name": {name}, "csrf_token": {tok}}, nil)
		}
		sent := map[string]bool{}
		var reqs [][]byte
		for i := range passkeyBurst {
			name := fmt.Sprintf("Laptop %d", i)
			sent[name] = true
			reqs = append(reqs, rename(name))
		}
		for i, r := range burst(t, g, reqs, nil) {
			if r.Err != nil || r.Status >= 500 {
				t.Fatalf("rename %d of %d at once: %d %v", i, passkeyBurst, r.Status, r.Err)
			}
		}
		keys := getUser(t, g, "alice").Passkeys
		if len(keys) != 1 || !sent[keys[0].Name] {
			t.Fatalf("after %d renames at once: %+v, want the one key with one of the names sent", passkeyBurst, keys)
		}

		reqs = [][]byte{b.raw("POST", "/.authgate/account/passkeys/remove", url.Values{"id": {id}, "csrf_token": {tok}}, nil)}
		for i := range passkeyBurst {
			reqs = append(reqs, rename(fmt.Sprintf("Back %d", i)))
		}
		for i, r := range burst(t, g, reqs, nil) {
			if r.Err != nil || r.Status >= 500 {
				t.Fatalf("request %d of the removal burst: %d %v", i, r.Status, r.Err)
			}
			// Renames change neither the account's epoch nor the
			// session: the removal goes through.
			if i == 0 && (r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/.authgate/account?done=passkey-removed") {
				t.Fatalf("the removal among %d renames: %d %q", passkeyBurst, r.Status, r.Header.Get("Location"))
			}
		}
		if keys := getUser(t, g, "alice").Passkeys; len(keys) != 0 {
			t.Fatalf("the key was removed, yet a rename racing the removal left %+v", keys)
		}
	})
}
