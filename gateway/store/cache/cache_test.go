package cache_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
	"github.com/authgate/authgate/gateway/store/storetest"
)

// The cache changes no answer of the store: it passes the conformance
// suite over both backends (TTL expiry included: a cached session is
// never served past the TTL its backend gave it).
func TestConformanceEmbedded(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		clk := newClock()
		c := cache.New(openEmbedded(t, clk), cache.Options{SoleWriter: true, MaxAge: time.Hour}, clk.Now)
		t.Cleanup(func() { _ = c.Close() })
		return storetest.Harness{Store: c, Advance: clk.Advance}
	})
}

func TestConformanceRedis(t *testing.T) {
	srv := requireRedis(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		c := redisCache(t, newRedis(t, []string{srv.Addr()}, uniquePrefix()), cache.Options{MaxAge: time.Hour}, time.Now)
		return storetest.Harness{Store: c, Advance: time.Sleep}
	})
}

func TestHitsMissesAndCopies(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c := cache.New(openEmbedded(t, clk), cache.Options{SoleWriter: true}, clk.Now)
	s := session(hashID(1), "alice", clk.Now())
	s.RecoveryCodesSealed = []byte("sealed codes")
	if err := c.PutSession(ctx, s, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateUser(ctx, user("alice")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got, err := c.GetSession(ctx, s.IDHash)
		if err != nil || got.User != "alice" || !bytes.Equal(got.RecoveryCodesSealed, s.RecoveryCodesSealed) {
			t.Fatalf("read %d: %+v, %v", i, got, err)
		}
		got.RecoveryCodesSealed[0] = 'X' // a copy: must not reach the cache
		u, err := c.GetUser(ctx, "alice")
		if err != nil || u.Groups[0] != "ops" || string(u.TOTPSecret) != "sealed" {
			t.Fatalf("user read %d: %+v, %v", i, u, err)
		}
		u.Groups[0], u.TOTPSecret[0], u.RecoveryCodes[0] = "root", 'X', "X"
	}
	st := c.Stats()
	if st.SessionMisses != 1 || st.SessionHits != 2 || st.UserMisses != 1 || st.UserHits != 2 {
		t.Fatalf("stats = %+v, want 1 miss then 2 hits each", st)
	}
	if st.Sessions != 1 || st.Users != 1 {
		t.Fatalf("held %d sessions, %d users", st.Sessions, st.Users)
	}
	// Missing items are answered by the backend every time, never cached.
	for range 2 {
		if _, err := c.GetSession(ctx, hashID(404)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing session: %v", err)
		}
		if _, err := c.GetUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing user: %v", err)
		}
	}
	if st := c.Stats(); st.SessionMisses != 3 || st.UserMisses != 3 || st.Sessions != 1 || st.Users != 1 {
		t.Fatalf("after misses: %+v", st)
	}
}

// Own writes are seen at once: every write drops what it changed.
func TestOwnWritesSeenAtOnce(t *testing.T) {
	ctx := context.Background()
	c, s := soleWriterWithAlice(t)
	warm := func() {
		t.Helper()
		_, _ = c.GetSession(ctx, s.IDHash)
		_, _ = c.GetUser(ctx, "alice")
	}
	warm()
	s.LastSeenAt = s.LastSeenAt.Add(time.Minute)
	mustPut(t, c, s)
	if got, _ := c.GetSession(ctx, s.IDHash); !got.LastSeenAt.Equal(s.LastSeenAt) {
		t.Fatalf("after PutSession: LastSeenAt %v, want %v", got.LastSeenAt, s.LastSeenAt)
	}
	if _, err := c.UpdateUser(ctx, "alice", func(u *store.User) error { u.Role = store.RoleAdmin; return nil }); err != nil {
		t.Fatal(err)
	}
	if u, _ := c.GetUser(ctx, "alice"); u.Role != store.RoleAdmin {
		t.Fatalf("after UpdateUser: role %q", u.Role)
	}
	if err := c.DeleteSession(ctx, s.IDHash); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after DeleteSession: %v", err)
	}
	mustPut(t, c, s)
	warm()
	if n, err := c.DeleteUserSessions(ctx, "alice"); err != nil || n != 1 {
		t.Fatalf("DeleteUserSessions = %d, %v", n, err)
	}
	if _, err := c.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after DeleteUserSessions: %v", err)
	}
	mustPut(t, c, s)
	warm()
	if err := c.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user after DeleteUser: %v", err)
	}
	if _, err := c.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session after DeleteUser: %v", err)
	}
}

// soleWriterWithAlice is a sole-writer cache over a fresh embedded store
// holding user alice and one session of hers, which it returns.
func soleWriterWithAlice(t *testing.T) (*cache.Cache, store.Session) {
	t.Helper()
	clk := newClock()
	c := cache.New(openEmbedded(t, clk), cache.Options{SoleWriter: true}, clk.Now)
	s := session(hashID(1), "alice", clk.Now())
	mustPut(t, c, s)
	if err := c.CreateUser(context.Background(), user("alice")); err != nil {
		t.Fatal(err)
	}
	return c, s
}

