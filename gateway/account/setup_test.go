package account_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
)

func TestFirstSetUp(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("alice", store.RoleUser)
		other := e.signIn("alice", "", "other device")
		b := e.signIn("alice", "", "")
		oldID := b.cookieID()

		r := b.get("/.authgate/account/2fa/setup")
		wantStatus(t, r, http.StatusOK)
		wantBody(t, r, "<h1 id=\"page-title\">Set up two-factor authentication</h1>", `src="data:image/png;base64,`,
			`href="otpauth://totp/`, "<dd>"+issuer+"</dd>", "Turn on two-factor authentication",
			`action="/.authgate/account/2fa/setup"`, `aria-current="page">My account</a>`)
		wantNotBody(t, r, "keeps working")
		raw := pageKey(t, r)
		// Reloading shows the same pending secret (the user may have
		// scanned it already).
		if again := pageKey(t, b.get("/.authgate/account/2fa/setup")); !bytes.Equal(again, raw) {
			t.Fatal("reloading the set-up page changed the secret")
		}
		// The overview mentions the unfinished set-up.
		wantBody(t, b.get("/.authgate/account"), "Continue the set-up")

		// A wrong code: nothing changes, the secret stays pending.
		r = b.post("/.authgate/account/2fa/setup", url.Values{"code": {"000000"}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		wantBody(t, r, `role="alert">The security code is invalid.</div>`, `aria-invalid="true"`)
		if e.user("alice").HasTOTP() {
			t.Fatal("a wrong code turned on 2FA")
		}
		if !bytes.Equal(pageKey(t, r), raw) {
			t.Fatal("a wrong code changed the pending secret")
		}

		// The right code turns 2FA on and shows 10 recovery codes once.
		code := e.code(raw)
		r = b.post("/.authgate/account/2fa/setup", url.Values{"code": {code}})
		wantStatus(t, r, http.StatusOK)
		wantBody(t, r, `role="status">Two-factor authentication is on.</div>`, "shown only this once",
			`href="/.authgate/account/recovery/codes.txt"`)
		codes := pageCodes(t, r)
		if len(codes) != factor.RecoveryCount {
			t.Fatalf("%d codes shown, want %d", len(codes), factor.RecoveryCount)
		}
		u := e.user("alice")
		if !u.HasTOTP() || u.TOTPEnrolledAt.IsZero() || len(u.RecoveryCodes) != factor.RecoveryCount || u.RecoveryCodesAt.IsZero() {
			t.Fatalf("user after set-up: %+v", u)
		}
		for i, c := range codes {
			if got := e.rec.Match("alice", u.RecoveryCodes, c); got != i {
				t.Errorf("shown code %d matches stored hash %d", i, got)
			}
		}
		// The stored secret is the one shown, and the confirming code's
		// step is used up.
		secret, err := e.box.Open(u.TOTPSecret, []byte("alice"))
		if err != nil || !bytes.Equal(secret, raw) {
			t.Fatalf("stored secret differs from the one shown (%v)", err)
		}
		if _, err := e.totp.Check(e.ctx(), "alice", u.TOTPSecret, 0, code); !errors.Is(err, factor.ErrReplayed) {
			t.Fatalf("confirming code reusable: %v", err)
		}
		// The session was rotated: the old id is dead, the new one is
		// marked as having passed 2FA, with no pending secret left.
		if b.cookieID() == oldID {
			t.Fatal("session id not rotated")
		}
		if _, err := e.mgr.Get(e.ctx(), oldID); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("old session id still valid: %v", err)
		}
		s, err := e.mgr.Get(e.ctx(), b.cookieID())
		if err != nil || !s.TwoFactor || s.TwoFactorAt.IsZero() || len(s.PendingTOTPSecret) != 0 || len(s.RecoveryCodesSealed) == 0 {
			t.Fatalf("session after set-up: %+v, %v", s, err)
		}
		// Nothing secret is held in clear in the session.
		for _, c := range codes {
			if bytes.Contains(s.RecoveryCodesSealed, []byte(c)) {
				t.Fatal("recovery code in clear in the session")
			}
		}
		if !e.hasAudit(audit.TOTPEnrolled, "alice") || !e.hasAudit(audit.RecoveryGenerated, "alice") {
			t.Errorf("audit lacks the set-up: %+v", e.audit())
		}
		// Set-up ends the account's other sessions: a session that never
		// passed this authenticator's code must not go on (it could
		// replace or remove it).
		if len(e.sessions("alice")) != 1 {
			t.Errorf("sessions after set-up: %d, want 1", len(e.sessions("alice")))
		}

		// The download works right after, in this session only.
		r = b.get("/.authgate/account/recovery/codes.txt")
		wantStatus(t, r, http.StatusOK)
		if ct, cd := r.header.Get("Content-Type"), r.header.Get("Content-Disposition"); ct != "text/plain; charset=utf-8" || cd != `attachment; filename="authgate-recovery-codes.txt"` {
			t.Fatalf("download headers: %q, %q", ct, cd)
		}
		for _, c := range codes {
			if !strings.Contains(r.body, c+"\r\n") {
				t.Errorf("download lacks %s", c)
			}
		}
		if r := other.get("/.authgate/account/recovery/codes.txt"); r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), "/.authgate/login") {
			t.Fatalf("the other session after set-up: %d to %q, want the login page", r.status, r.header.Get("Location"))
		}
		wantBody(t, b.get("/.authgate/account"), `<span class="badge on">Enabled</span>`, `<span class="badge on">10 left</span>`,
			"Download the codes you just generated")

		// After ten minutes the codes are gone for good.
		e.clock.Advance(10*time.Minute + time.Second)
		r = b.get("/.authgate/account/recovery/codes.txt")
		wantStatus(t, r, http.StatusNotFound)
		wantBody(t, r, "can no longer be downloaded")
		wantNotBody(t, r, codes[0])
		wantNotBody(t, b.get("/.authgate/account"), "Download the codes you just generated")
		s, err = e.mgr.Get(e.ctx(), b.cookieID())
		if err != nil || len(s.RecoveryCodesSealed) != 0 {
			t.Fatalf("expired codes still held: %v", err)
		}
	})
}

