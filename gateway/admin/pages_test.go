package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
)

var (
	countRe = regexp.MustCompile(`<p id="user-count"><strong>(\d+)</strong> users?(?: · showing (\d+)–(\d+))?</p>`)
	prevRe  = regexp.MustCompile(`<a href="([^"]*)" rel="prev">`)
	nextRe  = regexp.MustCompile(`<a href="([^"]*)" rel="next">`)
)

// listing is what the users page shows about its list.
type listing struct {
	total, from, to int
	names           []string
	prev, next      string
}

func readListing(t *testing.T, body string) listing {
	t.Helper()
	m := countRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no user count on the page\n%s", body)
	}
	var l listing
	fmt.Sscan(m[1], &l.total)
	fmt.Sscan(m[2], &l.from)
	fmt.Sscan(m[3], &l.to)
	l.names = rowNames(body)
	if p := prevRe.FindStringSubmatch(body); p != nil {
		l.prev = strings.ReplaceAll(p[1], "&amp;", "&")
	}
	if n := nextRe.FindStringSubmatch(body); n != nil {
		l.next = strings.ReplaceAll(n[1], "&amp;", "&")
	}
	return l
}

// 120 users: pages of 50 with prev/next, the filter by name and status,
// and the filter kept through an action.
func TestUsersFilterAndPaging(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "admin")
		for i := range 119 {
			e.addUser(t, user{name: fmt.Sprintf("u%03d", i), groups: []string{"staff"}, totp: i%3 == 0})
		}
		type want struct {
			total, from, to int
			first, last     string
			prev, next      string
		}
		for _, tc := range []struct {
			path string
			want want
		}{
			{UsersPath, want{120, 1, 50, "admin", "u048", "", UsersPath + "?page=2"}},
			{UsersPath + "?page=2", want{120, 51, 100, "u049", "u098", UsersPath, UsersPath + "?page=3"}},
			{UsersPath + "?page=3", want{120, 101, 120, "u099", "u118", UsersPath + "?page=2", ""}},
			{UsersPath + "?q=U01", want{10, 1, 10, "u010", "u019", "", ""}},
			{UsersPath + "?q=u1&status=enabled", want{6, 1, 6, "u102", "u117", "", ""}},
			{UsersPath + "?status=enabled", want{41, 1, 41, "admin", "u117", "", ""}},
			{UsersPath + "?status=disabled&page=2", want{79, 51, 79, "u076", "u118", UsersPath + "?status=disabled", ""}},
			{UsersPath + "?q=nobody", want{0, 0, 0, "", "", "", ""}},
			{UsersPath + "?page=-4&status=bogus", want{120, 1, 50, "admin", "u048", "", UsersPath + "?page=2"}},
		} {
			t.Run(tc.path, func(t *testing.T) {
				r := a.get(t, tc.path)
				if r.status != http.StatusOK {
					t.Fatalf("status %d", r.status)
				}
				l := readListing(t, r.body)
				got := want{total: l.total, from: l.from, to: l.to, prev: l.prev, next: l.next}
				if len(l.names) > 0 {
					got.first, got.last = l.names[0], l.names[len(l.names)-1]
				}
				if got != tc.want {
					t.Errorf("got  %+v\nwant %+v", got, tc.want)
				}
				if n := len(l.names); n != max(0, tc.want.to-tc.want.from+1) && tc.want.total > 0 {
					t.Errorf("%d rows", n)
				}
				if tc.want.total == 0 && !strings.Contains(r.body, "No users match this filter.") {
					t.Error("empty result not explained")
				}
			})
		}

		// The table shows each user's details.
		r := a.get(t, UsersPath+"?q=u003")
		for _, want := range []string{
			`<th scope="row" class="name">u003</th>`, "<td>staff</td>",
			`<span class="badge on">enabled</span> <span class="factors small">Authenticator app</span>`,
			`<td class="nowrap">` + formatTime(e.clk.Now().Add(-48*time.Hour)) + "</td>",
			`<td class="nowrap">` + formatTime(e.clk.Now().Add(-time.Hour)) + "</td>",
			"<td>10</td>", "<td>0</td>",
			`<button type="submit" class="small danger">Disable 2FA</button>`,
			`<button type="submit" class="small secondary">Reset password</button>`,
			`<option value="user" selected>user</option>`,
			`<option value="admin">admin</option></select><button type="submit" class="small secondary">Set role</button></form></td>`,
			`<input type="hidden" name="back" value="q=u003">`,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("row lacks %q", want)
			}
		}
		if strings.Contains(r.body, "Revoke sessions</button>") {
			t.Error("revoke offered for a user without sessions")
		}
		if r := a.get(t, UsersPath+"?q=u001"); !strings.Contains(r.body, `<span class="badge off">not set up</span>`) ||
			strings.Contains(r.body, "Disable 2FA</button>") {
			t.Error("user without 2FA: wrong badge or a Disable button")
		}

		// An action from page 3 of a filter returns there.
		r = a.post(t, RolePath, url.Values{"user": {"u110"}, "role": {store.RoleAdmin}, "back": {"status=disabled&page=2&evil=1"}})
		if !strings.HasPrefix(r.location, UsersPath+"?page=2&status=disabled&done=role") {
			t.Errorf("redirect to %q", r.location)
		}
	})
}

