package signin

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
)

// codeOwed signs alice in under mode on and loads the code page.
func codeOwed(t *testing.T, w *world) *browser {
	t.Helper()
	b := w.browser()
	wantRedirect(t, b.signIn("alice", "alice-pw", "/app"), http.StatusSeeOther, auth.VerifyPage)
	wantPage(t, b.get(auth.VerifyPage), http.StatusOK, "verify", "")
	return b
}

// TestVerifyCodes: a wrong or drifted code keeps the sign-in where it
// is with the one public message; the right code completes it under a
// new id and goes to the destination remembered at login; the same code
// again (another sign-in) is refused.
func TestVerifyCodes(t *testing.T) {
	w := newWorld(t, settings.ModeOn)
	b := codeOwed(t, w)
	pending := b.jar["sid"]
	for _, code := range []string{"000000", driftedCode, "", "12345x"} {
		wantPage(t, b.post(auth.VerifyPage, url.Values{"code": {code}}), http.StatusUnauthorized, "verify", msgBadCode)
		if s, ok := b.session(); !ok || s.Stage != store.StagePending || b.jar["sid"] != pending {
			t.Fatalf("after code %q: session %+v (%v)", code, s, ok)
		}
		if len(w.audit.events) == 0 || w.audit.events[len(w.audit.events)-1].Action != audit.LoginFailed {
			t.Fatalf("after code %q: audit %v", code, w.audit.actions())
		}
	}

	// The fourth code is past the session's tries: refused before any
	// check, the sign-in ends.
	wantPage(t, b.post(auth.VerifyPage, url.Values{"code": {goodCode}}), http.StatusUnauthorized, "login", msgTooMany)
	if _, ok := w.sessions.get(pending); ok {
		t.Fatal("a spent session lives on")
	}

	b = codeOwed(t, w)
	pending = b.jar["sid"]
	wantRedirect(t, b.post(auth.VerifyPage, url.Values{"code": {goodCode}}), http.StatusSeeOther, "/app")
	s, ok := b.session()
	if !ok || b.jar["sid"] == pending || s.Stage != store.StageFull || !s.TwoFactor || !s.TwoFactorAt.Equal(w.now) || s.Redirect != "" {
		t.Fatalf("session after the code: %+v (%v)", s, ok)
	}
	if _, ok := w.sessions.get(pending); ok {
		t.Fatal("the pending session lives on")
	}
	if got := w.users.get("alice").TOTPLastUsedAt; !got.Equal(w.now) {
		t.Fatalf("last used %v", got)
	}
	if !slices.Contains(w.audit.actions(), audit.Login) {
		t.Fatalf("audit %v", w.audit.actions())
	}

	// Replayed: the step is used.
	other := codeOwed(t, w)
	wantPage(t, other.post(auth.VerifyPage, url.Values{"code": {goodCode}}), http.StatusUnauthorized, "verify", msgBadCode)
	if s, _ := other.session(); s.TwoFactor {
		t.Fatal("a replayed code passed")
	}
}

// TestVerifyStepUp: a password-only session proves a code later (the
// account pages send it here) and goes back to rd.
func TestVerifyStepUp(t *testing.T) {
	w := newWorld(t, settings.ModeOff)
	b := w.browser()
	wantRedirect(t, b.signIn("alice", "alice-pw", "/"), http.StatusSeeOther, "/")
	back := "/.authgate/account"
	wantPage(t, b.get(auth.StepUpURL(back)), http.StatusOK, "verify", "")
	wantRedirect(t, b.post(auth.VerifyPage, url.Values{"code": {goodCode}, "rd": {back}}), http.StatusSeeOther, back)
	if s, _ := b.session(); !s.TwoFactor {
		t.Fatalf("session %+v", s)
	}
	if !slices.Contains(w.audit.actions(), audit.StepUp) {
		t.Fatalf("audit %v", w.audit.actions())
	}
}

// TestSecondFactorPagesNeedASession: without one (or with a void one)
// every second-factor page sends the browser to sign in.
func TestSecondFactorPagesNeedASession(t *testing.T) {
	for _, page := range []string{auth.VerifyPage, auth.EnrollPage, RecoveryPage} {
		t.Run(page, func(t *testing.T) {
			w := newWorld(t, settings.ModeRequired)
			wantRedirect(t, w.browser().get(page), http.StatusSeeOther, auth.LoginPage)

			// The account changed after the sign-in began: void.
			b := codeOwed(t, w)
			if _, err := w.users.UpdateUser(t.Context(), "alice", func(u *store.User) error { u.AuthEpoch++; return nil }); err != nil {
				t.Fatal(err)
			}
			wantRedirect(t, b.post(page, url.Values{"code": {goodCode}, "recovery_code": {"r1"}}), http.StatusSeeOther, auth.LoginPage)
			if w.sessions.count() != 0 {
				t.Fatal("a void session lives on")
			}
		})
	}
}