func TestReconfigure(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("bob", store.RoleUser)
		oldRaw, _ := e.enrol("bob", 7)
		before := e.user("bob")
		b := e.signIn("bob", "", "")

		r := b.get("/.authgate/account/2fa/setup")
		wantStatus(t, r, http.StatusOK)
		wantBody(t, r, "Reconfigure two-factor authentication", "Your current authenticator keeps working until you confirm the new one",
			"Switch to the new authenticator")
		newRaw := pageKey(t, r)
		if bytes.Equal(newRaw, oldRaw) {
			t.Fatal("reconfigure shows the old secret")
		}

		// Until confirmed, the old secret is the one in force.
		if _, err := e.totp.Check(e.ctx(), "bob", e.user("bob").TOTPSecret, 0, e.code(oldRaw)); err != nil {
			t.Fatalf("old secret stopped working before confirmation: %v", err)
		}
		e.tick()
		// A code of the OLD secret does not confirm the new one.
		r = b.post("/.authgate/account/2fa/setup", url.Values{"code": {e.code(oldRaw)}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		e.tick()
		if u := e.user("bob"); !bytes.Equal(u.TOTPSecret, before.TOTPSecret) {
			t.Fatal("a refused code replaced the secret")
		}
		if _, err := e.totp.Check(e.ctx(), "bob", e.user("bob").TOTPSecret, 0, e.code(oldRaw)); err != nil {
			t.Fatalf("old secret stopped working after a refused code: %v", err)
		}
		e.tick()

		// The new secret's code switches over.
		r = b.post("/.authgate/account/2fa/setup", url.Values{"code": {e.code(newRaw)}})
		wantStatus(t, r, http.StatusSeeOther)
		if r.location() != "/.authgate/account?done=reconfigured" {
			t.Fatalf("redirect to %q", r.location())
		}
		e.tick()
		u := e.user("bob")
		if bytes.Equal(u.TOTPSecret, before.TOTPSecret) {
			t.Fatal("secret not replaced")
		}
		if _, err := e.totp.Check(e.ctx(), "bob", u.TOTPSecret, 0, e.code(oldRaw)); !errors.Is(err, factor.ErrInvalid) {
			t.Fatalf("old secret still works after reconfiguring: %v", err)
		}
		// Recovery codes are kept as they were.
		if len(u.RecoveryCodes) != 7 || !u.RecoveryCodesAt.Equal(before.RecoveryCodesAt) {
			t.Fatalf("recovery codes changed by reconfiguring: %d", len(u.RecoveryCodes))
		}
		if !e.hasAudit(audit.TOTPReconfigured, "bob") || e.hasAudit(audit.TOTPEnrolled, "bob") {
			t.Errorf("audit: %+v", e.audit())
		}
		wantBody(t, b.get(r.location()), "Your new authenticator is set up; the old one no longer works.")
		// Nothing pending any more: a POST without a pending secret only
		// leads back to the set-up page.
		r = b.post("/.authgate/account/2fa/setup", url.Values{"code": {"123456"}})
		if r.status != http.StatusSeeOther || r.location() != "/.authgate/account/2fa/setup" {
			t.Fatalf("confirm without pending secret: %d %q", r.status, r.location())
		}
	})
}
