package cache_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
)

// The classic cache race, made deterministic: a read gets the old value
// from the backend, a change lands and is invalidated, then the read
// would insert what it got. The generation check must refuse that insert,
// so the next read sees the change. (Without the check the stale value is
// served until MaxAge; this test then fails.)
func TestStaleFillRefused(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// change changes alice's role and session behind the cache's
		// back (another writer), then tells the cache as the feed would.
		change func(t *testing.T, c *cache.Cache, back store.Store, h cache.Handler)
	}{
		{"own write", func(t *testing.T, c *cache.Cache, _ store.Store, _ cache.Handler) {
			promote(t, c)
			touch(t, c)
		}},
		{"feed message", func(t *testing.T, _ *cache.Cache, back store.Store, h cache.Handler) {
			promote(t, back)
			touch(t, back)
			h.UserChanged("alice")
			h.SessionChanged(hashID(1))
		}},
		{"feed reset", func(t *testing.T, _ *cache.Cache, back store.Store, h cache.Handler) {
			promote(t, back)
			touch(t, back)
			h.FeedReset(false, "error", nil)
			h.FeedReset(true, "subscribed", nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			back := openEmbedded(t, clk)
			hold := newHolding(back)
			feed := newManualFeed()
			c := cache.New(hold, cache.Options{Feed: feed.run}, clk.Now)
			t.Cleanup(func() { _ = c.Close() })
			h := feed.handler(t)
			if err := back.CreateUser(ctx, user("alice")); err != nil {
				t.Fatal(err)
			}
			s := session(hashID(1), "alice", clk.Now())
			mustPut(t, back, s)

			// A user read holds after the backend answered (old role).
			held, release := hold.arm()
			done := make(chan store.User)
			go func() {
				u, _ := c.GetUser(ctx, "alice")
				done <- u
			}()
			<-held
			// And a session read, the same way.
			heldS, releaseS := hold.arm()
			doneS := make(chan store.Session)
			go func() {
				got, _ := c.GetSession(ctx, s.IDHash)
				doneS <- got
			}()
			<-heldS
			tc.change(t, c, back, h)
			release()
			releaseS()
			if u := <-done; u.Role != store.RoleUser {
				t.Fatalf("the held read returned role %q; it read before the change", u.Role)
			}
			if got := <-doneS; !got.LastSeenAt.Equal(s.LastSeenAt) {
				t.Fatalf("the held session read returned LastSeenAt %v", got.LastSeenAt)
			}
			if u, err := c.GetUser(ctx, "alice"); err != nil || u.Role != store.RoleAdmin {
				t.Fatalf("after the change: role %q, %v (a stale fill was inserted)", u.Role, err)
			}
			if got, err := c.GetSession(ctx, s.IDHash); err != nil || !got.LastSeenAt.Equal(s.LastSeenAt.Add(time.Minute)) {
				t.Fatalf("after the change: LastSeenAt %v, %v (a stale fill was inserted)", got.LastSeenAt, err)
			}
		})
	}
}

// A read that starts after this process began a write, gets the old
// value, and finishes once the backend changed (the write not yet
// returned) is not cached either: a reader that already saw the new
// value never sees the old one after it.
func TestFillDuringOwnWriteRefused(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	back := openEmbedded(t, clk)
	hold := newHolding(back)
	c := cache.New(hold, cache.Options{SoleWriter: true}, clk.Now)
	t.Cleanup(func() { _ = c.Close() })
	if err := back.CreateUser(ctx, user("alice")); err != nil {
		t.Fatal(err)
	}
	done := make(chan store.User)
	var release func()
	hold.beforeUpdate = func() {
		var held <-chan struct{}
		held, release = hold.arm()
		go func() {
			u, _ := c.GetUser(ctx, "alice") // the old role, then holds
			done <- u
		}()
		<-held
	}
	var during store.User
	hold.afterUpdate = func() {
		release() // the held read tries to cache the old role now
		if u := <-done; u.Role != store.RoleUser {
			t.Errorf("the held read returned %q", u.Role)
		}
		var err error
		if during, err = c.GetUser(ctx, "alice"); err != nil {
			t.Error(err)
		}
	}
	promote(t, c)
	if during.Role != store.RoleAdmin {
		t.Fatalf("a read after the backend changed, during the write, returned role %q (the old value was cached)", during.Role)
	}
}

