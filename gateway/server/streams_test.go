package server_test

// Issue "Open WebSockets outlive the session": a panel's terminal (a
// WebSocket through the gateway) kept running commands for minutes after
// `authgate sessions revoke`, and a streamed response kept streaming,
// since the gate only looked at the session when the request arrived.
// Every way a session ends must now end its open tunnels and streams
// within about a second, on every instance sharing the store.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/authgate/authgate/gateway/account"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/demo"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/store"
)

const (
	// streamEndBound is how long a tunnel may take to close after its
	// session ended before the test fails: generous, since the watcher
	// sweeps once a second (the log shows the real time).
	streamEndBound = 5 * time.Second
	// streamHold is how long a tunnel is used before its session ends,
	// so the watcher has re-checked it (and let it be) at least once: it
	// checks what has been open for a whole second, every second.
	streamHold = 2500 * time.Millisecond
	// The demo panel's /events: 50 lines 400 ms apart, 20 s in all;
	// far longer than streamHold + streamEndBound.
	eventInterval = 400 * time.Millisecond
	eventCount    = 50
)

// streamRoutes is the demo panel (WebSocket echo at /ws, a long streamed
// /events) as the one two_factor route.
func streamRoutes(t *testing.T) []config.Route {
	t.Helper()
	panel := httptest.NewServer(demo.NewPanel(demo.PanelOptions{EventInterval: eventInterval, EventCount: eventCount}))
	t.Cleanup(panel.Close)
	return []config.Route{{Name: "panel", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyTwoFactor}}
}

// tunnel is a WebSocket to the demo panel's echo through a gateway, read
// continuously; closed is closed when the connection ends.
type tunnel struct {
	conn   *websocket.Conn
	msgs   chan string
	closed chan struct{}
	seq    int
}

// openTunnel dials base (a gateway's URL) with the session cookie id and
// checks that the echo answers.
func openTunnel(t *testing.T, base, id string) *tunnel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	hdr := http.Header{"Origin": {base}, "Cookie": {"authgate_session=" + id}}
	conn, res, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Fatalf("websocket through the gateway: %v (status %d)", err, status)
	}
	tu := &tunnel{conn: conn, msgs: make(chan string, 16), closed: make(chan struct{})}
	t.Cleanup(func() { _ = conn.CloseNow() })
	go func() {
		defer close(tu.closed)
		for {
			_, msg, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			tu.msgs <- string(msg)
		}
	}()
	tu.echo(t, "opened")
	return tu
}

// echo sends a message and fails unless it comes back.
func (tu *tunnel) echo(t *testing.T, what string) {
	t.Helper()
	tu.seq++
	msg := fmt.Sprintf("echo %d", tu.seq)
	if err := tu.conn.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("tunnel %s: write: %v", what, err)
	}
	select {
	case got := <-tu.msgs:
		if got != msg {
			t.Fatalf("tunnel %s: echo %q, want %q", what, got, msg)
		}
	case <-tu.closed:
		t.Fatalf("tunnel %s: closed", what)
	case <-time.After(5 * time.Second):
		t.Fatalf("tunnel %s: no echo within 5s", what)
	}
}

// longStream is a streamed response from the panel's /events through a
// gateway, read line by line; done is closed when it ends.
type longStream struct {
	lines atomic.Int32
	done  chan struct{}
}

func openStream(t *testing.T, base, id string) *longStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", "authgate_session="+id)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("streamed response: %v", err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("streamed response: status %d", res.StatusCode)
	}
	s := &longStream{done: make(chan struct{})}
	first := make(chan struct{})
	go func() {
		defer close(s.done)
		rd := bufio.NewReader(res.Body)
		for {
			if _, err := rd.ReadString('\n'); err != nil {
				return
			}
			if s.lines.Add(1) == 1 {
				close(first)
			}
		}
	}()
	select {
	case <-first:
	case <-time.After(5 * time.Second):
		t.Fatal("streamed response: no first line within 5s")
	}
	return s
}

// live is a tunnel and a stream of one session, both in use.
type live struct {
	tun *tunnel
	str *longStream
}

func openLive(t *testing.T, base, id string) live {
	t.Helper()
	return live{tun: openTunnel(t, base, id), str: openStream(t, base, id)}
}

