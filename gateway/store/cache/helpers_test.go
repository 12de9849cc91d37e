package cache_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
)

// newClock is a settable clock shared by a backend and its cache.
func newClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
}

func openEmbedded(t testing.TB, clk *testkit.Clock) *embedded.Store {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "authgate.db"), embedded.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

var prefixSeq atomic.Int64

// newRedis opens a store under a fresh key prefix of srv.
func newRedis(t testing.TB, addrs []string, prefix string) *redisstore.Store {
	t.Helper()
	st := redisstore.New(redisstore.NewClient(redisstore.ClientOptions{Addrs: addrs}), redisstore.Options{KeyPrefix: prefix})
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func uniquePrefix() string { return fmt.Sprintf("cache%d", prefixSeq.Add(1)) }

// redisCache is a cache over a Redis store following its invalidation
// feed, as the server wires it, returned once it serves.
func redisCache(t testing.TB, st *redisstore.Store, opts cache.Options, now func() time.Time) *cache.Cache {
	t.Helper()
	opts.Feed = func(ctx context.Context, h cache.Handler) { st.Invalidations(ctx, h) }
	c := cache.New(st, opts, now)
	t.Cleanup(func() { _ = c.Close() })
	waitFor(t, 5*time.Second, "the cache to subscribe", c.Serving)
	return c
}

// waitFor polls cond every 10 ms until it holds or d has passed.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// manualFeed is a Feed driven by the test: it hands out the cache's
// Handler, as a backend's subscription would, and reports subscribed.
type manualFeed struct {
	ready chan cache.Handler
}

func newManualFeed() *manualFeed { return &manualFeed{ready: make(chan cache.Handler, 1)} }

func (f *manualFeed) run(ctx context.Context, h cache.Handler) {
	h.FeedReset(true, "subscribed", nil)
	f.ready <- h
	<-ctx.Done()
	h.FeedReset(false, "stopped", nil)
}

// handler waits for the feed to start and returns the cache's Handler.
func (f *manualFeed) handler(t testing.TB) cache.Handler {
	t.Helper()
	select {
	case h := <-f.ready:
		return h
	case <-time.After(5 * time.Second):
		t.Fatal("feed did not start")
		return nil
	}
}

// holding wraps a real backend so a test can stop a read after the
// backend answered and before the cache sees the answer: the moment a
// racing change can slip in.
type holding struct {
	store.Store
	ttl cache.SessionTTLReader

	mu   sync.Mutex
	hold chan struct{} // non-nil: the next read waits for it to close
	held chan struct{} // signalled when that read holds
	// beforeUpdate and afterUpdate, when set, run inside UpdateUser
	// before and after the backend changes (the cache has begun the
	// write and not yet seen it return).
	beforeUpdate, afterUpdate func()
}

func newHolding(next store.Store) *holding {
	return &holding{Store: next, ttl: next.(cache.SessionTTLReader)}
}

// arm makes the next read hold; release lets it go on.
func (h *holding) arm() (held <-chan struct{}, release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold, h.held = make(chan struct{}), make(chan struct{}, 1)
	hold := h.hold
	return h.held, func() { close(hold) }
}

func (h *holding) wait() {
	h.mu.Lock()
	hold, held := h.hold, h.held
	h.hold, h.held = nil, nil
	h.mu.Unlock()
	if hold != nil {
		held <- struct{}{}
		<-hold
	}
}

func (h *holding) GetUser(ctx context.Context, name string) (store.User, error) {
	u, err := h.Store.GetUser(ctx, name)
	h.wait()
	return u, err
}

func (h *holding) UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error) {
	h.mu.Lock()
	before, after := h.beforeUpdate, h.afterUpdate
	h.mu.Unlock()
	if before != nil {
		before()
	}
	u, err := h.Store.UpdateUser(ctx, name, fn)
	if after != nil {
		after()
	}
	return u, err
}

func (h *holding) GetSessionTTL(ctx context.Context, idHash string) (store.Session, time.Duration, error) {
	s, ttl, err := h.ttl.GetSessionTTL(ctx, idHash)
	h.wait()
	return s, ttl, err
}

// requireRedis starts a redis-server for the test (skips, or fails in
// CI, without one).
func requireRedis(t testing.TB) *redistest.Server {
	t.Helper()
	return redistest.Start(t, redistest.Options{})
}

func hashID(i int) string { return fmt.Sprintf("%064x", i) }

func session(id, user string, now time.Time) store.Session {
	return store.Session{IDHash: id, User: user, Stage: store.StageFull, TwoFactor: true,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour), IP: "192.0.2.1", UserAgent: "test"}
}

func user(name string) store.User {
	return store.User{Name: name, PasswordHash: "$argon2id$v=19$m=8192,t=1,p=1$c2FsdA$aGFzaA", Role: store.RoleUser,
		Groups: []string{"ops", "web"}, TOTPSecret: []byte("sealed"), RecoveryCodes: []string{"a", "b"}}
}
