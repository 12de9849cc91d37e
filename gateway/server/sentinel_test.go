package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/server"
)

// onSentinel points a gateway at a Sentinel set.
func onSentinel(set *redistest.SentinelSet) func(*config.Config) {
	return func(c *config.Config) {
		c.Store.Driver = "redis"
		c.Store.Redis.Addrs = set.SentinelAddrs()
		c.Store.Redis.MasterName = redistest.SentinelMasterName
		c.Store.Redis.SentinelPassword = set.SentinelPassword
	}
}

// A sign-in with password and code, and a proxied request, on a
// three-master Redis Cluster and through Redis Sentinel.
func TestLoginOnClusterAndSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster and sentinel start-up take seconds")
	}
	deployments := []struct {
		name  string
		store func(t *testing.T) func(*config.Config)
	}{
		{"cluster", func(t *testing.T) func(*config.Config) {
			cluster := redistest.StartCluster(t)
			return func(c *config.Config) {
				c.Store.Driver = "redis"
				c.Store.Redis.Addrs = cluster.Addrs()
			}
		}},
		{"sentinel", func(t *testing.T) func(*config.Config) {
			return onSentinel(redistest.StartSentinel(t))
		}},
		// Sentinels with their own password (store.redis.sentinel_password).
		{"sentinel-with-password", func(t *testing.T) func(*config.Config) {
			return onSentinel(redistest.StartSentinelWith(t, redistest.SentinelOptions{Password: "sentinel-secret"}))
		}},
	}
	for _, d := range deployments {
		t.Run(d.name, func(t *testing.T) {
			g := startGatewayWith(t, gwOpts{mode: "required"}, d.store(t))
			g.addUser(t, "alice", "correct horse", "ops")
			secret := secretEnrol(t, g, g.browserAfterLogin(t, "alice"))
			b := g.browser(t)
			r := b.get("/dashboard")
			mustStatus(t, r, http.StatusFound, "before sign-in")
			signInAgain(t, g, b, "alice", "correct horse", secret)
			r = b.get("/dashboard")
			mustStatus(t, r, http.StatusOK, "after password + code")
			if upstreamUser(r) != "alice" {
				t.Fatalf("upstream did not see alice: %.300s", r.body)
			}
			// The code just used (one step ago, still within the skew) is
			// refused on a second sign-in.
			b2 := g.browser(t)
			login(t, b2, "alice", "correct horse")
			used := codeFor(t, secret, g.clock.Now().Add(-30*time.Second))
			r = b2.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {used}})
			mustStatus(t, r, http.StatusUnauthorized, "replayed code")
		})
	}
}

// outcome is one request of the traffic loop.
type outcome struct {
	who        string
	start, end time.Time
	status     int
	location   string
	upstream   string // Remote-User the upstream saw; "" if not reached
	err        error
}

func (o outcome) ok() bool { return o.err == nil && o.status == http.StatusOK }

// trafficLoop sends GET /dashboard as who (with cookie, or none) until
// stop closes, recording every outcome.
func trafficLoop(g *gateway, who, cookie string, stop <-chan struct{}, record func(outcome)) {
	client := &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     g.http.Client().Transport,
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		req, _ := http.NewRequest("GET", g.URL+"/dashboard", nil)
		req.Header.Set("Accept", "text/html")
		if cookie != "" {
			req.Header.Set("Cookie", "authgate_session="+cookie)
		}
		o := outcome{who: who, start: time.Now()}
		res, err := client.Do(req)
		if err != nil {
			o.err = err
		} else {
			body, rerr := io.ReadAll(res.Body)
			_ = res.Body.Close()
			o.err = rerr
			o.status, o.location = res.StatusCode, res.Header.Get("Location")
			o.upstream = upstreamUser(resp{status: res.StatusCode, body: string(body)})
		}
		o.end = time.Now()
		record(o)
		time.Sleep(20 * time.Millisecond)
	}
}