// awaitEnd fails unless the tunnel and the stream both end within
// streamEndBound of since (when the session was ended); the stream must
// have been cut, not have run to its end.
func (l live) awaitEnd(t *testing.T, what string, since time.Time) {
	t.Helper()
	limit := time.After(time.Until(since.Add(streamEndBound)))
	for _, c := range []struct {
		name string
		done <-chan struct{}
	}{{"WebSocket", l.tun.closed}, {"streamed response", l.str.done}} {
		select {
		case <-c.done:
		case <-limit:
			t.Fatalf("after %s the %s is still open %v later", what, c.name, streamEndBound)
		}
	}
	if n := l.str.lines.Load(); n >= eventCount {
		t.Fatalf("after %s the stream ran to its end (%d lines)", what, n)
	}
	t.Logf("after %s: tunnel and stream closed within %v", what, time.Since(since).Round(10*time.Millisecond))
}

// endCase is one way a session ends: act ends user's session, which
// browser b holds.
type endCase struct {
	name string
	act  func(t *testing.T, user string, b *browser)
}

// runEndCases checks each case on its own user: signUp signs the user
// in (one after another: sign-ins move the clock) and returns the
// browser and session id; then every session opens a tunnel and a stream
// on base, all are used for streamHold (the watcher re-checks them and
// lets them be), each case's act ends its session and its tunnel and
// stream must close. A session left alone keeps its own all along, and
// the re-checks that let it be log nothing.
func runEndCases(t *testing.T, base string, logs *testkit.SyncBuffer, cases []endCase,
	signUp func(t *testing.T, user string) (*browser, string)) {
	t.Helper()
	type running struct {
		endCase
		user string
		b    *browser
		id   string
		l    live
	}
	runs := make([]*running, len(cases))
	for i, tc := range cases {
		user := fmt.Sprintf("streamer%d", i)
		b, id := signUp(t, user)
		runs[i] = &running{endCase: tc, user: user, b: b, id: id}
	}
	_, keepID := signUp(t, "keeper")
	for _, r := range runs {
		r.l = openLive(t, base, r.id)
	}
	keeper := openLive(t, base, keepID)
	keeperLines := strings.Count(logs.String(), `"keeper"`)
	time.Sleep(streamHold)
	for _, r := range append(runs, &running{endCase: endCase{name: "left alone"}, l: keeper}) {
		r.l.check(t, "before the sessions end ("+r.name+")")
	}
	ended := make([]time.Time, len(runs))
	for i, r := range runs {
		ended[i] = time.Now()
		r.act(t, r.user, r.b)
	}
	for i, r := range runs {
		t.Run(r.name, func(t *testing.T) { r.l.awaitEnd(t, r.name, ended[i]) })
	}
	t.Run("session left alone", func(t *testing.T) {
		keeper.check(t, "after the other sessions ended")
		if n := strings.Count(logs.String(), `"keeper"`); n != keeperLines {
			t.Errorf("%d log lines about keeper while its tunnel was only re-checked", n-keeperLines)
		}
	})
}

// check fails unless the tunnel still echoes and the stream still runs.
func (l live) check(t *testing.T, what string) {
	t.Helper()
	l.tun.echo(t, what)
	select {
	case <-l.str.done:
		t.Fatalf("%s: the stream ended while its session was valid (%d lines)", what, l.str.lines.Load())
	default:
	}
}

// signUp2FA creates user and signs them in with password and enrolment
// on g (mode required); it returns the browser and its session id.
func signUp2FA(t *testing.T, g *gateway, user string) (*browser, string) {
	t.Helper()
	g.addUser(t, user, "correct horse", "ops")
	b := g.browser(t)
	login(t, b, user, "correct horse")
	secretEnrol(t, g, b)
	return b, sessionCookie(t, g, b)
}

