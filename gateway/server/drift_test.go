package server_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/store"
)

// driftGateway is a gateway whose brute-force regulation does not get in
// the way of many deliberate failures from one address.
func driftGateway(t *testing.T, driver string) *gateway {
	t.Helper()
	return startGatewayWith(t, gwOpts{driver: driver, mode: "required"}, func(c *config.Config) {
		c.Regulation.MaxFailures = config.MaxRegMaxFailures
	})
}

// phoneCode is the code of a phone whose clock is off by d.
func phoneCode(t *testing.T, g *gateway, secret string, d time.Duration) string {
	t.Helper()
	return codeFor(t, secret, g.clock.Now().Add(d))
}

// wrongCodeFor is a code matching no step within ±20 minutes: wrong, not
// drifted.
func wrongCodeFor(t *testing.T, g *gateway, secret string) string {
	t.Helper()
	for _, c := range []string{"000000", "123456", "999999", "314159", "271828", "161803"} {
		hit := false
		for k := -45; k <= 45; k++ {
			if phoneCode(t, g, secret, time.Duration(k)*30*time.Second) == c {
				hit = true
			}
		}
		if !hit {
			return c
		}
	}
	t.Fatal("no wrong code")
	return ""
}

// waitDrift polls the store until the user's evidence satisfies ok (the
// recorder writes off the request path, after a short random delay).
func waitDrift(t *testing.T, g *gateway, name string, ok func([]store.DriftObservation) bool) store.User {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, err := g.srv.Store().GetUser(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if ok(u.DriftSeen) {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: evidence %+v never satisfied the test", name, u.DriftSeen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	csrfValueRE = regexp.MustCompile(`(name="csrf_token"\s+value=")[^"]*(")`)
	cookieValRE = regexp.MustCompile(`^([^=]+)=[^;]*`)
)

// normalise drops what legitimately differs between two responses: the
// CSRF token and request id in the body, the values of Set-Cookie,
// X-Request-Id and Date.
func normalise(r resp) (string, string) {
	body := csrfValueRE.ReplaceAllString(r.body, "${1}TOKEN${2}")
	if id := r.header.Get("X-Request-Id"); id != "" {
		body = strings.ReplaceAll(body, id, "REQUEST-ID")
	}
	var hs []string
	for k, vs := range r.header {
		for _, v := range vs {
			switch k {
			case "X-Request-Id", "Date":
				v = "*"
			case "Set-Cookie":
				v = cookieValRE.ReplaceAllString(v, "${1}=*")
			}
			hs = append(hs, k+": "+v)
		}
	}
	sort.Strings(hs)
	return body, strings.Join(hs, "\n")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// The oracle test: a wrong code and a drifted-but-correct code (phone 90 s
// ahead) get the same status, body, headers and timing class. A different
// answer would turn the wide drift window into an oracle for a guesser.
func TestDriftedCodeIsNoOracle(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			logs := &testkit.SyncBuffer{}
			g := startGatewayWith(t, gwOpts{driver: driver, mode: "required", logw: logs}, func(c *config.Config) {
				c.Regulation.MaxFailures = config.MaxRegMaxFailures
			})
			g.addUser(t, "alice", "correct horse")
			secret := enroll(t, g, g.browser(t))
			wrong := wrongCodeFor(t, g, secret)
			drifted := phoneCode(t, g, secret, 90*time.Second)

			const sessions = 12
			var tWrong, tDrifted []time.Duration
			var refBody, refHdr string
			for i := range sessions {
				b := g.browser(t)
				login(t, b, "alice", "correct horse")
				// Four tries per sign-in (the fifth ends it), alternating
				// which kind goes first.
				kinds := []string{"wrong", "drifted", "drifted", "wrong"}
				if i%2 == 1 {
					kinds = []string{"drifted", "wrong", "wrong", "drifted"}
				}
				bodies := map[string][]string{}
				for j, kind := range kinds {
					code := wrong
					if kind == "drifted" {
						code = drifted
					}
					page := b.get("/.authgate/verify")
					m := csrfRE.FindStringSubmatch(page.body)
					if m == nil {
						t.Fatalf("no CSRF token on the verify page: %d", page.status)
					}
					form := url.Values{"code": {code}, "csrf_token": {m[1] + m[2]}}
					start := time.Now()
					r := b.do("POST", "/.authgate/verify", form, nil)
					d := time.Since(start)
					mustStatus(t, r, http.StatusUnauthorized, kind+" code")
					if !strings.Contains(r.body, "The security code is invalid.") {
						t.Fatalf("%s code: public message missing", kind)
					}
					body, hdr := normalise(r)
					bodies[kind] = append(bodies[kind], body+"\n--\n"+hdr)
					// The j-th answer of every sign-in must be the same
					// whatever the code was.
					if j == 0 && i == 0 {
						refBody, refHdr = body, hdr
					}
					if j == 0 && (body != refBody || hdr != refHdr) {
						t.Fatalf("first answer differs (%s code):\nbody %s\nvs   %s\nheaders %s\nvs      %s", kind, body, refBody, hdr, refHdr)
					}
					if kind == "wrong" {
						tWrong = append(tWrong, d)
					} else {
						tDrifted = append(tDrifted, d)
					}
				}
				for n := range 2 {
					if bodies["wrong"][n] != bodies["drifted"][n] {
						t.Fatalf("answers differ:\nwrong:   %s\ndrifted: %s", bodies["wrong"][n], bodies["drifted"][n])
					}
				}
			}
			// Timing class: medians within a generous factor (never an
			// absolute speed).
			mw, md := median(tWrong), median(tDrifted)
			if ratio := float64(md) / float64(mw); ratio < 0.5 || ratio > 2 {
				t.Fatalf("median drifted %v vs wrong %v (ratio %.2f): a drifted code is distinguishable by timing", md, mw, ratio)
			}
			t.Logf("median wrong %v, drifted %v", mw, md)

			// The evidence was recorded (+3 steps), and logged with the
			// user and offset but never the code.
			waitDrift(t, g, "alice", func(o []store.DriftObservation) bool {
				return len(o) == store.MaxDriftSeen && o[len(o)-1].Steps == 3
			})
			out := logs.String()
			if !strings.Contains(out, `"offset_steps":3`) || !strings.Contains(out, `"user":"alice"`) {
				t.Fatal("no drift warning with user and offset in the log")
			}
			for _, c := range []string{drifted, wrong} {
				if strings.Contains(out, `"`+c+`"`) || strings.Contains(out, "="+c) {
					t.Fatalf("a code (%s) appears in the log", c)
				}
			}
		})
	}
}

// verifyWith signs a new browser in and submits code.
func verifyWith(t *testing.T, g *gateway, user, code string) resp {
	t.Helper()
	b := g.browser(t)
	login(t, b, user, "correct horse")
	return b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {code}})
}

// Resync from the account page: a phone 7 minutes ahead cannot sign in;
// two consecutive codes resync it (after the password); later sign-ins
// with that phone pass; neither resync code can be replayed.
func TestAccountResync(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			g := driftGateway(t, driver)
			g.addUser(t, "alice", "correct horse")
			b := g.browser(t)
			secret := enroll(t, g, b)
			const ahead = 7 * time.Minute

			r := verifyWith(t, g, "alice", phoneCode(t, g, secret, ahead))
			mustStatus(t, r, http.StatusUnauthorized, "code 7 min ahead")
			waitDrift(t, g, "alice", func(o []store.DriftObservation) bool { return len(o) == 1 && o[0].Steps == 14 })

			page := b.get("/.authgate/account")
			if !strings.Contains(page.body, `href="/.authgate/account/2fa/resync"`) {
				t.Fatal("no resync link on the account page")
			}
			mustStatus(t, b.get("/.authgate/account/2fa/resync"), http.StatusOK, "resync page")
			code1 := phoneCode(t, g, secret, ahead)
			g.clock.Advance(30 * time.Second)
			code2 := phoneCode(t, g, secret, ahead)
			// The password is required.
			r = b.post("/.authgate/account/2fa/resync", "/.authgate/account/2fa/resync", url.Values{"password": {"wrong"}, "code1": {code1}, "code2": {code2}})
			mustStatus(t, r, http.StatusForbidden, "resync with a wrong password")
			// Not consecutive: refused with a clear message.
			r = b.post("/.authgate/account/2fa/resync", "/.authgate/account/2fa/resync", url.Values{"password": {"correct horse"}, "code1": {code2}, "code2": {code1}})
			mustStatus(t, r, http.StatusUnprocessableEntity, "codes in the wrong order")
			if !strings.Contains(r.body, "not two consecutive codes") {
				t.Fatalf("message missing: %.400s", r.body)
			}
			r = b.post("/.authgate/account/2fa/resync", "/.authgate/account/2fa/resync", url.Values{"password": {"correct horse"}, "code1": {code1}, "code2": {code2}})
			mustStatus(t, r, http.StatusSeeOther, "resync")
			if location(r) != "/.authgate/account?done=resynced" {
				t.Fatalf("resync went to %q", location(r))
			}
			u, _ := g.srv.Store().GetUser(context.Background(), "alice")
			if u.TOTPDriftSteps != 14 || len(u.DriftSeen) != 0 {
				t.Fatalf("after resync: drift %d, evidence %v", u.TOTPDriftSteps, u.DriftSeen)
			}
			evs, _ := g.srv.Store().ListAudit(context.Background(), store.AuditChanges, 10)
			if len(evs) == 0 || evs[0].Action != "totp_resynced" || evs[0].Actor != "alice" {
				t.Fatalf("audit: %+v", evs)
			}
			// Replays of either code fail.
			for _, c := range []string{code1, code2} {
				mustStatus(t, verifyWith(t, g, "alice", c), http.StatusUnauthorized, "replayed resync code")
			}
			// Later sign-ins at that drift pass.
			for range 2 {
				g.clock.Advance(30 * time.Second)
				r = verifyWith(t, g, "alice", phoneCode(t, g, secret, ahead))
				mustStatus(t, r, http.StatusSeeOther, "sign-in at the resynced drift")
			}
			// Beyond drift_scan (10 min): refused with the reason.
			g.clock.Advance(30 * time.Second)
			far1 := phoneCode(t, g, secret, 25*time.Minute)
			far2 := phoneCode(t, g, secret, 25*time.Minute+30*time.Second)
			r = b.post("/.authgate/account/2fa/resync", "/.authgate/account/2fa/resync", url.Values{"password": {"correct horse"}, "code1": {far1}, "code2": {far2}})
			mustStatus(t, r, http.StatusUnprocessableEntity, "resync beyond drift_scan")
			if !strings.Contains(r.body, "more than the 10 min that can be corrected") {
				t.Fatalf("too-far message missing: %.600s", r.body)
			}
		})
	}
}

// signUp creates a user (admin or not) and enrols 2FA at sign-in; the
// browser stays signed in.
func signUp(t *testing.T, g *gateway, name string, admin bool) (*browser, string) {
	t.Helper()
	if admin {
		g.addAdmin(t, name, "correct horse")
	} else {
		g.addUser(t, name, "correct horse")
	}
	b := g.browser(t)
	login(t, b, name, "correct horse")
	page := b.get("/.authgate/enroll")
	m := secretRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("%s: no secret on the enrolment page", name)
	}
	r := b.post("/.authgate/enroll", "/.authgate/enroll", url.Values{"code": {codeFor(t, m[1], g.clock.Now())}})
	mustStatus(t, r, http.StatusSeeOther, name+" enrol")
	return b, m[1]
}

// Server or phone, on the admin pages: two users' codes 90 s ahead blame
// the server clock; one user 5 minutes behind is her phone, shown on her
// row with advice; the admin resyncs her from two codes she reads out.
func TestDriftOnAdminPages(t *testing.T) {
	g := driftGateway(t, "embedded")
	root, _ := signUp(t, g, "root", true)
	settings := root.get("/.authgate/admin/settings")
	mustStatus(t, settings, http.StatusOK, "settings")
	if !strings.Contains(settings.body, `id="drift-none"`) {
		t.Fatalf("no 'no evidence' note: %.2000s", settings.body)
	}
	secrets := map[string]string{}
	for _, n := range []string{"alice", "bob", "carol"} {
		_, secrets[n] = signUp(t, g, n, false)
	}
	g.clock.Advance(30 * time.Second) // the enrolment codes are used
	for n, off := range map[string]time.Duration{"alice": 90 * time.Second, "bob": 90 * time.Second, "carol": -5 * time.Minute} {
		mustStatus(t, verifyWith(t, g, n, phoneCode(t, g, secrets[n], off)), http.StatusUnauthorized, n+" drifted code")
	}
	for n, want := range map[string]int{"alice": 3, "bob": 3, "carol": -10} {
		waitDrift(t, g, n, func(o []store.DriftObservation) bool { return len(o) == 1 && o[0].Steps == want })
	}

	settings = root.get("/.authgate/admin/settings")
	for _, want := range []string{
		"The server clock is likely ~90 s behind", "2 users' codes are off by the same amount",
		"timedatectl set-ntp true",
		"<strong>carol</strong>: phone clock ~5 min behind: enable automatic time on the phone",
	} {
		if !strings.Contains(settings.body, want) {
			i := strings.Index(settings.body, "drift-heading")
			t.Fatalf("settings page lacks %q: %s", want, settings.body[max(0, i):])
		}
	}
	users := root.get("/.authgate/admin/users")
	users.body = html.UnescapeString(users.body)
	for _, want := range []string{
		"Refused codes off by -10 steps (5 min): phone clock ~5 min behind: enable automatic time on the phone.",
		"Refused codes off by +3 steps (90 s): matches the server clock, which is likely ~90 s behind",
		`action="/.authgate/admin/users/resync"`,
	} {
		if !strings.Contains(users.body, want) {
			i := strings.Index(users.body, "<tbody>")
			t.Fatalf("users page lacks %q: %s", want, users.body[max(0, i):])
		}
	}

	// The admin resyncs carol's phone (5 minutes behind).
	form := root.post("/.authgate/admin/users", "/.authgate/admin/users/resync", url.Values{"user": {"carol"}})
	mustStatus(t, form, http.StatusOK, "resync form")
	if !strings.Contains(form.body, `name="code2"`) || !strings.Contains(form.body, "<strong>carol</strong>") {
		t.Fatalf("resync form: %.1500s", form.body)
	}
	code1 := phoneCode(t, g, secrets["carol"], -5*time.Minute)
	g.clock.Advance(30 * time.Second)
	code2 := phoneCode(t, g, secrets["carol"], -5*time.Minute)
	r := root.post("/.authgate/admin/users", "/.authgate/admin/users/resync", url.Values{"user": {"carol"}, "code1": {code1}, "code2": {code2}})
	mustStatus(t, r, http.StatusSeeOther, "admin resync")
	done := root.get(location(r))
	done.body = html.UnescapeString(done.body)
	if !strings.Contains(done.body, "codes are now checked at -10 steps (5 min)") || !strings.Contains(done.body, "Clock correction applied: -10 steps (5 min), phone ~5 min behind") {
		t.Fatalf("users page after resync: %.4000s", done.body)
	}
	evs, _ := g.srv.Store().ListAudit(context.Background(), store.AuditChanges, 5)
	if len(evs) == 0 || evs[0].Action != "totp_resynced" || evs[0].Actor != "root" || evs[0].Target != "carol" {
		t.Fatalf("audit: %+v", evs)
	}
	g.clock.Advance(30 * time.Second)
	mustStatus(t, verifyWith(t, g, "carol", phoneCode(t, g, secrets["carol"], -5*time.Minute)), http.StatusSeeOther, "carol after resync")
	mustStatus(t, verifyWith(t, g, "carol", code2), http.StatusUnauthorized, "resync code replayed")
}