// The 2FA column names each user's factors; a user with passkeys only
// has 2FA (status filter, Disable 2FA), but no clock to resync.
func TestUsersFactorsColumn(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		e.addUser(t, user{name: "app", totp: true})
		e.addUser(t, user{name: "both", totp: true, passkeys: 1})
		e.addUser(t, user{name: "keys", passkeys: 2})
		e.addUser(t, user{name: "none"})
		e.login(t, "keys", e.clk.Now())

		r := a.get(t, UsersPath)
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		for name, want := range map[string]string{
			"app":  `<span class="badge on">enabled</span> <span class="factors small">Authenticator app</span>`,
			"both": `<span class="badge on">enabled</span> <span class="factors small">Authenticator app · 1 passkey</span>`,
			"keys": `<span class="badge on">enabled</span> <span class="factors small">2 passkeys</span>`,
			"none": `<span class="badge off">not set up</span>`,
			"root": `<span class="badge on">enabled</span> <span class="factors small">Authenticator app</span>`,
		} {
			row := userRow(t, r.body, name)
			if !strings.Contains(row, want) {
				t.Errorf("2FA cell of %s lacks %q\n%s", name, want, row)
			}
			var buttons []string
			for _, f := range forms(menuRe.FindStringSubmatch(row)[2]) {
				buttons = append(buttons, f.button)
			}
			wantDisable := name != "none"
			wantResync := name == "app" || name == "both" || name == "root"
			if slices.Contains(buttons, "Disable 2FA") != wantDisable || slices.Contains(buttons, "Resync clock") != wantResync {
				t.Errorf("menu of %s: %q (Disable 2FA: %v, Resync clock: %v wanted)", name, buttons, wantDisable, wantResync)
			}
		}
		// The key-only user: no app enrolled, no code used; recovery codes
		// (none here) are still counted, as a warning.
		keys := userRow(t, r.body, "keys")
		if !strings.Contains(keys, `<td class="nowrap"><span class="muted">—</span></td>`) ||
			!strings.Contains(keys, `<td class="nowrap"><span class="muted">never</span></td>`) ||
			!strings.Contains(keys, `<span class="badge warn">0</span>`) {
			t.Errorf("row of keys\n%s", keys)
		}
		// Passkey names, ids and keys are not on the page.
		for _, secret := range []string{"credential-", "public-key-", "handle-of-", "Phone"} {
			if strings.Contains(r.body, secret) {
				t.Errorf("the users page shows %q", secret)
			}
		}
		if l := readListing(t, a.get(t, UsersPath+"?status=enabled").body); !slices.Equal(l.names, []string{"app", "both", "keys", "root"}) {
			t.Errorf("2FA enabled: %q", l.names)
		}
		if l := readListing(t, a.get(t, UsersPath+"?status=disabled").body); !slices.Equal(l.names, []string{"none"}) {
			t.Errorf("2FA not set up: %q", l.names)
		}
	})
}

