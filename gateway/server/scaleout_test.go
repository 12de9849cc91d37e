package server_test

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
)

// settingsMaxAge is how stale an instance's view of the run-time settings
// may be (settings.Source's cache, 2 s, as server.go builds it): a change
// made on one instance must be seen by all once this has passed on their
// clocks.
const settingsMaxAge = 2 * time.Second

// backendHeader is set by the test balancer on every answer: the index of
// the instance that served it.
const backendHeader = "X-Test-Backend"

// balancer is a round-robin HTTP load balancer in front of several
// gateway instances, as a deployment puts one: every request goes to the
// next instance, whatever its cookies. It keeps the Host the browser
// used and appends the peer to X-Forwarded-For, like nginx or HAProxy.
type balancer struct {
	srv     *httptest.Server
	proxies []*httputil.ReverseProxy
	next    atomic.Uint64
}

func newBalancer(t *testing.T, gws ...*gateway) *balancer {
	t.Helper()
	lb := &balancer{}
	for i, g := range gws {
		target, err := url.Parse(g.URL)
		if err != nil {
			t.Fatal(err)
		}
		lb.proxies = append(lb.proxies, &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.Out.Host = r.In.Host
				// Rewrite drops the inbound X-Forwarded-For; keep it and
				// append the peer, as a proxy in a chain does.
				r.Out.Header["X-Forwarded-For"] = r.In.Header["X-Forwarded-For"]
				r.SetXForwarded()
			},
			ModifyResponse: func(res *http.Response) error {
				res.Header.Set(backendHeader, strconv.Itoa(i))
				return nil
			},
		})
	}
	lb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := (lb.next.Add(1) - 1) % uint64(len(lb.proxies))
		lb.proxies[i].ServeHTTP(w, r)
	}))
	t.Cleanup(lb.srv.Close)
	return lb
}

// threeInstances starts three gateways (three server.New) on one
// redis-server, with one secret key and one clock, behind a round-robin
// balancer. The returned gateway is the balancer's front: its browsers
// talk to whichever instance is next; its clock is every instance's.
func threeInstances(t *testing.T, mode string, adjust func(*config.Config)) (front *gateway, instances []*gateway) {
	t.Helper()
	rs := redistest.Start(t, redistest.Options{})
	key := hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	clk := testkit.NewClock(time.Now())
	up := newUpstream(t)
	for range 3 {
		g := startGatewayWith(t, gwOpts{mode: mode, clock: clk}, func(c *config.Config) {
			c.Store.Driver = "redis"
			c.Store.Redis.Addrs = []string{rs.Addr()}
			c.SecretKey = key
			// The balancer (127.0.0.1) is the one proxy believed.
			c.TrustedProxies = []string{"127.0.0.1"}
			c.Routes = []config.Route{{Name: "panel", PathPrefix: "/", Upstream: up.URL, Policy: config.PolicyTwoFactor,
				IdentityHeaders: config.IdentityHeaders{User: "Remote-User", Groups: "Remote-Groups"}}}
			if adjust != nil {
				adjust(c)
			}
		})
		instances = append(instances, g)
	}
	lb := newBalancer(t, instances...)
	front = &gateway{URL: lb.srv.URL, srv: instances[0].srv, clock: clk, cfg: instances[0].cfg, http: lb.srv}
	return front, instances
}

// backendOf is the instance that answered r.
func backendOf(t *testing.T, r resp) int {
	t.Helper()
	i, err := strconv.Atoi(r.header.Get(backendHeader))
	if err != nil {
		t.Fatalf("answer without %s: %v", backendHeader, err)
	}
	return i
}

// upstreamUser is the Remote-User the upstream echo saw; "" if the
// answer did not come from the upstream.
func upstreamUser(r resp) string {
	var s seen
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &s) != nil {
		return ""
	}
	if v := s.Headers["Remote-User"]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// onEveryInstance sends GET path through the balancer until each of the
// n instances has answered once, and checks each answer.
func onEveryInstance(t *testing.T, b *browser, n int, path string, check func(r resp) string) {
	t.Helper()
	got := map[int]bool{}
	for range 3 * n {
		r := b.get(path)
		i := backendOf(t, r)
		if msg := check(r); msg != "" {
			t.Fatalf("instance %d: GET %s: %s (status %d, Location %q): %.300s", i, path, msg, r.status, location(r), r.body)
		}
		got[i] = true
		if len(got) == n {
			return
		}
	}
	t.Fatalf("GET %s reached only instances %v", path, got)
}