// The master dies (SIGKILL) while signed-in users browse: requests fail
// closed during the outage (5xx or a challenge, never the panel without
// a valid session), Sentinel promotes the replica, and the gateway finds
// it by itself within recoverWithin; every session made before the kill
// works afterwards (they were replicated: the test waits for WAIT 1 on
// the master before killing it), and new sign-ins work. The same holds
// for a requested failover (SENTINEL FAILOVER), where the old master
// stays up as a replica and the gateway must leave its connections to it.
func TestSentinelFailoverDuringTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel failovers take seconds")
	}
	kinds := []struct {
		name     string
		failover func(t *testing.T, set *redistest.SentinelSet) *redistest.Server
	}{
		{"master killed", func(t *testing.T, set *redistest.SentinelSet) *redistest.Server {
			_, promoted := set.KillMaster(t)
			return promoted
		}},
		{"failover requested", func(t *testing.T, set *redistest.SentinelSet) *redistest.Server {
			_, promoted := set.Failover(t)
			return promoted
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { failoverDuringTraffic(t, k.failover) })
	}
}

func failoverDuringTraffic(t *testing.T, failover func(*testing.T, *redistest.SentinelSet) *redistest.Server) {
	const recoverWithin = 10 * time.Second
	set := redistest.StartSentinel(t)
	g := startGatewayWith(t, gwOpts{mode: "required"}, onSentinel(set))
	users := []string{"alice", "bob", "carol"}
	cookies := map[string]string{}
	secrets := map[string]string{}
	for _, u := range users {
		g.addUser(t, u, "correct horse")
		b := g.browserAfterLogin(t, u)
		secrets[u] = secretEnrol(t, g, b)
		cookies[u] = sessionCookie(t, g, b)
		mustStatus(t, b.get("/dashboard"), http.StatusOK, u+" before the kill")
	}
	// Every session write is on the replica before the master dies.
	set.WaitReplicated(t)

	var (
		mu  sync.Mutex
		all []outcome
	)
	record := func(o outcome) { mu.Lock(); all = append(all, o); mu.Unlock() }
	snapshot := func() []outcome { mu.Lock(); defer mu.Unlock(); return append([]outcome(nil), all...) }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() { trafficLoop(g, u, cookies[u], stop, record) })
	}
	wg.Go(func() { trafficLoop(g, "anonymous", "", stop, record) })
	wg.Go(func() { trafficLoop(g, "forged", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", stop, record) })
	stopped := false
	stopTraffic := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopTraffic()

	// waitFor polls the traffic until cond holds, or fails at deadline.
	waitFor := func(what string, within time.Duration, cond func([]outcome) bool) time.Time {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			if cond(snapshot()) {
				return time.Now()
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	everyUserOKAfter := func(since time.Time) func([]outcome) bool {
		return func(os []outcome) bool {
			seen := map[string]bool{}
			for _, o := range os {
				if o.start.After(since) && o.ok() && o.upstream == o.who {
					seen[o.who] = true
				}
			}
			return len(seen) == len(users)
		}
	}
	waitFor("traffic flowing before the kill", 30*time.Second, everyUserOKAfter(time.Now()))

	failoverAt := time.Now()
	promoted := failover(t, set)
	promotedAt := time.Now()
	recoveredAt := waitFor("every user served again after the promotion", recoverWithin, everyUserOKAfter(promotedAt))
	// A little more traffic on the new master, then stop.
	waitFor("more traffic after recovery", 30*time.Second, everyUserOKAfter(recoveredAt))
	stopTraffic()

	var firstFail, lastFail time.Time
	failed, served := map[string]int{}, 0
	var slowest time.Duration
	for _, o := range snapshot() {
		slowest = max(slowest, o.end.Sub(o.start))
		if o.err != nil {
			t.Errorf("%s: request failed at the client (the gateway hung or dropped it): %v", o.who, o.err)
			continue
		}
		authenticated := o.who != "anonymous" && o.who != "forged"
		switch {
		case o.status == http.StatusOK:
			// The panel only ever with the session's own user.
			if !authenticated || o.upstream != o.who {
				t.Errorf("%s got 200 with upstream user %q at %v after the failover began", o.who, o.upstream, o.start.Sub(failoverAt))
			}
			served++
			continue
		case o.status >= 500:
		case o.status == http.StatusFound && strings.HasPrefix(o.location, "/.authgate/login"):
		default:
			t.Errorf("%s: unexpected answer %d %q", o.who, o.status, o.location)
			continue
		}
		if !authenticated {
			continue // challenged or 5xx: the expected answers
		}
		failed[fmt.Sprintf("%d", o.status)]++
		if firstFail.IsZero() || o.start.Before(firstFail) {
			firstFail = o.start
		}
		if o.end.After(lastFail) {
			lastFail = o.end
		}
		if o.start.After(recoveredAt) {
			t.Errorf("%s: %d after the gateway had recovered", o.who, o.status)
		}
	}
	if len(failed) == 0 {
		t.Logf("no signed-in request failed during the failover (reads kept working: a requested failover leaves the old master up, or a local cache answered)")
	} else {
		t.Logf("outage seen by signed-in users: %v (first failure %v after the failover began, last %v after it); answers %v",
			lastFail.Sub(firstFail).Round(time.Millisecond), firstFail.Sub(failoverAt).Round(time.Millisecond),
			lastFail.Sub(failoverAt).Round(time.Millisecond), failed)
	}
	t.Logf("failover start to promotion agreed by all sentinels: %v; promotion to every user served again: %v; %d requests served; slowest answer %v; new master %s",
		promotedAt.Sub(failoverAt).Round(time.Millisecond), recoveredAt.Sub(promotedAt).Round(time.Millisecond), served, slowest.Round(time.Millisecond), promoted.Addr())

	// No session lost, and the gateway works for new sign-ins.
	for _, u := range users {
		b := g.browser(t)
		b.c.Jar.SetCookies(mustURL(t, g.URL), []*http.Cookie{{Name: "authgate_session", Value: cookies[u]}})
		r := b.get("/dashboard")
		if r.status != http.StatusOK || upstreamUser(r) != u {
			t.Errorf("%s's session from before the kill: %d %q", u, r.status, location(r))
		}
	}
	b := g.browser(t)
	g.clock.Advance(30 * time.Second)
	signInAgain(t, g, b, "alice", "correct horse", secrets["alice"])
	if r := b.get("/dashboard"); upstreamUser(r) != "alice" {
		t.Fatalf("new sign-in after the failover: %d %q", r.status, location(r))
	}
	g.addUser(t, "dave", "correct horse")
	secretEnrol(t, g, g.browserAfterLogin(t, "dave"))
	ready := g.browser(t).get("/.authgate/readyz")
	mustStatus(t, ready, http.StatusOK, "readyz after the failover")
	if n, err := promoted.Client(t).Exists(context.Background(), "authgate:{u:dave}:user").Result(); err != nil || n != 1 {
		t.Errorf("dave is not on the promoted master: %d, %v", n, err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Sentinels that require a password refuse a gateway without it or with
// a wrong one: it does not start (fail closed), naming the store.
func TestSentinelPasswordRequired(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel start-up takes seconds")
	}
	set := redistest.StartSentinelWith(t, redistest.SentinelOptions{Password: "sentinel-secret"})
	for _, pw := range []string{"", "wrong"} {
		cfg := config.Defaults()
		cfg.Store.Driver = "redis"
		cfg.Store.Redis.Addrs = set.SentinelAddrs()
		cfg.Store.Redis.MasterName = redistest.SentinelMasterName
		cfg.Store.Redis.SentinelPassword = pw
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		st, err := server.OpenStore(ctx, &cfg, time.Now)
		cancel()
		if err == nil {
			_ = st.Close()
			t.Fatalf("sentinel password %q: store opened", pw)
		}
		if !strings.Contains(err.Error(), "store: redis") {
			t.Fatalf("sentinel password %q: error %v does not name the store", pw, err)
		}
	}
}