// User names and groups are untrusted: they are escaped everywhere.
func TestHTMLEscaping(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		const evil = `<img src=x onerror=alert(1)>`
		a := e.admin(t, "root")
		e.addUser(t, user{name: evil, groups: []string{`"><script>alert(2)</script>`}, totp: true})
		e.login(t, evil, e.clk.Now())
		rec := audit.New(e.st, zerologNop(), e.clk.Now)
		rec.Record(context.Background(), store.AuditEvent{Action: audit.LoginFailed, Actor: evil, Target: evil, Detail: evil, IP: "203.0.113.9"})

		pages := map[string]string{
			"users":   a.get(t, UsersPath).body,
			"audit":   a.get(t, AuditPath+"?view=all").body,
			"confirm": a.post(t, DisablePath, url.Values{"selected": {evil}}).body,
			"notice":  a.get(t, UsersPath+"?done=revoked&n=1&user="+url.QueryEscape(evil)).body,
			"filter":  a.get(t, UsersPath+"?q="+url.QueryEscape(`"><img src=y>`)).body,
		}
		for name, body := range pages {
			for _, bad := range []string{"<img src=x", "<script>alert(2)", `<img src=y>`} {
				if strings.Contains(body, bad) {
					t.Errorf("%s page contains unescaped %q", name, bad)
				}
			}
		}
		if got := message(pages["notice"], "notice"); got != "" {
			t.Errorf("a notice names a user no action can succeed on: %q", got)
		}
		if !strings.Contains(pages["users"], "&lt;img src=x onerror=alert(1)&gt;") ||
			!strings.Contains(pages["users"], "&lt;script&gt;alert(2)&lt;/script&gt;") {
			t.Error("users page does not show the escaped name and group")
		}
		if got := rowNames(pages["users"]); len(got) != 2 || got[0] != evil {
			t.Errorf("rows %q", got)
		}
		if !strings.Contains(pages["confirm"], "<li><strong>&lt;img src=x onerror=alert(1)&gt;</strong></li>") {
			t.Error("confirm page does not list the escaped name")
		}
		// Such a name cannot be acted on (the service refuses invalid
		// names), and the refusal is a clear error, not a crash.
		r := a.post(t, DisablePath, url.Values{"user": {evil}, "confirm": {"1"}})
		if r.status != http.StatusBadRequest || message(r.body, "error") != msgInvalid {
			t.Errorf("acting on an invalid name: %d %q", r.status, message(r.body, "error"))
		}
	})
}

