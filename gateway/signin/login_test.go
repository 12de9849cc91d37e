package signin

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
)

// TestLoginMovesOn: a right password goes on to the destination, the
// code or the authenticator set-up, as the mode and the account say.
func TestLoginMovesOn(t *testing.T) {
	tests := []struct {
		name, mode, user, rd string
		location             string
		stage                string
	}{
		{"mode off", settings.ModeOff, "alice", "/app?x=1", "/app?x=1", store.StageFull},
		{"mode on, authenticator set up", settings.ModeOn, "alice", "/app", auth.VerifyPage, store.StagePending},
		{"mode on, no authenticator", settings.ModeOn, "bob", "/app", "/app", store.StageFull},
		{"mode required, authenticator set up", settings.ModeRequired, "alice", "/app", auth.VerifyPage, store.StagePending},
		{"mode required, no authenticator", settings.ModeRequired, "bob", "/app", auth.EnrollPage, store.StagePending},
		{"another origin's rd", settings.ModeOff, "bob", "//evil.example/x", "/", store.StageFull},
		{"rd on this host", settings.ModeOff, "bob", "http://gw.example/x", "http://gw.example/x", store.StageFull},
		{"no rd", settings.ModeOff, "bob", "", "/", store.StageFull},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.mode)
			b := w.browser()
			wantRedirect(t, b.signIn(tc.user, tc.user+"-pw", tc.rd), http.StatusSeeOther, tc.location)
			s, ok := b.session()
			if !ok || s.User != tc.user || s.Stage != tc.stage || s.TwoFactor || s.Mode != tc.mode || s.UserEpoch != 1 {
				t.Fatalf("session %+v (%v)", s, ok)
			}
			if tc.stage == store.StagePending {
				if want := auth.SafeRedirect(tc.rd, "gw.example", nil); s.Redirect != want {
					t.Fatalf("remembered rd %q, want %q", s.Redirect, want)
				}
				if slices.Contains(w.audit.actions(), audit.Login) {
					t.Fatal("a sign-in with a code owed recorded as a login")
				}
			} else if !slices.Contains(w.audit.actions(), audit.Login) {
				t.Fatalf("audit %v", w.audit.actions())
			}
		})
	}
}

// TestLoginFailuresLookAlike: every failed password step answers the
// same status and public message, creates no session and sets no
// cookie; an unknown user still costs a hash.
func TestLoginFailuresLookAlike(t *testing.T) {
	tests := []struct {
		name, user, pw string
		dummy          bool
	}{
		{"wrong password", "alice", "nope", false},
		{"unknown user", "mallory", "alice-pw", true},
		{"empty password", "alice", "", true},
		{"empty user name", "", "alice-pw", true},
		{"user name too long", strings.Repeat("a", 200), "alice-pw", true},
		{"password too long", "alice", strings.Repeat("p", 2000), true},
		{"user name not UTF-8", "al\xffice", "alice-pw", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, settings.ModeOn)
			b := w.browser()
			wantPage(t, b.signIn(tc.user, tc.pw, "/app"), http.StatusUnauthorized, "login", msgBadLogin)
			if w.sessions.count() != 0 || b.jar["sid"] != "" {
				t.Fatal("a failed login made a session")
			}
			if tc.dummy && w.pw.dummies != 1 {
				t.Fatalf("%d dummy hashes, want 1", w.pw.dummies)
			}
		})
	}
	t.Run("unusable stored hash", func(t *testing.T) {
		w := newWorld(t, settings.ModeOn)
		w.users.m["carol"] = store.User{Name: "carol", PasswordHash: "$2y$garbage", AuthEpoch: 1}
		wantPage(t, w.browser().signIn("carol", "carol-pw", "/"), http.StatusUnauthorized, "login", msgBadLogin)
	})
}

// TestLoginBan: past the limit the password is not looked at: the right
// one gets the same ban answer (429, Retry-After) as a wrong one.
func TestLoginBan(t *testing.T) {
	w := newWorld(t, settings.ModeOff)
	b := w.browser()
	banned := false
	for i := range 5 {
		rec := b.signIn("bob", "wrong", "/")
		switch rec.Code {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			banned = true
		default:
			t.Fatalf("attempt %d: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	if !banned {
		t.Fatal("5 failures started no ban")
	}
	rec := b.signIn("bob", "bob-pw", "/")
	wantPage(t, rec, http.StatusTooManyRequests, "login", banMessage(15*time.Minute))
	if rec.Header().Get("Retry-After") == "" || w.sessions.count() != 0 {
		t.Fatalf("ban answer without Retry-After, or a session made: %v %d", rec.Header(), w.sessions.count())
	}
}

// TestLoginReplacesSession: a new session id at every login; the one
// the browser had (here: a sign-in left at the code) ends.
func TestLoginReplacesSession(t *testing.T) {
	w := newWorld(t, settings.ModeOn)
	b := w.browser()
	b.signIn("alice", "alice-pw", "/")
	first := b.jar["sid"]
	wantRedirect(t, b.signIn("alice", "alice-pw", "/"), http.StatusSeeOther, auth.VerifyPage)
	if b.jar["sid"] == first || w.sessions.count() != 1 {
		t.Fatalf("session %q after %q, %d stored", b.jar["sid"], first, w.sessions.count())
	}
	if _, ok := w.sessions.get(first); ok {
		t.Fatal("the earlier session lives on")
	}
}

// TestLoginPageSignedIn: a complete session skips the form, to a safe rd
// only.
func TestLoginPageSignedIn(t *testing.T) {
	w := newWorld(t, settings.ModeOff)
	b := w.browser()
	b.signIn("bob", "bob-pw", "/")
	wantRedirect(t, b.get(auth.LoginPage+"?rd="+url.QueryEscape("/app")), http.StatusSeeOther, "/app")
	wantRedirect(t, b.get(auth.LoginPage+"?rd="+url.QueryEscape("https://evil.example/")), http.StatusSeeOther, "/")
}
