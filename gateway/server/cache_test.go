package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/control"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
	"github.com/authgate/authgate/gateway/users"
)

// propagationLimit is how soon a change made anywhere must be refused
// (or seen) by every instance.
const propagationLimit = time.Second

// sessionCache is the gateway's session and user cache.
func sessionCache(t *testing.T, g *gateway) *cache.Cache {
	t.Helper()
	c, ok := g.srv.Store().(*cache.Cache)
	if !ok {
		t.Fatalf("the gateway's store is a %T, not the cache", g.srv.Store())
	}
	return c
}

// withSession asks g for path carrying the session cookie id, as a
// browser sent to g by a load balancer would.
func withSession(t *testing.T, g *gateway, id, path string) resp {
	t.Helper()
	return g.browser(t).do("GET", path, nil, http.Header{"Cookie": {"authgate_session=" + id}})
}

// servedFromCache asks g for path with id until the answer came from
// g's cache (its session and user hit counters both moved) and was 200.
func servedFromCache(t *testing.T, g *gateway, id, path string) resp {
	t.Helper()
	c := sessionCache(t, g)
	deadline := time.Now().Add(5 * time.Second)
	for {
		before := c.Stats()
		r := withSession(t, g, id, path)
		mustStatus(t, r, http.StatusOK, "request before the change")
		after := c.Stats()
		if after.SessionHits > before.SessionHits && after.UserHits > before.UserHits {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session was never served from the cache: %+v", after)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// refusedWithin polls g every 20 ms until a request with id is no longer
// let through, and fails if that takes longer than propagationLimit.
func refusedWithin(t *testing.T, g *gateway, id, path string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := withSession(t, g, id, path)
		if r.status != http.StatusOK {
			if r.status >= 500 {
				t.Fatalf("refused with %d, want a challenge: %.300s", r.status, r.body)
			}
			return time.Since(start)
		}
		if time.Since(start) > propagationLimit {
			t.Fatalf("the old session still reaches the upstream %v after the change", propagationLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cliAdmin is what `authgate user|sessions|2fa ...` builds against a
// Redis store: the backend opened by server.OpenStore, without any
// gateway's cache in between.
func cliAdmin(t *testing.T, cfg *config.Config) *users.Service {
	t.Helper()
	st, err := server.OpenStore(context.Background(), cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	src := settings.New(st, settings.Values{Mode: cfg.TwoFactor.Mode}, 0, time.Now)
	return users.NewService(st, src, audit.New(st, zerolog.Nop(), time.Now), "test", time.Now)
}

// Two instances on one Redis both serve a signed-in user from their
// caches. Every change that ends or narrows the user's access, made on
// instance A (its admin service, as the admin area and control socket
// use it) or by the command line writing to Redis directly, is refused by
// instance B within a second, B's cache notwithstanding.
func TestChangesReachOtherInstanceWithinASecond(t *testing.T) {
	a, b := twoInstances(t, nil)
	ctx := context.Background()
	svcA := userAdmin(a)
	cli := cliAdmin(t, a.cfg)
	newHash := func(t *testing.T) string {
		h, err := hasher().Hash("another password")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for i, tc := range []struct {
		name string
		act  func(t *testing.T, user string, onA *browser)
	}{
		{"logout on A", func(t *testing.T, _ string, onA *browser) {
			mustStatus(t, onA.post("/.authgate/logout", "/.authgate/logout", url.Values{}), http.StatusSeeOther, "logout")
		}},
		{"sessions revoked by an admin on A", func(t *testing.T, user string, _ *browser) {
			if _, err := svcA.RevokeSessions(ctx, user); err != nil {
				t.Fatal(err)
			}
		}},
		{"2FA disabled by an admin on A", func(t *testing.T, user string, _ *browser) {
			if _, err := svcA.DisableTwoFactor(ctx, []string{user}); err != nil {
				t.Fatal(err)
			}
		}},
		{"role changed on A", func(t *testing.T, user string, _ *browser) {
			if err := svcA.SetRole(ctx, user, store.RoleAdmin); err != nil {
				t.Fatal(err)
			}
		}},
		{"password reset on A", func(t *testing.T, user string, _ *browser) {
			if err := svcA.ResetPassword(ctx, user, newHash(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{"user deleted on A", func(t *testing.T, user string, _ *browser) {
			if err := svcA.Delete(ctx, user); err != nil {
				t.Fatal(err)
			}
		}},
		{"sessions revoked from the command line", func(t *testing.T, user string, _ *browser) {
			if _, err := cli.RevokeSessions(ctx, user); err != nil {
				t.Fatal(err)
			}
		}},
		{"user deleted from the command line", func(t *testing.T, user string, _ *browser) {
			if err := cli.Delete(ctx, user); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := fmt.Sprintf("cacheduser%d", i)
			a.addUser(t, user, "correct horse", "ops")
			onA := a.browser(t)
			login(t, onA, user, "correct horse")
			secretEnrol(t, a, onA)
			advanceBoth(30*time.Second, b) // secretEnrol moved A's clock
			id := sessionCookie(t, a, onA)
			mustStatus(t, onA.get("/x"), http.StatusOK, "on A")
			servedFromCache(t, b, id, "/x")
			tc.act(t, user, onA)
			took := refusedWithin(t, b, id, "/x")
			t.Logf("B refused the session %v after %s", took.Round(time.Millisecond), tc.name)
		})
	}
}

// A change to the user record alone (groups, read per request) reaches
// the other instance's cache within a second too.
func TestUserRecordChangeReachesOtherInstance(t *testing.T) {
	a, b := twoInstances(t, nil)
	a.addUser(t, "alice", "correct horse", "ops")
	onA := a.browser(t)
	login(t, onA, "alice", "correct horse")
	secretEnrol(t, a, onA)
	advanceBoth(30*time.Second, b)
	id := sessionCookie(t, a, onA)
	groups := func(r resp) string {
		var s seen
		if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &s) != nil || len(s.Headers["Remote-Groups"]) != 1 {
			return ""
		}
		return s.Headers["Remote-Groups"][0]
	}
	if g := groups(servedFromCache(t, b, id, "/x")); g != "ops" {
		t.Fatalf("groups on B = %q", g)
	}
	if _, err := a.srv.Store().UpdateUser(context.Background(), "alice", func(u *store.User) error { u.Groups = []string{"web"}; return nil }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for groups(withSession(t, b, id, "/x")) != "web" {
		if time.Since(start) > propagationLimit {
			t.Fatalf("B still sends the old groups %v after the change", propagationLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("B sent the new groups %v after the change", time.Since(start).Round(time.Millisecond))
}

// rewriteSessionQuietly sets the session's LastSeenAt in Redis without
// announcing it: what instance A's touch does when its announcement is
// lost on the way to B.
func rewriteSessionQuietly(t *testing.T, cfg *config.Config, id string, lastSeen time.Time) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Store.Redis.Addrs[0], DisableIdentity: true})
	defer rdb.Close()
	ctx := context.Background()
	key := cfg.Store.Redis.KeyPrefix + ":s:" + session.HashID(id)
	data, err := rdb.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var s store.Session
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	s.LastSeenAt = lastSeen.UTC()
	if data, err = json.Marshal(s); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SetArgs(ctx, key, data, redis.SetArgs{KeepTTL: true}).Err(); err != nil {
		t.Fatal(err)
	}
}

// lastSeen reads the session's LastSeenAt from the shared store.
func lastSeen(t *testing.T, cfg *config.Config, id string) (time.Time, bool) {
	t.Helper()
	st, err := server.OpenStore(context.Background(), cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := st.GetSession(context.Background(), session.HashID(id))
	if err != nil {
		return time.Time{}, false
	}
	return s.LastSeenAt, true
}

// Idle expiry with caches: a session kept alive on A is not ended by an
// older copy B holds in its cache (B reads the store again before ending
// a session as idle), and a session left idle ends on time on both.
func TestIdleExpiryAcrossCachedInstances(t *testing.T) {
	const idle = 2 * time.Minute // touch interval: 12 s
	a, b := twoInstances(t, func(c *config.Config) {
		c.Session.IdleTimeout = idle
		c.Session.CacheMaxAge = 10 * time.Minute
	})
	a.addUser(t, "alice", "correct horse")
	onA := a.browser(t)
	login(t, onA, "alice", "correct horse")
	secretEnrol(t, a, onA) // the session is 30 s old now
	advanceBoth(30*time.Second, b)
	id := sessionCookie(t, a, onA)

	// B touches the session (30 s > 12 s) and then serves it from its
	// cache, LastSeenAt = now.
	mustStatus(t, withSession(t, b, id, "/x"), http.StatusOK, "B, first request")
	servedFromCache(t, b, id, "/x")
	cachedAt := b.clock.Now()

	// A keeps the session busy 100 s later, and B misses the news.
	advanceBoth(100*time.Second, a, b)
	rewriteSessionQuietly(t, a.cfg, id, a.clock.Now())
	busyAt := a.clock.Now()

	// 125 s after B's copy was stored (more than idle_timeout) B's copy
	// says idle; the store says 25 s. B must let the request through.
	advanceBoth(25*time.Second, a, b)
	hits := sessionCache(t, b).Stats().SessionHits
	mustStatus(t, withSession(t, b, id, "/x"), http.StatusOK, "B with a stale cached copy of a busy session")
	if sessionCache(t, b).Stats().SessionHits == hits {
		t.Fatal("B did not start from its cached copy; the test proves nothing")
	}
	if b.clock.Now().Sub(cachedAt) < idle {
		t.Fatal("B's copy is not idle-old; the test proves nothing")
	}
	ls, ok := lastSeen(t, a.cfg, id)
	if !ok || ls.Before(busyAt) {
		t.Fatalf("the busy session was ended or rewound by B: LastSeenAt %v (ok %v), A touched it at %v", ls, ok, busyAt)
	}

	// Idle on time, on both. One second before the end it still works
	// (on A; this touches it) ...
	ls, _ = lastSeen(t, a.cfg, id)
	advanceBoth(ls.Add(idle-time.Second).Sub(a.clock.Now()), a, b)
	mustStatus(t, withSession(t, a, id, "/x"), http.StatusOK, "A one second before the idle end")
	ls, _ = lastSeen(t, a.cfg, id)
	if d := a.clock.Now().Sub(ls); d < 0 || d > time.Millisecond {
		t.Fatalf("A did not touch the session: LastSeenAt %v, now %v", ls, a.clock.Now())
	}
	// ... and idle_timeout after that last request it is refused on B
	// and on A.
	advanceBoth(ls.Add(idle).Sub(a.clock.Now()), a, b)
	if r := withSession(t, b, id, "/x"); r.status != http.StatusFound {
		t.Fatalf("B at the idle end: %d, want 302 to the login page", r.status)
	}
	if r := withSession(t, a, id, "/x"); r.status != http.StatusFound {
		t.Fatalf("A at the idle end: %d, want 302 to the login page", r.status)
	}
	if _, ok := lastSeen(t, a.cfg, id); ok {
		t.Fatal("the idle session is still in the store")
	}
}

// With the embedded store, the control socket (the `authgate` commands
// while the server runs) writes through the server's own cache: a change
// is refused at the very next request.
func TestControlSocketWritesThroughTheCache(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.SecretKeyFile = filepath.Join(dir, "secret.key")
	cfg.Store.Path = filepath.Join(dir, "authgate.db")
	cfg.Password.Argon2 = config.Argon2{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}
	cfg.TwoFactor.Mode = config.ModeOff
	cfg.Routes = []config.Route{{Name: "panel", PathPrefix: "/", Upstream: newUpstream(t).URL, Policy: config.PolicyPassword}}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), &cfg, zerolog.Nop(), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Serve runs the control socket; the test's HTTP goes through an
	// httptest server on the same handler.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		hs.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	g := &gateway{URL: hs.URL, srv: srv, clock: testkit.NewClock(time.Now()), cfg: &cfg, http: hs}
	g.addUser(t, "alice", "correct horse")
	b := g.browser(t)
	login(t, b, "alice", "correct horse")
	id := sessionCookie(t, g, b)
	servedFromCache(t, g, id, "/x")

	ctl := control.NewClient(server.ControlSocketPath(&cfg))
	waitSocket := time.Now().Add(5 * time.Second)
	for {
		if _, err := ctl.List(context.Background()); err == nil {
			break
		} else if time.Now().After(waitSocket) {
			t.Fatalf("control socket: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, err := ctl.RevokeSessions(context.Background(), "alice"); err != nil || n != 1 {
		t.Fatalf("revoke through the control socket: %d, %v", n, err)
	}
	if r := withSession(t, g, id, "/x"); r.status != http.StatusFound {
		t.Fatalf("the revoked session's next request: %d, want 302", r.status)
	}
}

// With metrics on, the cache sits in front of the instrumented store and
// still caches sessions (the wrapper passes the TTL on), and its counters
// are scraped.
func TestCacheWithMetrics(t *testing.T) {
	g := served(t, startGatewayWith(t, gwOpts{mode: "off", driver: "redis"}, func(c *config.Config) { c.Metrics.Listen = "127.0.0.1:0" }))
	g.addUser(t, "alice", "correct horse")
	b := g.browser(t)
	login(t, b, "alice", "correct horse")
	servedFromCache(t, g, sessionCookie(t, g, b), "/x")
	f := scrape(t, g)["authgate_cache_hits_total"]
	if f == nil {
		t.Fatal("no authgate_cache_hits_total")
	}
	for _, m := range f.GetMetric() {
		if m.GetCounter().GetValue() < 1 {
			t.Errorf("authgate_cache_hits_total %v = %v, want at least 1", m.GetLabel(), m.GetCounter().GetValue())
		}
	}
}

// With session.cache_max_age or cache_size 0 there is no cache.
func TestCacheOff(t *testing.T) {
	g := startGatewayWith(t, gwOpts{mode: "off"}, func(c *config.Config) { c.Session.CacheSize = 0 })
	if _, ok := g.srv.Store().(*cache.Cache); ok {
		t.Fatal("cache_size 0 still wraps the store in a cache")
	}
}