func TestAuditPage(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		rec := audit.New(e.st, zerologNop(), e.clk.Now)
		ctx := audit.WithActor(context.Background(), "bob", "198.51.100.7")
		rec.Record(ctx, store.AuditEvent{Action: audit.Login, Target: "bob"})
		e.clk.Advance(time.Minute)
		rec.Record(ctx, store.AuditEvent{Action: audit.LoginRecoveryCode, Target: "bob", Detail: "9 recovery codes left"})
		e.clk.Advance(time.Minute)
		rec.Record(ctx, store.AuditEvent{Action: audit.LoginFailed, Target: "carol", Detail: "bad password"})
		e.clk.Advance(time.Minute)
		// A change through the admin area is listed too.
		e.addUser(t, user{name: "bob"})
		a.post(t, RolePath, url.Values{"user": {"bob"}, "role": {store.RoleAdmin}})

		rowsOf := func(body string) string {
			rows := regexp.MustCompile(`(?s)<tr(?: class="flag")?>\s*<td><time datetime="[^"]+">([^<]+)</time></td>\s*<td>([^<]*)</td>\s*<td>([a-z_]+)`).FindAllStringSubmatch(body, -1)
			var actions []string
			for _, m := range rows {
				actions = append(actions, m[2]+":"+m[3])
			}
			return strings.Join(actions, " ")
		}
		// The default view: sign-ins and changes, without the failure.
		r := a.get(t, AuditPath)
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		if got, want := rowsOf(r.body), "root:role_changed bob:login_recovery_code bob:login"; got != want {
			t.Errorf("rows %q, want newest first %q", got, want)
		}
		for _, frag := range []string{
			`<tr class="flag">`, `login_recovery_code <span class="badge warn">recovery code</span>`,
			"<td>198.51.100.7</td>",
			"<td>9 recovery codes left</td>", "<td>" + clientIP + "</td>",
			`<a href="/.authgate/admin/audit" aria-current="page">Audit</a>`,
			`<strong aria-current="page">Sign-ins and changes</strong>`,
			`<a href="/.authgate/admin/audit?view=failures">Failed sign-ins and bans</a>`,
			`<a href="/.authgate/admin/audit?view=all">All</a>`,
			formatSeconds(e.clk.Now().Add(-3 * time.Minute)),
		} {
			if !strings.Contains(r.body, frag) {
				t.Errorf("audit page lacks %q", frag)
			}
		}
		if strings.Count(r.body, `<span class="badge warn">recovery code</span>`) != 1 {
			t.Error("only the recovery-code login is flagged")
		}
		// The failures, kept apart.
		r = a.get(t, AuditPath+"?view=failures")
		if got, want := rowsOf(r.body), "bob:login_failed"; r.status != http.StatusOK || got != want {
			t.Errorf("failures view: %d, rows %q, want %q", r.status, got, want)
		}
		for _, frag := range []string{`login_failed <span class="badge warn">failed</span>`, `<strong aria-current="page">Failed sign-ins and bans</strong>`, `<a href="/.authgate/admin/audit">Sign-ins and changes</a>`} {
			if !strings.Contains(r.body, frag) {
				t.Errorf("failures view lacks %q", frag)
			}
		}
		// Both, merged by time.
		r = a.get(t, AuditPath+"?view=all")
		if got, want := rowsOf(r.body), "root:role_changed bob:login_failed bob:login_recovery_code bob:login"; r.status != http.StatusOK || got != want {
			t.Errorf("all view: %d, rows %q, want newest first %q", r.status, got, want)
		}
		if r := a.get(t, AuditPath+"?view=bogus"); r.status != http.StatusNotFound {
			t.Errorf("unknown view: status %d, want 404", r.status)
		}
	})
}

func TestTempPassword(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 200 {
		pw, err := tempPassword(cryptoReader())
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != TempPasswordLen || seen[pw] {
			t.Fatalf("bad or repeated password %q", pw)
		}
		seen[pw] = true
		for _, c := range pw {
			if !strings.ContainsRune(tempAlphabet, c) {
				t.Fatalf("character %q outside the alphabet", c)
			}
			counts[c]++
		}
	}
	// 3200 characters over 57 symbols: every one shows up.
	if len(counts) != len(tempAlphabet) {
		t.Errorf("%d of %d symbols used", len(counts), len(tempAlphabet))
	}
	boom := errors.New("boom")
	if _, err := tempPassword(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("reader failure: %v", err)
	}
}

// A failing random source fails the reset cleanly: nothing changes.
func TestResetPasswordRandomFailure(t *testing.T) {
	e := newEnv(t, openEmbedded)
	e.addUser(t, user{name: "root", role: store.RoleAdmin, totp: true})
	e.addUser(t, user{name: "bob"})
	pages := rendererFor(t)
	sessions, box := newHold(t, e.st, e.clk)
	h := New(Deps{Users: e.svc, Upstreams: e.proxy, Hasher: e.hasher, Pages: pages, Now: e.clk.Now,
		Sessions: sessions, Box: box, Rand: iotest.ErrReader(errors.New("no entropy"))}, Options{})
	srv := httptest.NewServer(withCSRF(requireUser(e.st)(h.Handler())))
	t.Cleanup(srv.Close)
	a := e.login(t, "root", e.clk.Now())
	a.e = &env{srv: srv}
	r := a.post(t, ResetPath, url.Values{"user": {"bob"}, "confirm": {"1"}})
	if r.status != http.StatusInternalServerError || tempPassRe.MatchString(r.body) {
		t.Errorf("status %d", r.status)
	}
	if e.getUser(t, "bob").MustChangePassword {
		t.Error("password reset without a password")
	}
}