// TestEnroll: a sign-in that owes an authenticator gets a secret held in
// the session; a wrong code keeps it there, the right one stores it on
// the account (ending its other sessions) and goes on to the first
// recovery codes.
func TestEnroll(t *testing.T) {
	w := newWorld(t, settings.ModeRequired)
	b := w.browser()
	wantRedirect(t, b.signIn("bob", "bob-pw", "/app"), http.StatusSeeOther, auth.EnrollPage)
	// Straight to the POST, no secret shown yet (this session's form
	// token from the login page): back to the page.
	b.get(auth.LoginPage)
	wantRedirect(t, b.post(auth.EnrollPage, url.Values{"code": {goodCode}}), http.StatusSeeOther, auth.EnrollPage+"?rd=%2Fapp")

	wantPage(t, b.get(auth.EnrollPage), http.StatusOK, "enroll", "")
	if s, _ := b.session(); string(s.PendingTOTPSecret) != "sealed-bob" {
		t.Fatalf("pending secret %q", s.PendingTOTPSecret)
	}
	wantPage(t, b.post(auth.EnrollPage, url.Values{"code": {"000000"}}), http.StatusUnauthorized, "enroll", msgBadCode)
	if w.users.get("bob").HasTOTP() {
		t.Fatal("a wrong code set up the authenticator")
	}

	wantRedirect(t, b.post(auth.EnrollPage, url.Values{"code": {goodCode}}), http.StatusSeeOther,
		auth.FirstRecoveryCodesPage+"?rd="+url.QueryEscape("/app"))
	u := w.users.get("bob")
	if string(u.TOTPSecret) != "sealed-bob" || u.AuthEpoch != 2 || !u.TOTPEnrolledAt.Equal(w.now) {
		t.Fatalf("account %+v", u)
	}
	s, _ := b.session()
	if s.Stage != store.StageFull || !s.TwoFactor || s.UserEpoch != 2 || len(s.PendingTOTPSecret) != 0 {
		t.Fatalf("session %+v", s)
	}
	if !slices.Contains(w.audit.actions(), audit.TOTPEnrolled) {
		t.Fatalf("audit %v", w.audit.actions())
	}
	// With an authenticator the enrol page leads to the code.
	wantRedirect(t, b.get(auth.EnrollPage), http.StatusSeeOther, auth.VerifyPage+"?rd=%2F")
}

// TestRecoveryCode: a recovery code instead of the code completes the
// sign-in once, uses the code up and goes on to set up the authenticator
// again; the same code is refused the next time.
func TestRecoveryCode(t *testing.T) {
	w := newWorld(t, settings.ModeOn)
	b := codeOwed(t, w)
	wantPage(t, b.get(RecoveryPage), http.StatusOK, "recovery", "")
	wantPage(t, b.post(RecoveryPage, url.Values{"recovery_code": {"nope"}}), http.StatusUnauthorized, "recovery", msgBadRecovery)
	wantRedirect(t, b.post(RecoveryPage, url.Values{"recovery_code": {"r1"}}), http.StatusSeeOther,
		auth.SetupPage+"?after=recovery&rd="+url.QueryEscape("/app"))
	if s, _ := b.session(); !s.TwoFactor || s.Stage != store.StageFull {
		t.Fatalf("session %+v", s)
	}
	if got := w.users.get("alice").RecoveryCodes; !slices.Equal(got, []string{"h:r2"}) {
		t.Fatalf("codes left %v", got)
	}
	if !slices.Contains(w.audit.actions(), audit.LoginRecoveryCode) {
		t.Fatalf("audit %v", w.audit.actions())
	}

	again := codeOwed(t, w)
	wantPage(t, again.post(RecoveryPage, url.Values{"recovery_code": {"r1"}}), http.StatusUnauthorized, "recovery", msgBadRecovery)
	if s, _ := again.session(); s.TwoFactor {
		t.Fatal("a used recovery code passed")
	}
}