// Three instances on one Redis behind a round-robin balancer behave as
// one gateway: a session made on one works on all; failures spread over
// the instances add up to one ban, per user and per address; a code used
// on one is a replay on the others; and a 2FA mode change made through
// the admin page on one reaches all within settingsMaxAge.
func TestThreeInstancesBehindBalancer(t *testing.T) {
	const maxFailures = 5
	front, inst := threeInstances(t, "off", func(c *config.Config) { c.Regulation.MaxFailures = maxFailures })
	n := len(inst)
	front.addUser(t, "carol", "correct horse")
	front.addAdmin(t, "root", "root password 1")

	t.Run("a session works on every instance", func(t *testing.T) {
		b := front.browser(t)
		r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"carol"}, "password": {"correct horse"}, "rd": {"/panel"}})
		mustStatus(t, r, http.StatusSeeOther, "carol's password (mode off)")
		made := backendOf(t, r)
		onEveryInstance(t, b, n, "/panel", func(r resp) string {
			if upstreamUser(r) != "carol" {
				return fmt.Sprintf("session made on instance %d not honoured", made)
			}
			return ""
		})
	})

	t.Run("a mode change reaches every instance", func(t *testing.T) {
		carol := front.browser(t)
		login(t, carol, "carol", "correct horse")
		// Every instance has read the settings (mode off) into its cache.
		onEveryInstance(t, carol, n, "/panel", func(r resp) string {
			if upstreamUser(r) != "carol" {
				return "password-only session refused in mode off"
			}
			return ""
		})
		root := front.browser(t)
		login(t, root, "root", "root password 1")
		r := root.post("/.authgate/admin/settings", "/.authgate/admin/settings", url.Values{"mode": {"required"}, "issuer": {"Test Panel"}})
		mustStatus(t, r, http.StatusSeeOther, "admin sets mode required")
		if !strings.HasSuffix(location(r), "done=saved") {
			t.Fatalf("settings not saved: went to %q", location(r))
		}
		t.Logf("mode changed through instance %d", backendOf(t, r))
		front.clock.Advance(settingsMaxAge)
		// Raising the mode ends every session that has not passed a
		// code, on every instance: carol signs in again.
		onEveryInstance(t, carol, n, "/panel", func(r resp) string {
			if r.status != http.StatusFound || !strings.HasPrefix(location(r), "/.authgate/login") {
				return "mode required did not end a session without 2FA"
			}
			return ""
		})
	})

	// From here on the mode is required.
	var secret string
	t.Run("a code used on one instance is a replay on the others", func(t *testing.T) {
		front.addUser(t, "alice", "correct horse")
		secret = secretEnrol(t, front, front.browserAfterLogin(t, "alice"))
		code := codeFor(t, secret, front.clock.Now())
		b := front.browser(t)
		login(t, b, "alice", "correct horse")
		r := b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {code}})
		mustStatus(t, r, http.StatusSeeOther, "alice's code")
		accepted := backendOf(t, r)
		refused := map[int]bool{}
		// Each replay counts as a failure: stay below the ban.
		for range maxFailures - 1 {
			b := front.browser(t)
			login(t, b, "alice", "correct horse")
			r := b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {code}})
			mustStatus(t, r, http.StatusUnauthorized, "the same code again")
			if !strings.Contains(r.body, "The security code is invalid.") {
				t.Fatalf("replay answer lacks the invalid-code message: %.300s", r.body)
			}
			if i := backendOf(t, r); i != accepted {
				refused[i] = true
			}
			if len(refused) == n-1 {
				break
			}
		}
		if len(refused) != n-1 {
			t.Fatalf("code accepted on instance %d was refused on %v only", accepted, refused)
		}
		// Two wrong codes count against alice: start the next part clean.
		front.clock.Advance(30 * time.Second)
		signInAgain(t, front, front.browser(t), "alice", "correct horse", secret)
	})

	t.Run("failures on different instances add up to a ban", func(t *testing.T) {
		front.addUser(t, "dave", "dave password")
		perInstance := map[int]int{}
		for i := range maxFailures {
			r := loginAs(front.browserFrom(t, fmt.Sprintf("10.7.0.%d", i)), "dave", "wrong")
			if i < maxFailures-1 {
				mustStatus(t, r, http.StatusUnauthorized, "dave's wrong password")
			} else {
				mustBanned(t, r, "dave's failure that starts the ban", "") // says so at once
			}
			perInstance[backendOf(t, r)]++
		}
		for i, c := range perInstance {
			if c >= maxFailures {
				t.Fatalf("instance %d saw all %d failures: not spread %v", i, c, perInstance)
			}
		}
		banned := map[int]bool{}
		for i := range 3 * n {
			r := loginAs(front.browserFrom(t, fmt.Sprintf("10.7.1.%d", i)), "dave", "dave password")
			mustBanned(t, r, "dave's right password after failures on every instance", "")
			banned[backendOf(t, r)] = true
			if len(banned) == n {
				break
			}
		}
		if len(banned) != n {
			t.Fatalf("dave banned on instances %v only", banned)
		}
	})

	t.Run("an address failing on different instances is banned on all", func(t *testing.T) {
		front.addUser(t, "erin", "erin password")
		const spray = "192.0.2.77"
		perInstance := map[int]int{}
		for i := range maxFailures {
			r := loginAs(front.browserFrom(t, spray), fmt.Sprintf("guess%d", i), "x")
			if i < maxFailures-1 {
				mustStatus(t, r, http.StatusUnauthorized, "unknown user from the spraying address")
			} else {
				mustBanned(t, r, "the spray that starts the address's ban", "")
			}
			perInstance[backendOf(t, r)]++
		}
		if len(perInstance) < 2 {
			t.Fatalf("failures not spread over instances: %v", perInstance)
		}
		banned := map[int]bool{}
		for range 3 * n {
			r := loginAs(front.browserFrom(t, spray), "erin", "erin password")
			mustBanned(t, r, "erin from the banned address", "")
			banned[backendOf(t, r)] = true
			if len(banned) == n {
				break
			}
		}
		if len(banned) != n {
			t.Fatalf("address banned on instances %v only", banned)
		}
		r := loginAs(front.browserFrom(t, "192.0.2.78"), "erin", "erin password")
		mustStatus(t, r, http.StatusSeeOther, "erin from another address")
	})

	if secret == "" {
		return // the code part failed or was filtered out by -run
	}
	// Logins after all of this still work through every instance.
	b := front.browser(t)
	signInAgain(t, front, b, "alice", "correct horse", secret)
	onEveryInstance(t, b, n, "/panel", func(r resp) string {
		if upstreamUser(r) != "alice" {
			return "alice's password + code session not honoured"
		}
		return ""
	})
}

