package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/store"
)

// giveRecoveryCodes stores fresh recovery codes for user, hashed with the
// gateway's own key, and returns them.
func giveRecoveryCodes(t *testing.T, g *gateway, user string) []string {
	t.Helper()
	key, err := server.LoadKey(g.cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	codes, hashes, err := factor.NewRecovery(key[:], nil).Generate(user)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.srv.Store().UpdateUser(context.Background(), user, func(u *store.User) error {
		u.RecoveryCodes = hashes
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return codes
}

func TestRecoveryCodeLogin(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			g := startGateway(t, gwOpts{driver: driver, mode: "on"})
			g.addUser(t, "alice", "correct horse")
			b := g.browser(t)
			enroll := func() {
				// mode on: enrol voluntarily from a two_factor route.
				login(t, b, "alice", "correct horse")
			}
			enroll()
			secretEnrol(t, g, b)
			codes := giveRecoveryCodes(t, g, "alice")

			// Lost phone: a new browser signs in with a recovery code.
			lost := g.browser(t)
			r := lost.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "rd": {"/panel"}})
			mustStatus(t, r, http.StatusSeeOther, "password")
			page := lost.get("/.authgate/verify")
			if !strings.Contains(page.body, `href="/.authgate/recovery`) {
				t.Fatal("verify page offers no recovery code link")
			}
			r = lost.post("/.authgate/recovery", "/.authgate/recovery", url.Values{"recovery_code": {"AAAAA-AAAAA"}})
			mustStatus(t, r, http.StatusUnauthorized, "wrong recovery code")
			if !strings.Contains(r.body, "The recovery code is invalid.") {
				t.Fatalf("message: %.300s", r.body)
			}
			r = lost.post("/.authgate/recovery", "/.authgate/recovery", url.Values{"recovery_code": {strings.ToLower(codes[4])}})
			mustStatus(t, r, http.StatusSeeOther, "recovery code")
			// The phone is lost: the user is offered to set up the
			// authenticator again, and that page leads on to rd.
			if location(r) != "/.authgate/account/2fa/setup?after=recovery&rd=%2Fpanel" {
				t.Fatalf("after recovery went to %q", location(r))
			}
			setup := lost.get(location(r))
			mustStatus(t, setup, http.StatusOK, "set-up page after a recovery code")
			for _, want := range []string{"You signed in with a recovery code", `name="rd" value="/panel"`, `<a href="/panel">Not now</a>`} {
				if !strings.Contains(setup.body, want) {
					t.Fatalf("set-up page after recovery lacks %q: %.600s", want, setup.body)
				}
			}
			mustStatus(t, lost.get("/panel"), http.StatusOK, "signed in by recovery code")

			u, _ := g.srv.Store().GetUser(context.Background(), "alice")
			if len(u.RecoveryCodes) != factor.RecoveryCount-1 {
				t.Fatalf("%d codes left, want %d", len(u.RecoveryCodes), factor.RecoveryCount-1)
			}
			// The same code never works twice.
			again := g.browser(t)
			login(t, again, "alice", "correct horse")
			r = again.post("/.authgate/recovery", "/.authgate/recovery", url.Values{"recovery_code": {codes[4]}})
			mustStatus(t, r, http.StatusUnauthorized, "reused recovery code")

			// The login is flagged in the audit log.
			evs, err := g.srv.Store().ListAudit(context.Background(), store.AuditChanges, 50)
			if err != nil {
				t.Fatal(err)
			}
			var flagged bool
			for _, ev := range evs {
				if ev.Action == audit.LoginRecoveryCode && ev.Target == "alice" && strings.Contains(ev.Detail, "9 recovery codes left") {
					flagged = true
				}
			}
			if !flagged {
				t.Fatalf("no %s event in %+v", audit.LoginRecoveryCode, evs)
			}
		})
	}
}

// secretEnrol sets up 2FA for the signed-in browser's user through the
// sign-in enrolment page.
func secretEnrol(t *testing.T, g *gateway, b *browser) string {
	t.Helper()
	page := b.get("/.authgate/enroll")
	mustStatus(t, page, http.StatusOK, "enroll page")
	m := secretRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("no secret on the enrolment page")
	}
	r := b.post("/.authgate/enroll", "/.authgate/enroll", url.Values{"code": {codeFor(t, m[1], g.clock.Now())}})
	if r.status != http.StatusSeeOther && r.status != http.StatusOK {
		t.Fatalf("enrol: %d %.300s", r.status, r.body)
	}
	g.clock.Advance(30e9)
	return m[1]
}