// Every way an admin or the user ends a session closes that session's
// WebSocket and streamed response within about a second, on both stores;
// each close is logged (stream_closed, with its reason) and counted.
func TestSessionEndClosesStreams(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			var logs testkit.SyncBuffer
			g := served(t, startGatewayWith(t, gwOpts{driver: driver, mode: "required", routes: streamRoutes(t), logw: &logs},
				func(c *config.Config) { c.Metrics.Listen = "127.0.0.1:0" }))
			svc := userAdmin(g)
			ctx := context.Background()
			newHash := func(t *testing.T) string {
				h, err := hasher().Hash("another password")
				if err != nil {
					t.Fatal(err)
				}
				return h
			}
			cases := []endCase{
				{"logout", func(t *testing.T, _ string, b *browser) {
					mustStatus(t, b.post("/.authgate/logout", "/.authgate/logout", url.Values{}), http.StatusSeeOther, "logout")
				}},
				{"sessions revoked by an admin", func(t *testing.T, user string, _ *browser) {
					if _, err := svc.RevokeSessions(ctx, user); err != nil {
						t.Fatal(err)
					}
				}},
				{"password changed on the account page", func(t *testing.T, _ string, b *browser) {
					r := b.post(account.PathPassword, account.PathPassword, url.Values{
						"current_password": {"correct horse"}, "new_password": {"another password"}, "new_password_repeat": {"another password"}})
					mustStatus(t, r, http.StatusSeeOther, "password change")
				}},
				{"password reset by an admin", func(t *testing.T, user string, _ *browser) {
					if err := svc.ResetPassword(ctx, user, newHash(t)); err != nil {
						t.Fatal(err)
					}
				}},
				{"2FA disabled by an admin", func(t *testing.T, user string, _ *browser) {
					if _, err := svc.DisableTwoFactor(ctx, []string{user}); err != nil {
						t.Fatal(err)
					}
				}},
				{"role changed by an admin", func(t *testing.T, user string, _ *browser) {
					if err := svc.SetRole(ctx, user, store.RoleAdmin); err != nil {
						t.Fatal(err)
					}
				}},
				{"user deleted by an admin", func(t *testing.T, user string, _ *browser) {
					if err := svc.Delete(ctx, user); err != nil {
						t.Fatal(err)
					}
				}},
			}
			runEndCases(t, g.URL, &logs, cases, func(t *testing.T, user string) (*browser, string) { return signUp2FA(t, g, user) })
			out := logs.String()
			if n := strings.Count(out, `"event":"stream_closed","reason":"signed_out"`); n != 2*len(cases) {
				t.Errorf("%d stream_closed lines with reason signed_out, want %d (a tunnel and a stream per case)", n, 2*len(cases))
			}
			// Their access log lines (written as their handlers return)
			// say so too.
			deadline := time.Now().Add(5 * time.Second)
			for strings.Count(logs.String(), `"result":"stream_closed"`) < 2*len(cases) {
				if time.Now().After(deadline) {
					t.Fatalf("%d access log lines with result stream_closed, want %d", strings.Count(logs.String(), `"result":"stream_closed"`), 2*len(cases))
				}
				time.Sleep(20 * time.Millisecond)
			}
			closed, _ := value(scrape(t, g), "authgate_streams_closed_total", map[string]string{"reason": "signed_out"})
			if int(closed) != 2*len(cases) {
				t.Errorf("authgate_streams_closed_total{reason=signed_out} = %v, want %d", closed, 2*len(cases))
			}
		})
	}
}

// Two instances on one Redis: a session ended on A (an admin revoke, the
// command line, a logout, a delete) closes the tunnel and stream the same
// session holds open on B: B's watcher reads through B's cache, which the
// invalidation feed keeps current.
func TestSessionEndOnOneInstanceClosesStreamsOnAnother(t *testing.T) {
	var logs testkit.SyncBuffer
	routes := streamRoutes(t) // one panel behind both
	a, b := twoInstances(t, func(c *config.Config) { c.Routes = slices.Clone(routes) })
	svcA := userAdmin(a)
	cli := cliAdmin(t, a.cfg)
	ctx := context.Background()
	cases := []endCase{
		{"sessions revoked by an admin on A", func(t *testing.T, user string, _ *browser) {
			if _, err := svcA.RevokeSessions(ctx, user); err != nil {
				t.Fatal(err)
			}
		}},
		{"sessions revoked from the command line", func(t *testing.T, user string, _ *browser) {
			if _, err := cli.RevokeSessions(ctx, user); err != nil {
				t.Fatal(err)
			}
		}},
		{"logout on A", func(t *testing.T, _ string, onA *browser) {
			mustStatus(t, onA.post("/.authgate/logout", "/.authgate/logout", url.Values{}), http.StatusSeeOther, "logout")
		}},
		{"user deleted from the command line", func(t *testing.T, user string, _ *browser) {
			if err := cli.Delete(ctx, user); err != nil {
				t.Fatal(err)
			}
		}},
	}
	runEndCases(t, b.URL, &logs, cases, func(t *testing.T, user string) (*browser, string) {
		onA, id := signUp2FA(t, a, user)
		advanceBoth(30*time.Second, b) // secretEnrol moved A's clock
		return onA, id
	})
}