// browserAfterLogin signs user in (password only) through g and returns
// the browser, at the enrolment or code step in mode required.
func (g *gateway) browserAfterLogin(t *testing.T, user string) *browser {
	t.Helper()
	b := g.browser(t)
	login(t, b, user, "correct horse")
	return b
}

// redisMonitor records every command a redis-server runs (MONITOR) so a
// test can count what one request costs.
type redisMonitor struct {
	lines  chan string
	marker redis.UniversalClient
	seq    int
}

func monitorRedis(t *testing.T, rs *redistest.Server) *redisMonitor {
	t.Helper()
	conn, err := net.Dial("tcp", rs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	if line, err := rd.ReadString('\n'); err != nil || strings.TrimSpace(line) != "+OK" {
		t.Fatalf("MONITOR: %q, %v", line, err)
	}
	m := &redisMonitor{lines: make(chan string, 4096), marker: rs.Client(t)}
	go func() {
		defer close(m.lines)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			m.lines <- strings.TrimSpace(line)
		}
	}()
	return m
}

// mark sends a marker through MONITOR and waits until it comes back, so
// every earlier command has been read.
func (m *redisMonitor) mark(t *testing.T, keep func(line string)) {
	t.Helper()
	m.seq++
	marker := fmt.Sprintf("authgate-test-mark-%d", m.seq)
	if err := m.marker.Echo(t.Context(), marker).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-m.lines:
			if !ok {
				t.Fatal("MONITOR connection closed")
			}
			if strings.Contains(line, marker) {
				return
			}
			if keep != nil {
				keep(line)
			}
		case <-deadline:
			t.Fatal("MONITOR marker did not come back within 10s")
		}
	}
}

// commands runs action and returns the commands Redis ran for it: those
// the gateway sent, and those its Lua scripts ran.
func (m *redisMonitor) commands(t *testing.T, action func()) (sent, scripted []string) {
	t.Helper()
	m.mark(t, nil)
	action()
	m.mark(t, func(line string) {
		// +1700000000.123456 [0 127.0.0.1:5555] "GET" "key" ...
		src, cmd, ok := strings.Cut(line, "] ")
		if !ok {
			return
		}
		if strings.HasSuffix(src, " lua") {
			scripted = append(scripted, shortCommand(cmd))
		} else {
			sent = append(sent, shortCommand(cmd))
		}
	})
	return sent, scripted
}

