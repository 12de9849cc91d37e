package account_test

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
)

func TestRevokeSession(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("nora", store.RoleUser)
		e.addUser("otto", store.RoleUser)
		victim := e.signIn("otto", "", "")
		phone := e.signIn("nora", "", "Nokia-3310-UA")
		b := e.signIn("nora", "", "laptop")

		tests := []struct {
			name   string
			id     string
			status int
			msg    string
		}{
			{"another user's session", victim.idHash[:12], http.StatusNotFound, "That session was not found."},
			{"full hash", phone.idHash, http.StatusNotFound, "That session was not found."},
			{"malformed", "<script>x</script>", http.StatusNotFound, "That session was not found."},
			{"upper case", "ABCDEF012345", http.StatusNotFound, "That session was not found."},
			{"empty", "", http.StatusNotFound, "That session was not found."},
			{"this session", b.idHash[:12], http.StatusConflict, "That is this session. To end it, sign out."},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := b.post("/.authgate/account/sessions/revoke", url.Values{"session": {tt.id}})
				wantStatus(t, r, tt.status)
				wantBody(t, r, tt.msg)
				if len(e.sessions("nora")) != 2 || len(e.sessions("otto")) != 1 {
					t.Fatal("a refused revoke ended a session")
				}
			})
		}
		if victim.get("/.authgate/account").status != http.StatusOK {
			t.Fatal("the other user's session was ended")
		}

		wantBody(t, b.get("/.authgate/account"), "Nokia-3310-UA")
		r := b.post("/.authgate/account/sessions/revoke", url.Values{"session": {phone.idHash[:12]}})
		wantStatus(t, r, http.StatusSeeOther)
		if r.location() != "/.authgate/account?done=revoked" {
			t.Fatalf("redirect to %q", r.location())
		}
		if _, err := e.mgr.Get(e.ctx(), phone.cookieID()); !errors.Is(err, session.ErrNoSession) {
			t.Fatal("revoked session still valid")
		}
		wantBody(t, b.get(r.location()), "The session was signed out.")
		wantNotBody(t, b.get("/.authgate/account"), "Nokia-3310-UA")
		if !e.hasAudit(audit.SessionRevoked, "nora") {
			t.Errorf("audit: %+v", e.audit())
		}
	})
}

func TestRevokeOtherSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.addUser("pia", store.RoleUser)
		e.addUser("quinn", store.RoleUser)
		others := []*browser{e.signIn("pia", "", "a"), e.signIn("pia", "", "b"), e.signIn("pia", "", "c")}
		bystander := e.signIn("quinn", "", "")
		b := e.signIn("pia", "", "")

		r := b.post("/.authgate/account/sessions/revoke-others", nil)
		wantStatus(t, r, http.StatusOK)
		wantBody(t, r, "Sign out every other browser", `action="/.authgate/account/sessions/revoke-others"`,
			`<input type="hidden" name="confirm" value="1">`)
		if len(e.sessions("pia")) != 4 {
			t.Fatal("sessions ended before confirmation")
		}
		r = b.post("/.authgate/account/sessions/revoke-others", url.Values{"confirm": {"1"}})
		wantStatus(t, r, http.StatusSeeOther)
		list := e.sessions("pia")
		if len(list) != 1 || list[0].IDHash != b.idHash {
			t.Fatalf("sessions left: %+v", list)
		}
		for _, o := range others {
			if o.get("/.authgate/account").status != http.StatusFound {
				t.Error("another session still signed in")
			}
		}
		if bystander.get("/.authgate/account").status != http.StatusOK {
			t.Error("another user's session was ended")
		}
		wantBody(t, b.get(r.location()), "All your other sessions were signed out.")
		found := false
		for _, ev := range e.audit() {
			if ev.Action == audit.SessionsRevoked && ev.Target == "pia" && ev.Detail == "3 other sessions signed out" {
				found = true
			}
		}
		if !found {
			t.Errorf("audit: %+v", e.audit())
		}
	})
}
