package account_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/store"
)

// consume uses a recovery code the way the login does: match, then remove
// the matched hash inside UpdateUser.
func (e *env) consume(name, code string) bool {
	e.t.Helper()
	used := false
	if _, err := e.st.UpdateUser(e.ctx(), name, func(u *store.User) error {
		used = false
		i := e.rec.Match(name, u.RecoveryCodes, code)
		if i < 0 {
			return nil
		}
		u.RecoveryCodes = append(u.RecoveryCodes[:i:i], u.RecoveryCodes[i+1:]...)
		used = true
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return used
}

func TestRecoveryCodes(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("carol", store.RoleUser)
		_, oldCodes := e.enrol("carol", 10)
		other := e.signIn("carol", "", "")
		b := e.signIn("carol", "", "")

		// Codes are used up one by one, and the page counts down.
		if !e.consume("carol", oldCodes[0]) || e.consume("carol", oldCodes[0]) {
			t.Fatal("a recovery code was not single use")
		}
		wantBody(t, b.get("/.authgate/account"), `<span class="badge on">9 left</span>`)
		for _, c := range oldCodes[1:8] {
			e.consume("carol", c)
		}
		r := b.get("/.authgate/account")
		wantBody(t, r, `<span class="badge warn">2 left</span>`, "You are running out of recovery codes.")
		wantNotBody(t, r, "Download the codes")
		// Nothing was generated in this session: no download.
		wantStatus(t, b.get("/.authgate/account/recovery/codes.txt"), http.StatusNotFound)

		// Regenerating asks first while codes are left.
		r = b.post("/.authgate/account/recovery/generate", nil)
		wantStatus(t, r, http.StatusOK)
		wantBody(t, r, "The 2 unused codes you have now will stop working.", `action="/.authgate/account/recovery/generate"`,
			`<input type="hidden" name="confirm" value="1">`, `href="/.authgate/account"`)
		if len(e.user("carol").RecoveryCodes) != 2 {
			t.Fatal("codes replaced before confirmation")
		}
		r = b.post("/.authgate/account/recovery/generate", url.Values{"confirm": {"1"}})
		wantStatus(t, r, http.StatusOK)
		wantBody(t, r, "shown only this once", "Download as a text file", "available for 10 minutes")
		codes := pageCodes(t, r)
		if len(codes) != factor.RecoveryCount {
			t.Fatalf("%d codes shown", len(codes))
		}
		// The old ones no longer work; the new ones do, once each.
		for _, c := range oldCodes[8:] {
			if e.consume("carol", c) {
				t.Errorf("old code %s still works after regenerating", c)
			}
		}
		if !e.consume("carol", codes[4]) || e.consume("carol", codes[4]) {
			t.Error("new code not usable exactly once")
		}
		wantBody(t, b.get("/.authgate/account"), `<span class="badge on">9 left</span>`, "Download the codes you just generated")
		if !e.hasAudit(audit.RecoveryGenerated, "carol") {
			t.Error("no audit event for the new codes")
		}

		// The download holds exactly these codes, in this session only.
		r = b.get("/.authgate/account/recovery/codes.txt")
		wantStatus(t, r, http.StatusOK)
		wantBody(t, r, append([]string{"Recovery codes for carol"}, codes...)...)
		wantStatus(t, other.get("/.authgate/account/recovery/codes.txt"), http.StatusNotFound)

		// Codes regenerated in another session replace these: the
		// download here stops offering the stale ones.
		e.clock.Advance(2 * time.Millisecond) // a distinct generation time
		r = other.post("/.authgate/account/recovery/generate", url.Values{"confirm": {"1"}})
		wantStatus(t, r, http.StatusOK)
		wantStatus(t, b.get("/.authgate/account/recovery/codes.txt"), http.StatusNotFound)
		wantStatus(t, other.get("/.authgate/account/recovery/codes.txt"), http.StatusOK)

		// With no codes left, generating needs no confirmation step.
		for _, c := range pageCodes(t, r) {
			e.consume("carol", c)
		}
		r = b.get("/.authgate/account")
		wantBody(t, r, `<span class="badge warn">0 left</span>`, "You have no recovery codes left.", ">Generate recovery codes<")
		r = b.post("/.authgate/account/recovery/generate", nil)
		wantStatus(t, r, http.StatusOK)
		if n := len(pageCodes(t, r)); n != factor.RecoveryCount {
			t.Fatalf("%d codes after generating from none", n)
		}
	})
}

func TestRecoveryCodesNeedTwoFactor(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("dave", store.RoleUser)
		b := e.signIn("dave", "", "")
		r := b.post("/.authgate/account/recovery/generate", url.Values{"confirm": {"1"}})
		if r.status != http.StatusSeeOther || r.location() != "/.authgate/account?done=not-enrolled" {
			t.Fatalf("generate without 2FA: %d %q", r.status, r.location())
		}
		if u := e.user("dave"); len(u.RecoveryCodes) != 0 {
			t.Fatal("codes made for a user without 2FA")
		}
		wantBody(t, b.get(r.location()), "Two-factor authentication is not set up for your account.")
	})
}

// The overview's warning threshold: 2 or fewer codes.
func TestRecoveryLowWarning(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 10} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			e := newEnv(t, backends()[0])
			e.addUser("erin", store.RoleUser)
			e.enrol("erin", n)
			r := e.signIn("erin", "", "").get("/.authgate/account")
			badge := `<span class="badge on">` + strconv.Itoa(n) + ` left</span>`
			if n <= 2 {
				badge = `<span class="badge warn">` + strconv.Itoa(n) + ` left</span>`
			}
			wantBody(t, r, badge)
		})
	}
}