// An open tunnel is not activity: a session whose browser makes no
// request ends at its idle timeout, tunnel or not (the watcher's
// re-checks never refresh it), and at its absolute end however busy it
// is; its tunnel and stream close then.
func TestExpiryClosesStreams(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			g := startGatewayWith(t, gwOpts{driver: driver, mode: "off", routes: streamRoutes(t)}, func(c *config.Config) {
				c.Session.IdleTimeout = 10 * time.Minute
				c.Session.MaxLifetime = 30 * time.Minute
			})
			g.addUser(t, "idler", "correct horse")
			g.addUser(t, "busy", "correct horse")
			idler, busy := g.browser(t), g.browser(t)
			login(t, idler, "idler", "correct horse")
			login(t, busy, "busy", "correct horse")
			idle := openLive(t, g.URL, sessionCookie(t, g, idler))
			// 9 of idler's 10 idle minutes pass with only the tunnel
			// open, and the watcher re-checks it then: still valid.
			g.clock.Advance(9 * time.Minute)
			mustStatus(t, busy.get("/"), http.StatusOK, "a busy session's request")
			time.Sleep(streamHold)
			idle.check(t, "9 minutes into the idle timeout")
			// Two more: 11 minutes since idler's last request. Had a
			// re-check counted as use, the session would be 2 minutes
			// idle and live on.
			g.clock.Advance(2 * time.Minute)
			idle.awaitEnd(t, "the idle timeout", time.Now())
			mustStatus(t, idler.get("/"), http.StatusFound, "a request after the idle timeout")

			// busy's session (signed in 11 minutes ago, used 2 minutes
			// ago) is kept from going idle by a request every 8 minutes...
			l := openLive(t, g.URL, sessionCookie(t, g, busy))
			for range 2 {
				g.clock.Advance(8 * time.Minute)
				mustStatus(t, busy.get("/"), http.StatusOK, "a busy session's request")
				l.tun.echo(t, "while the user is busy")
			}
			// ...until its 30 minutes are up (33 now, 6 since the last
			// request).
			g.clock.Advance(6 * time.Minute)
			l.awaitEnd(t, "the absolute lifetime", time.Now())
		})
	}
}

// Raising the 2FA mode from off to required ends the tunnels of a
// session that passed only a password, once the instance sees the new
// mode (its settings cache, settingsMaxAge).
func TestModeRaisedClosesPasswordOnlyStreams(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			var logs testkit.SyncBuffer
			g := startGateway(t, gwOpts{driver: driver, mode: "off", routes: streamRoutes(t), logw: &logs})
			g.addUser(t, "carol", "correct horse")
			b := g.browser(t)
			login(t, b, "carol", "correct horse")
			l := openLive(t, g.URL, sessionCookie(t, g, b))
			time.Sleep(streamHold)
			l.check(t, "in mode off")
			if err := userAdmin(g).SetMode(context.Background(), "required"); err != nil {
				t.Fatal(err)
			}
			g.clock.Advance(settingsMaxAge)
			l.awaitEnd(t, "the mode was raised to required", time.Now())
			// The reason is the session's: second_factor_required while the
			// gate challenges such a session, signed_out where the raised
			// mode voids it.
			if !strings.Contains(logs.String(), `"reason":"second_factor_required","user":"carol"`) &&
				!strings.Contains(logs.String(), `"reason":"signed_out","user":"carol"`) {
				t.Errorf("no stream_closed line for carol: %.3000s", logs.String())
			}
		})
	}
}

// A change to the user's groups reaches running requests too: the
// upstream was told the old groups when the tunnel opened, so the tunnel
// is cut when the groups differ (identity_changed) or no longer pass the
// route's allow list (not_allowed).
func TestGroupChangeClosesStreams(t *testing.T) {
	var logs testkit.SyncBuffer
	routes := streamRoutes(t)
	routes[0].Allow.Groups = []string{"ops", "web"}
	g := startGateway(t, gwOpts{mode: "off", routes: routes, logw: &logs})
	for _, tc := range []struct {
		user, reason string
		groups       []string
	}{
		{"moved", "identity_changed", []string{"web"}},
		{"dropped", "not_allowed", nil},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			g.addUser(t, tc.user, "correct horse", "ops")
			b := g.browser(t)
			login(t, b, tc.user, "correct horse")
			l := openLive(t, g.URL, sessionCookie(t, g, b))
			time.Sleep(streamHold)
			l.check(t, "before the change")
			if _, err := g.srv.Store().UpdateUser(context.Background(), tc.user, func(u *store.User) error {
				u.Groups = tc.groups
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			l.awaitEnd(t, "the groups changed", time.Now())
			if want := `"reason":"` + tc.reason + `","user":"` + tc.user + `"`; !strings.Contains(logs.String(), want) {
				t.Errorf("no stream_closed line with %s: %.3000s", want, logs.String())
			}
		})
	}
}
