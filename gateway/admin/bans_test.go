package admin

import (
	"context"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/regulation"
)

var banRowRe = regexp.MustCompile(`<th scope="row">([^<]*)</th>\s*<td>(user name|address)</td>`)

func banRows(body string) []string {
	var out []string
	for _, m := range banRowRe.FindAllStringSubmatch(body, -1) {
		out = append(out, m[2]+":"+html.UnescapeString(m[1]))
	}
	return out
}

func TestBansTab(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		reg := regulation.New(e.st, nil, regulation.Options{MaxFailures: 2}, e.clk.Now)
		for range 2 {
			if _, err := reg.Fail(context.Background(), "<b>mallory</b>", netip.MustParseAddr("203.0.113.9")); err != nil {
				t.Fatal(err)
			}
		}

		r := a.get(t, BansPath)
		if r.status != http.StatusOK {
			t.Fatalf("bans page: %d", r.status)
		}
		rows := banRows(r.body)
		if len(rows) != 2 || !strings.Contains(strings.Join(rows, ","), "user name:<b>mallory</b>") || !strings.Contains(strings.Join(rows, ","), "address:203.0.113.9") {
			t.Fatalf("rows = %v", rows)
		}
		if strings.Contains(r.body, "<b>mallory</b>") {
			t.Error("a user name typed at the login form is not escaped")
		}
		if !strings.Contains(r.body, `href="/.authgate/admin/bans" aria-current="page"`) {
			t.Error("nav does not mark the Bans tab")
		}
		keys := hidden(r.body, "key")
		if len(keys) != 2 {
			t.Fatalf("lift forms carry keys %v", keys)
		}

		// Lift one: back to the list with a notice; audited with the admin.
		r = a.follow(t, a.post(t, LiftBanPath, url.Values{"key": {regulation.UserKey("<b>mallory</b>")}}))
		if got := message(r.body, "notice"); got != msgBanLifted {
			t.Errorf("notice %q", got)
		}
		if rows := banRows(r.body); len(rows) != 1 || rows[0] != "address:203.0.113.9" {
			t.Errorf("rows after lift = %v", rows)
		}
		if !e.hasEvent(t, audit.BanLifted, "<b>mallory</b>", "root") {
			t.Error("lift not audited with the admin as actor")
		}
		if _, banned, _ := reg.Banned(context.Background(), "<b>mallory</b>", netip.Addr{}); banned {
			t.Error("ban still holds")
		}

		// Lifting it again: already gone.
		r = a.follow(t, a.post(t, LiftBanPath, url.Values{"key": {regulation.UserKey("<b>mallory</b>")}}))
		if got := message(r.body, "notice"); got != msgBanGone {
			t.Errorf("second lift notice %q", got)
		}
		// No key: a bad request.
		if r := a.post(t, LiftBanPath, url.Values{}); r.status != http.StatusBadRequest {
			t.Errorf("lift without key: %d", r.status)
		}
		r = a.follow(t, a.post(t, LiftBanPath, url.Values{"key": {keys[0]}}))
		r = a.follow(t, a.post(t, LiftBanPath, url.Values{"key": {keys[1]}}))
		if !strings.Contains(r.body, `id="no-bans"`) {
			t.Errorf("page after lifting everything lists: %v", banRows(r.body))
		}
	})
}

// Only admins with a fresh second factor reach the tab, and its POST
// needs the CSRF token.
func TestBansTabGuarded(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.addUser(t, user{name: "joe"})
		if r := e.login(t, "joe", e.clk.Now()).get(t, BansPath); r.status != http.StatusForbidden {
			t.Errorf("non-admin: %d", r.status)
		}
		a := e.admin(t, "root")
		if r := a.postRaw(t, LiftBanPath, url.Values{"key": {"u:x"}}); r.status != http.StatusForbidden {
			t.Errorf("lift without CSRF token: %d", r.status)
		}
		e.clk.Advance(time.Hour)
		r := a.post(t, LiftBanPath, url.Values{"key": {"u:x"}})
		if r.status != http.StatusSeeOther || !strings.Contains(r.location, url.QueryEscape(BansPath)) {
			t.Errorf("stale second factor: %d to %q, want a step-up returning to the Bans tab", r.status, r.location)
		}
	})
}

func TestTimeLeft(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                    "0 s",
		45 * time.Second:                "45 s",
		14*time.Minute + 59*time.Second: "14 min",
		3*time.Hour + 20*time.Minute:    "3 h 20 min",
	} {
		if got := timeLeft(d); got != want {
			t.Errorf("timeLeft(%v) = %q, want %q", d, got, want)
		}
	}
}
