package signin

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/middleware"
)

// TestLogout: a GET only asks; a POST without this session's form token
// is refused by the CSRF middleware; with it the session ends.
func TestLogout(t *testing.T) {
	w := newWorld(t, settings.ModeOff)
	b := w.browser()
	b.signIn("bob", "bob-pw", "/")
	id := b.jar["sid"]

	wantPage(t, b.get(LogoutPage), http.StatusOK, "logout", "")
	if _, ok := w.sessions.get(id); !ok {
		t.Fatal("a GET ended the session")
	}
	for name, form := range map[string]url.Values{
		"no token":        {middleware.CSRFField: {""}},
		"another's token": {middleware.CSRFField: {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
	} {
		if rec := b.post(LogoutPage, form); rec.Code != http.StatusForbidden {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
		}
		if _, ok := w.sessions.get(id); !ok {
			t.Fatalf("%s: the session ended", name)
		}
	}

	wantRedirect(t, b.post(LogoutPage, url.Values{}), http.StatusSeeOther, auth.LoginPage+"?signed_out=1")
	if _, ok := w.sessions.get(id); ok || b.jar["sid"] != "" {
		t.Fatal("the session lives on after the logout")
	}
	if !slices.Contains(w.audit.actions(), audit.Logout) {
		t.Fatalf("audit %v", w.audit.actions())
	}
	// Without a session the page leads to the login.
	wantRedirect(t, b.get(LogoutPage), http.StatusSeeOther, auth.LoginPage)
	rec := b.get(auth.LoginPage + "?signed_out=1")
	if rec.Code != http.StatusOK {
		t.Fatalf("login page %d", rec.Code)
	}
}