var hexRun = regexp.MustCompile(`[0-9a-f]{16,}`)

// shortCommand is a command's name and first argument (its key), with
// hashes and script digests shortened.
func shortCommand(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) > 2 {
		f = f[:2]
	}
	return hexRun.ReplaceAllString(strings.ReplaceAll(strings.Join(f, " "), `"`, ""), "…")
}

// The Redis commands behind one authenticated request and one sign-in
// (password + code), counted with MONITOR on the test's own redis-server.
// docs/scaling.md quotes these numbers. An authenticated request in the
// steady state (session fresh, settings cached) must cost at most a
// session read and a user read.
func TestRedisCommandsPerRequest(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	g := startGatewayWith(t, gwOpts{mode: "required"}, func(c *config.Config) {
		c.Store.Driver = "redis"
		c.Store.Redis.Addrs = []string{rs.Addr()}
	})
	g.addUser(t, "alice", "correct horse")
	secret := secretEnrol(t, g, g.browserAfterLogin(t, "alice"))
	mon := monitorRedis(t, rs)
	report := func(what string, action func()) []string {
		sent, scripted := mon.commands(t, action)
		t.Logf("%s: %d commands sent %v; %d more run by scripts %v", what, len(sent), sent, len(scripted), scripted)
		return sent
	}

	b := g.browser(t)
	var r resp
	report("sign-in: GET login form", func() { r = b.get("/.authgate/login") })
	mustStatus(t, r, http.StatusOK, "login form")
	tok := csrfRE.FindStringSubmatch(r.body)
	report("sign-in: POST password", func() {
		r = b.do("POST", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "csrf_token": {tok[1] + tok[2]}}, nil)
	})
	mustStatus(t, r, http.StatusSeeOther, "password")
	report("sign-in: GET code form", func() { r = b.get("/.authgate/verify") })
	mustStatus(t, r, http.StatusOK, "code form")
	tok = csrfRE.FindStringSubmatch(r.body)
	code := codeFor(t, secret, g.clock.Now())
	report("sign-in: POST code", func() {
		r = b.do("POST", "/.authgate/verify", url.Values{"code": {code}, "csrf_token": {tok[1] + tok[2]}}, nil)
	})
	mustStatus(t, r, http.StatusSeeOther, "code")

	report("first request after sign-in", func() { r = b.get("/dashboard") })
	mustStatus(t, r, http.StatusOK, "first request")
	// The cheapest of three: a cache in front of Redis may still drop an
	// entry when the sign-in's invalidations arrive late.
	var steady []string
	for i := range 3 {
		sent := report(fmt.Sprintf("authenticated request (steady state, #%d)", i+1), func() { r = b.get("/dashboard") })
		mustStatus(t, r, http.StatusOK, "steady request")
		if i == 0 || len(sent) < len(steady) {
			steady = sent
		}
	}
	if len(steady) > 2 {
		t.Errorf("an authenticated request sent %d commands %v, want at most 2 (session, user)", len(steady), steady)
	}
	// Past the touch interval (1 min with the default idle_timeout) and
	// the settings cache: the costliest authenticated request.
	g.clock.Advance(61 * time.Second)
	report("authenticated request after 61 s (touch + settings reload)", func() { r = b.get("/dashboard") })
	mustStatus(t, r, http.StatusOK, "request after the touch interval")
	report("request without a session", func() { r = g.browser(t).get("/dashboard") })
	mustStatus(t, r, http.StatusFound, "anonymous request")
	wrong := g.browser(t)
	page := wrong.get("/.authgate/login")
	tok = csrfRE.FindStringSubmatch(page.body)
	report("failed sign-in (wrong password)", func() {
		r = wrong.do("POST", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"wrong"}, "csrf_token": {tok[1] + tok[2]}}, nil)
	})
	mustStatus(t, r, http.StatusUnauthorized, "wrong password")

	// Footprint, for the design note: bytes Redis holds per session and
	// per user (MEMORY USAGE, key and value with overhead).
	raw := rs.Client(t)
	for _, pattern := range []string{"authgate:s:*", "authgate:{u:alice}:*"} {
		keys, err := raw.Keys(t.Context(), pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			n, err := raw.MemoryUsage(t.Context(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("MEMORY USAGE %s: %d bytes", shortCommand(k), n)
		}
	}
}
