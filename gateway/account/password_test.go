package account_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
)

func passwordForm(current, next, repeat string) url.Values {
	return url.Values{"current_password": {current}, "new_password": {next}, "new_password_repeat": {repeat}}
}

func TestPasswordChangeRefusals(t *testing.T) {
	tests := []struct {
		name   string
		form   url.Values
		status int
		msg    string
	}{
		{"wrong current", passwordForm("not my password", "a new password", "a new password"), http.StatusForbidden, "The current password is incorrect."},
		{"empty current", passwordForm("", "a new password", "a new password"), http.StatusForbidden, "The current password is incorrect."},
		{"too short", passwordForm(goodPassword, "short12", "short12"), http.StatusUnprocessableEntity, "at least 8 characters"},
		{"mismatch", passwordForm(goodPassword, "a new password", "a new passwort"), http.StatusUnprocessableEntity, "The new passwords do not match."},
		{"same as current", passwordForm(goodPassword, goodPassword, goodPassword), http.StatusUnprocessableEntity, "must differ from the current one"},
		{"too long", passwordForm(goodPassword, strings.Repeat("x", 1025), strings.Repeat("x", 1025)), http.StatusUnprocessableEntity, "too long"},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("jane", store.RoleUser)
		e.signIn("jane", "", "")
		b := e.signIn("jane", "", "")
		before := e.user("jane").PasswordHash
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := b.post("/.authgate/account/password", tt.form)
				wantStatus(t, r, tt.status)
				wantBody(t, r, tt.msg, `action="/.authgate/account/password"`)
				// The typed passwords are never echoed back.
				wantNotBody(t, r, "a new password", goodPassword)
				if e.user("jane").PasswordHash != before || len(e.sessions("jane")) != 2 {
					t.Fatal("a refused change changed the account")
				}
			})
			// Keep below the guessing limit.
			if err := e.st.ResetCounter(e.ctx(), "account_proof_fail:jane"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestPasswordChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("kim", store.RoleUser)
		e.addUser("lee", store.RoleUser)
		other := e.signIn("kim", "", "")
		bystander := e.signIn("lee", "", "")
		b := e.signIn("kim", "", "")
		oldID := b.cookieID()

		r := b.get("/.authgate/account/password")
		wantStatus(t, r, http.StatusOK)
		wantBody(t, r, "Change the password of <strong>kim</strong>", `name="current_password"`, `autocomplete="new-password"`, `minlength="8"`)
		wantNotBody(t, r, "administrator reset")

		r = b.post("/.authgate/account/password", passwordForm(goodPassword, "brand new secret", "brand new secret"))
		wantStatus(t, r, http.StatusSeeOther)
		if r.location() != "/.authgate/account?done=password" {
			t.Fatalf("redirect to %q", r.location())
		}
		u := e.user("kim")
		if ok, _ := e.pw.Verify(u.PasswordHash, "brand new secret"); !ok {
			t.Fatal("new password does not verify")
		}
		if ok, _ := e.pw.Verify(u.PasswordHash, goodPassword); ok {
			t.Fatal("old password still verifies")
		}
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
			t.Fatalf("hash %q is not argon2id", u.PasswordHash)
		}
		// This session stays (under a new id); the other one is gone; other
		// users are untouched.
		if b.cookieID() == oldID {
			t.Fatal("session id not rotated")
		}
		wantStatus(t, b.get("/.authgate/account"), http.StatusOK)
		if _, err := e.mgr.Get(e.ctx(), other.cookieID()); !errors.Is(err, session.ErrNoSession) {
			t.Fatal("other session survived the password change")
		}
		if r := other.get("/.authgate/account"); r.status != http.StatusFound {
			t.Fatalf("other browser still signed in: %d", r.status)
		}
		if len(e.sessions("kim")) != 1 || bystander.get("/.authgate/account").status != http.StatusOK {
			t.Fatal("sessions after change")
		}
		if !e.hasAudit(audit.PasswordChanged, "kim") {
			t.Errorf("audit: %+v", e.audit())
		}
	})
}

// After an admin reset, the user must change the password first; then
// continues where they were going (a local path only).
func TestForcedPasswordChange(t *testing.T) {
	tests := []struct {
		name string
		rd   string
		want string
	}{
		{"local path", "/.authgate/account/2fa/setup", "/.authgate/account/2fa/setup"},
		{"app path with query", "/panel/?tab=2", "/panel/?tab=2"},
		{"scheme-relative", "//evil.example/x", "/.authgate/account?done=password"},
		{"absolute", "https://evil.example/", "/.authgate/account?done=password"},
		{"backslash", "/\\evil.example", "/.authgate/account?done=password"},
		{"none", "", "/.authgate/account?done=password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, backends()[0])
			e.addUser("mia", store.RoleUser)
			if _, err := e.st.UpdateUser(e.ctx(), "mia", func(u *store.User) error { u.MustChangePassword = true; return nil }); err != nil {
				t.Fatal(err)
			}
			b := e.signIn("mia", "", "")
			// Every other account page leads to the password page first.
			r := b.get("/.authgate/account")
			if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/.authgate/account/password?rd=") {
				t.Fatalf("overview with a reset password: %d %q", r.status, r.location())
			}
			r = b.get("/.authgate/account/password?rd=" + url.QueryEscape(tt.rd))
			wantStatus(t, r, http.StatusOK)
			wantBody(t, r, "An administrator reset the password", "Temporary password")
			form := passwordForm(goodPassword, "my own password", "my own password")
			form.Set("rd", tt.rd)
			r = b.post("/.authgate/account/password", form)
			wantStatus(t, r, http.StatusSeeOther)
			if r.location() != tt.want {
				t.Fatalf("redirect to %q, want %q", r.location(), tt.want)
			}
			if e.user("mia").MustChangePassword {
				t.Fatal("MustChangePassword not cleared")
			}
			wantStatus(t, b.get("/.authgate/account"), http.StatusOK)
		})
	}
}