func promote(t *testing.T, st store.Store) {
	t.Helper()
	if _, err := st.UpdateUser(context.Background(), "alice", func(u *store.User) error { u.Role = store.RoleAdmin; return nil }); err != nil {
		t.Fatal(err)
	}
}

func touch(t *testing.T, st store.Store) {
	t.Helper()
	s, err := st.GetSession(context.Background(), hashID(1))
	if err != nil {
		t.Fatal(err)
	}
	s.LastSeenAt = s.LastSeenAt.Add(time.Minute)
	mustPut(t, st, s)
}

// Many readers, writers and feed events at once (run with -race): every
// goroutine's reads of a key never go back in time, and a writer reads
// its own write at once.
func TestConcurrentReadersWritersAndInvalidations(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	back := openEmbedded(t, clk)
	feed := newManualFeed()
	c := cache.New(back, cache.Options{Feed: feed.run, MaxEntries: 256}, clk.Now)
	t.Cleanup(func() { _ = c.Close() })
	h := feed.handler(t)
	const keys = 8
	name := func(i int) string { return "u" + strconv.Itoa(i) }
	version := func(u store.User) int { n, _ := strconv.Atoi(u.PasswordHash); return n }
	for i := range keys {
		u := user(name(i))
		u.PasswordHash = "0"
		if err := c.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		mustPut(t, c, session(hashID(i), name(i), clk.Now()))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// One writer per key: version n, then read it back.
	for i := range keys {
		wg.Go(func() {
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.UpdateUser(ctx, name(i), func(u *store.User) error { u.PasswordHash = strconv.Itoa(n); return nil }); err != nil {
					t.Error(err)
					return
				}
				if u, err := c.GetUser(ctx, name(i)); err != nil || version(u) < n {
					t.Errorf("writer of %s wrote %d, then read %d (%v)", name(i), n, version(u), err)
					return
				}
				s := session(hashID(i), name(i), clk.Now())
				s.IP = strconv.Itoa(n)
				mustPutErr(t, c, s)
				if got, err := c.GetSession(ctx, s.IDHash); err != nil || got.IP != s.IP {
					t.Errorf("writer of session %d put IP %s, then read %q (%v)", i, s.IP, got.IP, err)
					return
				}
			}
		})
	}
	// Readers: per key, versions never decrease.
	for range 4 {
		wg.Go(func() {
			seen := make([]int, keys)
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rand.N(keys)
				u, err := c.GetUser(ctx, name(i))
				if err != nil {
					t.Error(err)
					return
				}
				if v := version(u); v < seen[i] {
					t.Errorf("reader saw %s at version %d after %d", name(i), v, seen[i])
					return
				} else {
					seen[i] = v
				}
				if _, err := c.GetSession(ctx, hashID(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// The feed: messages and resets at random.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			i := rand.N(keys)
			switch rand.N(4) {
			case 0:
				h.UserChanged(name(i))
			case 1:
				h.SessionChanged(hashID(i))
			case 2:
				h.UserSessionsChanged(name(i))
			default:
				h.FeedReset(false, "error", nil)
				h.FeedReset(true, "subscribed", nil)
			}
			time.Sleep(time.Duration(rand.N(200)) * time.Microsecond)
		}
	})
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	st := c.Stats()
	if st.UserHits == 0 || st.SessionHits == 0 {
		t.Fatalf("the cache never served: %+v", st)
	}
	t.Logf("stats: %+v", st)
}

func mustPutErr(t *testing.T, st store.Store, s store.Session) {
	if err := st.PutSession(context.Background(), s, time.Hour); err != nil {
		t.Error(err)
	}
}
