package session_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
	"github.com/authgate/authgate/gateway/store/embedded"
)

// cachedManager is a Manager over a cache in front of the embedded store;
// the store itself is returned too, to write behind the cache's back as
// another instance would (with its announcement lost).
func cachedManager(t *testing.T) (*session.Manager, *cache.Cache, *embedded.Store, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	back, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), embedded.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(back, cache.Options{SoleWriter: true, MaxAge: time.Hour}, clk.Now)
	t.Cleanup(func() { _ = c.Close() })
	m := session.New(c, session.Options{CookieName: "authgate_session", IdleTimeout: 10 * time.Minute, MaxLifetime: 12 * time.Hour}, clk.Now, nil)
	return m, c, back, clk
}

// cachedSession creates a full session for alice and reads it twice, so
// that the manager's cache holds it.
func cachedSession(t *testing.T, m *session.Manager) (string, store.Session) {
	t.Helper()
	ctx := context.Background()
	id, s, err := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull, TwoFactor: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := m.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return id, s
}

// writeElsewhere stores s in back as another instance would after using
// it at now, with a field of its own ("set elsewhere"); the cache in
// front of back is not told.
func writeElsewhere(t *testing.T, back *embedded.Store, s store.Session, now time.Time) {
	t.Helper()
	s.LastSeenAt = now
	s.RecoveryCodesSealed = []byte("set elsewhere")
	if err := back.PutSession(context.Background(), s, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// A cached copy whose LastSeenAt is older than the store's (another
// instance used the session) neither ends the session as idle nor writes
// its stale fields back with a touch: the manager re-reads the store.
func TestCachedCopyNeverEndsOrRewindsABusySession(t *testing.T) {
	ctx := context.Background()
	m, c, back, clk := cachedManager(t) // idle 10 min, touch 1 min
	id, s := cachedSession(t, m)
	if st := c.Stats(); st.SessionHits == 0 {
		t.Fatalf("not cached: %+v", st)
	}
	// Another instance uses the session 5 minutes later and stores a
	// field of its own; this cache is not told.
	clk.Advance(5 * time.Minute)
	writeElsewhere(t, back, s, clk.Now())
	// 10.5 minutes after the cached LastSeenAt: idle by the cached copy
	// (whose entry lives until the session's TTL, idle + touch = 11
	// minutes), 5.5 minutes by the store's.
	clk.Advance(5*time.Minute + 30*time.Second)
	hits := c.Stats().SessionHits
	got, err := m.Get(ctx, id)
	if err != nil {
		t.Fatalf("a busy session was refused: %v", err)
	}
	if c.Stats().SessionHits == hits {
		t.Fatal("the cached copy was not read first; the test proves nothing")
	}
	if string(got.RecoveryCodesSealed) != "set elsewhere" || !got.LastSeenAt.Equal(clk.Now()) {
		t.Fatalf("got %+v, want the store's copy, touched now", got)
	}
	stored, err := back.GetSession(ctx, s.IDHash)
	if err != nil {
		t.Fatalf("the session is gone from the store: %v", err)
	}
	if string(stored.RecoveryCodesSealed) != "set elsewhere" || !stored.LastSeenAt.Equal(clk.Now()) {
		t.Fatalf("the touch wrote %+v: stale fields back, or no touch", stored)
	}
}

// A session idle by the store's copy too ends on time.
func TestCachedIdleSessionEndsOnTime(t *testing.T) {
	ctx := context.Background()
	m, c, back, clk := cachedManager(t)
	id, s := cachedSession(t, m)
	clk.Advance(10*time.Minute - time.Millisecond)
	if _, err := c.GetSession(ctx, s.IDHash); err != nil {
		t.Fatalf("the entry should still be cached and live: %v", err)
	}
	clk.Advance(time.Millisecond)
	if _, err := m.Get(ctx, id); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("at the idle end: %v, want ErrNoSession", err)
	}
	if _, err := back.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the idle session is still stored: %v", err)
	}
}

// A touch due by the cached copy writes the store's copy, not the cached
// one: what another instance stored meanwhile is kept.
func TestCachedTouchKeepsOtherWrites(t *testing.T) {
	ctx := context.Background()
	m, c, back, clk := cachedManager(t) // touch interval 1 min
	id, s := cachedSession(t, m)
	clk.Advance(30 * time.Second)
	writeElsewhere(t, back, s, clk.Now())
	clk.Advance(90 * time.Second) // touch due by both copies
	hits := c.Stats().SessionHits
	if _, err := m.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	if c.Stats().SessionHits == hits {
		t.Fatal("the cached copy was not read first; the test proves nothing")
	}
	stored, err := back.GetSession(ctx, s.IDHash)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.RecoveryCodesSealed) != "set elsewhere" || !stored.LastSeenAt.Equal(clk.Now()) {
		t.Fatalf("stored after the touch: %+v; want the other write kept and LastSeenAt now", stored)
	}
}
