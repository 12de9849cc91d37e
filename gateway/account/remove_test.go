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

func TestRemoveTwoFactor(t *testing.T) {
	tests := []struct {
		name string
		// form returns the confirmation's fields given the user's raw secret.
		form   func(e *env, raw []byte) url.Values
		mode   string
		status int
		msg    string
		// removed: 2FA is gone afterwards.
		removed bool
	}{
		{name: "right password", form: func(*env, []byte) url.Values { return url.Values{"password": {goodPassword}} }, mode: "on", status: http.StatusSeeOther, removed: true},
		{name: "right code", form: func(e *env, raw []byte) url.Values { return url.Values{"code": {e.code(raw)}} }, mode: "on", status: http.StatusSeeOther, removed: true},
		{name: "right code mode off", form: func(e *env, raw []byte) url.Values { return url.Values{"code": {e.code(raw)}} }, mode: "off", status: http.StatusSeeOther, removed: true},
		{name: "wrong password", form: func(*env, []byte) url.Values { return url.Values{"password": {"wrong password"}} }, mode: "on", status: http.StatusForbidden, msg: "The password or code is incorrect."},
		{name: "wrong code", form: func(*env, []byte) url.Values { return url.Values{"code": {"000000"}} }, mode: "on", status: http.StatusForbidden, msg: "The password or code is incorrect."},
		{name: "wrong password right code", form: func(e *env, raw []byte) url.Values {
			return url.Values{"password": {"wrong password"}, "code": {e.code(raw)}}
		}, mode: "on", status: http.StatusForbidden, msg: "The password or code is incorrect."},
		{name: "neither", form: func(*env, []byte) url.Values { return url.Values{} }, mode: "on", status: http.StatusForbidden, msg: "The password or code is incorrect."},
		{name: "required", form: func(*env, []byte) url.Values { return url.Values{"password": {goodPassword}} }, mode: "required", status: http.StatusConflict, msg: "required for every account on this gateway, so it cannot be removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, e *env) {
				e.addUser("frank", store.RoleUser)
				e.addUser("grace", store.RoleUser)
				raw, codes := e.enrol("frank", 4)
				e.setMode(tt.mode)
				bystander := e.signIn("grace", "", "")
				other := e.signIn("frank", "", "")
				b := e.signIn("frank", "", "")
				oldID := b.cookieID()

				// The first POST asks for confirmation (unless refused).
				r := b.post("/.authgate/account/2fa/remove", nil)
				if tt.mode == "required" {
					wantStatus(t, r, http.StatusConflict)
					wantBody(t, r, tt.msg)
				} else {
					wantStatus(t, r, http.StatusOK)
					wantBody(t, r, `action="/.authgate/account/2fa/remove"`, `name="password"`, `name="code"`,
						`<input type="hidden" name="confirm" value="1">`, `class="small danger"`)
					// The question says what signing in is like afterwards
					// in this mode.
					if tt.mode == "on" {
						wantBody(t, r, "will send you to set up an authenticator again before they open")
					} else {
						wantBody(t, r, "Signing in will then need only your password.")
					}
				}
				if !e.user("frank").HasTOTP() {
					t.Fatal("removed without confirmation")
				}

				form := tt.form(e, raw)
				form.Set("confirm", "1")
				r = b.post("/.authgate/account/2fa/remove", form)
				wantStatus(t, r, tt.status)
				u := e.user("frank")
				if !tt.removed {
					wantBody(t, r, tt.msg)
					if !u.HasTOTP() || len(u.RecoveryCodes) != 4 || len(e.sessions("frank")) != 2 || b.cookieID() != oldID {
						t.Fatal("a refused removal changed something")
					}
					if e.hasAudit(audit.TOTPRemoved, "frank") {
						t.Error("refused removal audited as done")
					}
					return
				}
				if r.location() != "/.authgate/account?done=removed" {
					t.Fatalf("redirect to %q", r.location())
				}
				if u.HasTOTP() || len(u.RecoveryCodes) != 0 || !u.TOTPEnrolledAt.IsZero() || !u.RecoveryCodesAt.IsZero() {
					t.Fatalf("2FA not fully cleared: %+v", u)
				}
				if e.consume("frank", codes[0]) {
					t.Error("a recovery code works after removal")
				}
				// This session lives on under a new id; the other one is gone;
				// another user's session is untouched.
				list := e.sessions("frank")
				if len(list) != 1 || list[0].IDHash != session.HashID(b.cookieID()) || b.cookieID() == oldID {
					t.Fatalf("sessions after removal: %+v", list)
				}
				if _, err := e.mgr.Get(e.ctx(), other.cookieID()); !errors.Is(err, session.ErrNoSession) {
					t.Error("other session survived the removal")
				}
				if len(e.sessions("grace")) != 1 || bystander.get("/.authgate/account").status != http.StatusOK {
					t.Error("another user's session was touched")
				}
				r = b.get(r.location())
				wantStatus(t, r, http.StatusOK)
				wantBody(t, r, "Two-factor authentication was removed.", `<span class="badge off">Not set up</span>`)
				ok := false
				for _, ev := range e.audit() {
					if ev.Action == audit.TOTPRemoved && ev.Target == "frank" && ev.Actor == "frank" && strings.Contains(ev.Detail, "1 other session") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("audit: %+v", e.audit())
				}
			})
		})
	}
}

func TestRemoveWithoutTwoFactor(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("hank", store.RoleUser)
		r := e.signIn("hank", "", "").post("/.authgate/account/2fa/remove", url.Values{"confirm": {"1"}, "password": {goodPassword}})
		if r.status != http.StatusSeeOther || r.location() != "/.authgate/account?done=not-enrolled" {
			t.Fatalf("%d %q", r.status, r.location())
		}
	})
}

// Guessing the password or code on the confirmation is limited per user.
func TestRemoveGuessesAreLimited(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("ivan", store.RoleUser)
		raw, _ := e.enrol("ivan", 1)
		b := e.signIn("ivan", "", "")
		for i := range 5 {
			r := b.post("/.authgate/account/2fa/remove", url.Values{"confirm": {"1"}, "code": {"00000" + string(rune('0'+i))}})
			wantStatus(t, r, http.StatusForbidden)
		}
		// Now even the right proof is refused for a while, from any session.
		for _, form := range []url.Values{{"password": {goodPassword}}, {"code": {e.code(raw)}}} {
			form.Set("confirm", "1")
			r := e.signIn("ivan", "", "").post("/.authgate/account/2fa/remove", form)
			wantStatus(t, r, http.StatusTooManyRequests)
			wantBody(t, r, "Too many incorrect attempts.")
		}
		// The password change shares the limit.
		r := b.post("/.authgate/account/password", url.Values{"current_password": {goodPassword}, "new_password": {"a new password"}, "new_password_repeat": {"a new password"}})
		wantStatus(t, r, http.StatusTooManyRequests)
		if !e.user("ivan").HasTOTP() {
			t.Fatal("2FA removed while blocked")
		}
	})
}
