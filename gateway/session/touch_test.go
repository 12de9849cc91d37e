package session_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
)

// herdStore lets n readers all read a session before any of them goes on
// (so all find it due for a touch at once) and counts the touches that
// reach the store.
type herdStore struct {
	session.Store
	n        int
	reads    sync.WaitGroup
	writes   atomic.Int32
	inWrite  func() // run by each write before it reaches the store
	released chan struct{}
}

func newHerdStore(st session.Store, n int) *herdStore {
	h := &herdStore{Store: st, n: n, released: make(chan struct{})}
	h.reads.Add(n)
	go func() { h.reads.Wait(); close(h.released) }()
	return h
}

func (h *herdStore) GetSession(ctx context.Context, idHash string) (store.Session, error) {
	s, err := h.Store.GetSession(ctx, idHash)
	h.reads.Done()
	<-h.released
	return s, err
}

func (h *herdStore) ReplaceSession(ctx context.Context, s store.Session, ttl time.Duration) error {
	h.writes.Add(1)
	if h.inWrite != nil {
		h.inWrite()
	}
	return h.Store.ReplaceSession(ctx, s, ttl)
}

// herdGet creates a session, lets it fall due for a touch, and reads it
// through a manager on h from n goroutines at once.
func herdGet(t *testing.T, n int, prepare func(h *herdStore, idHash string)) (*herdStore, []store.Session, []error, time.Time) {
	t.Helper()
	_, st, clk := newManager(t)
	opts := session.Options{CookieName: "authgate_session", IdleTimeout: time.Hour, MaxLifetime: 12 * time.Hour}
	creator := session.New(st, opts, clk.Now, nil)
	id, s, err := creator.Create(context.Background(), store.Session{User: "alice", Stage: store.StageFull})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute) // past the touch interval (one minute)
	h := newHerdStore(st, n)
	if prepare != nil {
		prepare(h, s.IDHash)
	}
	m := session.New(h, opts, clk.Now, nil)
	got := make([]store.Session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = m.Get(context.Background(), id) })
	}
	wg.Wait()
	return h, got, errs, clk.Now().UTC()
}

func TestConcurrentTouchesWriteOnce(t *testing.T) {
	const n = 64
	h, got, errs, now := herdGet(t, n, func(h *herdStore, _ string) {
		// Give every reader time to reach the touch while the first
		// write is under way (without sharing, each writes its own).
		h.inWrite = func() { time.Sleep(200 * time.Millisecond) }
	})
	for i := range n {
		if errs[i] != nil || got[i].User != "alice" || !got[i].LastSeenAt.Equal(now) {
			t.Fatalf("reader %d: %+v, %v; want alice's session seen at %v", i, got[i], errs[i], now)
		}
	}
	// One write, or two if a reader came to the touch only after the
	// first had ended; never one per request.
	if w := h.writes.Load(); w < 1 || w > 2 {
		t.Fatalf("%d requests finding the session due made %d writes, want 1 (2 at most)", n, w)
	}
	s, err := h.Store.GetSession(context.Background(), got[0].IDHash)
	if err != nil || !s.LastSeenAt.Equal(now) {
		t.Fatalf("stored session %+v, %v: LastSeenAt not written", s, err)
	}
}

// Every request waiting on a touch that finds the session gone (revoked
// between their reads and the write) fails closed with it.
func TestConcurrentTouchesShareTheRefusal(t *testing.T) {
	const n = 16
	var revoked sync.Once
	var key string
	h, got, errs, _ := herdGet(t, n, func(h *herdStore, idHash string) {
		key = idHash
		h.inWrite = func() {
			revoked.Do(func() {
				if err := h.Store.DeleteSession(context.Background(), idHash); err != nil {
					t.Error(err)
				}
			})
		}
	})
	for i := range n {
		if !errors.Is(errs[i], session.ErrNoSession) {
			t.Fatalf("reader %d got %+v, %v after the session was revoked under its touch; want ErrNoSession", i, got[i], errs[i])
		}
	}
	if _, err := h.Store.GetSession(context.Background(), key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the revoked session is back: %v", err)
	}
}