func mustPut(t *testing.T, st store.Store, s store.Session) {
	t.Helper()
	if err := st.PutSession(context.Background(), s, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// An entry is served for MaxAge at most, and a session never past the
// TTL its backend gave it.
func TestMaxAgeAndTTL(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	back := openEmbedded(t, clk)
	c := cache.New(back, cache.Options{SoleWriter: true, MaxAge: 30 * time.Second}, clk.Now)
	s := session(hashID(1), "alice", clk.Now())
	mustPut(t, c, s)
	if err := c.CreateUser(ctx, user("alice")); err != nil {
		t.Fatal(err)
	}
	read := func() {
		t.Helper()
		if _, err := c.GetSession(ctx, s.IDHash); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	read() // miss
	clk.Advance(29 * time.Second)
	read() // hit
	clk.Advance(time.Second)
	read() // 30 s: too old, miss
	if st := c.Stats(); st.SessionMisses != 2 || st.SessionHits != 1 || st.UserMisses != 2 || st.UserHits != 1 {
		t.Fatalf("stats = %+v, want miss, hit, miss", st)
	}

	// A 10 s TTL ends the entry before MaxAge. The write below goes to
	// the backend directly, as the sweeper or another writer would not
	// tell the cache; only the TTL can end it.
	short := session(hashID(2), "alice", clk.Now())
	if err := back.PutSession(ctx, short, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSession(ctx, short.IDHash); err != nil {
		t.Fatal(err)
	}
	clk.Advance(9 * time.Second)
	if _, err := c.GetSession(ctx, short.IDHash); err != nil {
		t.Fatalf("inside its TTL: %v", err)
	}
	hits := c.Stats().SessionHits
	clk.Advance(time.Second)
	if _, err := c.GetSession(ctx, short.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("at its TTL: %v, want ErrNotFound", err)
	}
	if c.Stats().SessionHits != hits {
		t.Fatal("the expired entry was served")
	}
}

// MaxEntries bounds memory: it is rounded up to a whole number per shard
// (64 shards), never exceeded.
func TestEvictionBound(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c := cache.New(openEmbedded(t, clk), cache.Options{SoleWriter: true, MaxEntries: 128}, clk.Now)
	for i := range 1000 {
		s := session(hashID(i), "alice", clk.Now())
		mustPut(t, c, s)
		if _, err := c.GetSession(ctx, s.IDHash); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Stats().Sessions; n > 128 || n < 64 {
		t.Fatalf("holding %d sessions with MaxEntries 128", n)
	}
	// Every session still reads right (evicted ones from the backend).
	for i := range 1000 {
		if s, err := c.GetSession(ctx, hashID(i)); err != nil || s.IDHash != hashID(i) {
			t.Fatalf("session %d: %+v, %v", i, s, err)
		}
	}
}

// Without SoleWriter or a Feed the cache cannot know of changes: it
// never serves.
func TestNoFeedNeverServes(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c := cache.New(openEmbedded(t, clk), cache.Options{}, clk.Now)
	s := session(hashID(1), "alice", clk.Now())
	mustPut(t, c, s)
	for range 3 {
		if _, err := c.GetSession(ctx, s.IDHash); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); c.Serving() || st.SessionHits != 0 || st.Sessions != 0 {
		t.Fatalf("served without a feed: %+v", st)
	}
}

// Changes announced by the feed drop their entries; a feed reset drops
// everything, and nothing is served between FeedReset(false) and
// FeedReset(true).
func TestFeedMessagesAndResets(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	back := openEmbedded(t, clk)
	feed := newManualFeed()
	c := cache.New(back, cache.Options{Feed: feed.run}, clk.Now)
	t.Cleanup(func() { _ = c.Close() })
	h := feed.handler(t)
	a, b := session(hashID(1), "alice", clk.Now()), session(hashID(2), "alice", clk.Now())
	other := session(hashID(3), "bob", clk.Now())
	for _, s := range []store.Session{a, b, other} {
		mustPut(t, back, s)
	}
	if err := back.CreateUser(ctx, user("alice")); err != nil {
		t.Fatal(err)
	}
	readAll := func() {
		t.Helper()
		for _, s := range []store.Session{a, b, other} {
			if _, err := c.GetSession(ctx, s.IDHash); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.GetUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	readAll()
	if st := c.Stats(); st.Sessions != 3 || st.Users != 1 {
		t.Fatalf("warm: %+v", st)
	}
	h.SessionChanged(a.IDHash)
	if st := c.Stats(); st.Sessions != 2 {
		t.Fatalf("after SessionChanged: %+v", st)
	}
	h.UserSessionsChanged("alice")
	if st := c.Stats(); st.Sessions != 1 {
		t.Fatalf("after UserSessionsChanged: %+v (bob's must stay)", st)
	}
	h.UserChanged("alice")
	if st := c.Stats(); st.Users != 0 {
		t.Fatalf("after UserChanged: %+v", st)
	}
	readAll()
	h.FeedReset(false, "error", nil)
	if st := c.Stats(); c.Serving() || st.Sessions != 0 || st.Users != 0 {
		t.Fatalf("after FeedReset(false): serving %v, %+v", c.Serving(), st)
	}
	before := c.Stats()
	readAll()
	readAll()
	if st := c.Stats(); st.SessionHits != before.SessionHits || st.UserHits != before.UserHits || st.Sessions != 0 {
		t.Fatalf("served while the feed was down: %+v", st)
	}
	h.FeedReset(true, "subscribed", nil)
	readAll()
	readAll()
	if st := c.Stats(); st.SessionHits != before.SessionHits+3 || st.UserHits != before.UserHits+1 {
		t.Fatalf("not serving again after FeedReset(true): %+v", st)
	}
}

// A closed cache serves nothing from memory: reads reach the closed
// backend and fail.
func TestClosedServesNothing(t *testing.T) {
	ctx := context.Background()
	c, s := soleWriterWithAlice(t)
	if _, err := c.GetSession(ctx, s.IDHash); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSession(ctx, s.IDHash); err == nil {
		t.Fatal("a closed cache served a session")
	}
	if _, err := c.GetUser(ctx, "alice"); err == nil {
		t.Fatal("a closed cache served a user")
	}
}
