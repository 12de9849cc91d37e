package server_test

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/redistest"
)

// twoInstances starts two gateways (two server.New) on one Redis with the
// same secret key, as a load-balanced deployment runs them. Their clocks
// start together; advance both with advanceBoth.
func twoInstances(t *testing.T, adjust func(*config.Config)) (*gateway, *gateway) {
	t.Helper()
	rs := redistest.Start(t, redistest.Options{})
	key := hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	shared := func(c *config.Config) {
		c.Store.Driver = "redis"
		c.Store.Redis.Addrs = []string{rs.Addr()}
		c.SecretKey = key
		if adjust != nil {
			adjust(c)
		}
	}
	a := startGatewayWith(t, gwOpts{mode: "required"}, shared)
	b := startGatewayWith(t, gwOpts{mode: "required"}, shared)
	b.clock.Set(a.clock.Now())
	return a, b
}

func advanceBoth(d time.Duration, gs ...*gateway) {
	for _, g := range gs {
		g.clock.Advance(d)
	}
}

// pendingVerify logs alice in on g and returns the browser at the code
// step with the verify form's CSRF token, ready to submit.
func pendingVerify(t *testing.T, g *gateway) (*browser, string) {
	t.Helper()
	b := g.browser(t)
	mustStatus(t, loginAs(b, "alice", "correct horse"), http.StatusSeeOther, "alice's password")
	page := b.get("/.authgate/verify")
	mustStatus(t, page, http.StatusOK, "verify page")
	m := csrfRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("no csrf token on the verify page")
	}
	return b, m[1] + m[2]
}

// raceCode submits code from every browser at the same moment and returns
// how many were accepted (303 on to the target).
func raceCode(t *testing.T, code string, bs []*browser, toks []string) int {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]resp, len(bs))
	for i, b := range bs {
		wg.Go(func() {
			<-start
			results[i] = b.do("POST", "/.authgate/verify", url.Values{"code": {code}, "csrf_token": {toks[i]}}, nil)
		})
	}
	close(start)
	wg.Wait()
	accepted := 0
	for _, r := range results {
		switch {
		case r.status == http.StatusSeeOther && !strings.HasPrefix(location(r), "/.authgate/login"):
			accepted++
		case r.status == http.StatusUnauthorized && strings.Contains(r.body, "The security code is invalid."):
		default:
			t.Fatalf("unexpected answer to a raced code: %d %q %.300s", r.status, location(r), r.body)
		}
	}
	return accepted
}

// The same valid code, submitted at the same moment from two connections
// (two browsers, each at the code step), is accepted once: the used step
// is recorded with an atomic set-if-absent, not check-then-insert.
func TestConcurrentCodeAcceptedOnce(t *testing.T) {
	for _, driver := range []string{"embedded", "redis"} {
		t.Run(driver, func(t *testing.T) {
			g := startGatewayWith(t, gwOpts{driver: driver, mode: "required"}, func(c *config.Config) {
				c.Regulation.MaxFailures = 100
			})
			g.addUser(t, "alice", "correct horse")
			secret := enroll(t, g, g.browser(t))
			for round := range 5 {
				g.clock.Advance(time.Minute) // a fresh step each round
				b1, t1 := pendingVerify(t, g)
				b2, t2 := pendingVerify(t, g)
				if n := raceCode(t, codeFor(t, secret, g.clock.Now()), []*browser{b1, b2}, []string{t1, t2}); n != 1 {
					t.Fatalf("round %d: the same code was accepted %d times, want exactly once", round+1, n)
				}
			}
		})
	}
}

// ... and from two gateway instances sharing one Redis.
func TestConcurrentCodeAcceptedOnceAcrossInstances(t *testing.T) {
	a, b := twoInstances(t, func(c *config.Config) { c.Regulation.MaxFailures = 100 })
	a.addUser(t, "alice", "correct horse")
	secret := enroll(t, a, a.browser(t))
	for round := range 5 {
		advanceBoth(time.Minute, a, b)
		b1, t1 := pendingVerify(t, a)
		b2, t2 := pendingVerify(t, b)
		if n := raceCode(t, codeFor(t, secret, a.clock.Now()), []*browser{b1, b2}, []string{t1, t2}); n != 1 {
			t.Fatalf("round %d: the same code was accepted %d times across two instances, want exactly once", round+1, n)
		}
	}
	// And the used code stays used on both instances afterwards.
	b3, t3 := pendingVerify(t, b)
	if n := raceCode(t, codeFor(t, secret, a.clock.Now()), []*browser{b3}, []string{t3}); n != 0 {
		t.Fatal("a used code was accepted again")
	}
}
