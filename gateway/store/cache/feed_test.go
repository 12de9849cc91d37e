package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
)

// deliveryLimit is how soon a change made anywhere must reach a cache.
const deliveryLimit = time.Second

// pollUntil reads every 20 ms until ok holds and returns how long that
// took; it fails the test after deliveryLimit.
func pollUntil(t *testing.T, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > deliveryLimit {
			t.Fatalf("%s: still stale after %v", what, deliveryLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// Another writer on the same Redis (another instance, or the command
// line talking to Redis directly) changes what a cache holds: the cache
// answers the change within a second, because redisstore announces
// every write and the cache follows the announcements.
func TestOtherWritersReachTheCache(t *testing.T) {
	srv := requireRedis(t)
	ctx := context.Background()
	prefix := uniquePrefix()
	c := redisCache(t, newRedis(t, []string{srv.Addr()}, prefix), cache.Options{MaxAge: time.Hour}, time.Now)
	other := newRedis(t, []string{srv.Addr()}, prefix) // no cache: the CLI's view
	now := time.Now()
	if err := other.CreateUser(ctx, user("alice")); err != nil {
		t.Fatal(err)
	}
	sid := 0
	// warm puts a fresh session of alice and reads it and alice through
	// the cache until both are served from memory.
	warm := func(t *testing.T) store.Session {
		t.Helper()
		sid++
		s := session(hashID(sid), "alice", now)
		mustPut(t, other, s)
		for range 2 {
			if _, err := c.GetSession(ctx, s.IDHash); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetUser(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
		}
		st := c.Stats()
		if _, err := c.GetSession(ctx, s.IDHash); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if got := c.Stats(); got.SessionHits != st.SessionHits+1 || got.UserHits != st.UserHits+1 {
			t.Fatalf("not served from memory before the change: %+v", got)
		}
		return s
	}
	sessionGone := func(s store.Session) func() bool {
		return func() bool {
			_, err := c.GetSession(ctx, s.IDHash)
			return errors.Is(err, store.ErrNotFound)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, s store.Session) (check func() bool)
	}{
		{"session rewritten", func(t *testing.T, s store.Session) func() bool {
			s.LastSeenAt = s.LastSeenAt.Add(time.Minute)
			mustPut(t, other, s)
			return func() bool {
				got, err := c.GetSession(ctx, s.IDHash)
				return err == nil && got.LastSeenAt.Equal(s.LastSeenAt.UTC())
			}
		}},
		{"session deleted", func(t *testing.T, s store.Session) func() bool {
			if err := other.DeleteSession(ctx, s.IDHash); err != nil {
				t.Fatal(err)
			}
			return sessionGone(s)
		}},
		{"user's sessions deleted", func(t *testing.T, s store.Session) func() bool {
			if _, err := other.DeleteUserSessions(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			return sessionGone(s)
		}},
		{"user updated", func(t *testing.T, _ store.Session) func() bool {
			if _, err := other.UpdateUser(ctx, "alice", func(u *store.User) error { u.Groups = []string{"new"}; return nil }); err != nil {
				t.Fatal(err)
			}
			return func() bool {
				u, err := c.GetUser(ctx, "alice")
				return err == nil && len(u.Groups) == 1 && u.Groups[0] == "new"
			}
		}},
		{"user deleted", func(t *testing.T, s store.Session) func() bool {
			if err := other.DeleteUser(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			return func() bool {
				_, err := c.GetUser(ctx, "alice")
				return errors.Is(err, store.ErrNotFound) && sessionGone(s)()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := other.GetUser(ctx, "alice"); errors.Is(err, store.ErrNotFound) {
				if err := other.CreateUser(ctx, user("alice")); err != nil {
					t.Fatal(err)
				}
			}
			s := warm(t)
			check := tc.change(t, s)
			took := pollUntil(t, tc.name, check)
			t.Logf("%s reached the cache after %v", tc.name, took)
		})
	}
}

// When Redis goes away the cache drops everything and serves nothing;
// reads fail as they would without a cache (fail closed). When Redis is
// back the cache subscribes again and reads afresh: here the restarted
// server lost its data, and the cached session must not come back.
func TestFeedLostAndRestored(t *testing.T) {
	srv := requireRedis(t)
	ctx := context.Background()
	st := newRedis(t, []string{srv.Addr()}, uniquePrefix())
	c := redisCache(t, st, cache.Options{MaxAge: time.Hour}, time.Now)
	s := session(hashID(1), "alice", time.Now())
	mustPut(t, c, s)
	if err := c.CreateUser(ctx, user("alice")); err != nil {
		t.Fatal(err)
	}
	// Read until both are served from memory. On a loaded machine the
	// feed can miss a ping deadline and reset the cache while it warms up
	// (issue "Steady under saturation"): reading again is what a user's
	// next request does.
	waitFor(t, 10*time.Second, "the session and the user to be cached", func() bool {
		if _, err := c.GetSession(ctx, s.IDHash); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		return st.SessionHits > 0 && st.UserHits > 0 && st.Sessions > 0 && st.Users > 0
	})
	resets := c.Stats().Resets

	srv.Kill()
	waitFor(t, 2*time.Second, "the cache to stop serving", func() bool { return !c.Serving() })
	if st := c.Stats(); st.Sessions != 0 || st.Users != 0 || st.Resets == resets {
		t.Fatalf("entries kept after the feed was lost: %+v", st)
	}
	for range 3 {
		if _, err := c.GetSession(ctx, s.IDHash); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session read with Redis down: %v, want an outage error", err)
		}
		if _, err := c.GetUser(ctx, "alice"); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("user read with Redis down: %v, want an outage error", err)
		}
	}

	srv.Restart() // same port, no persistence: everything is gone
	waitFor(t, 5*time.Second, "the cache to subscribe again", c.Serving)
	waitFor(t, 5*time.Second, "reads to succeed again", func() bool {
		_, err := c.GetSession(ctx, s.IDHash)
		return errors.Is(err, store.ErrNotFound)
	})
	if _, err := c.GetUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user after the restart: %v, want ErrNotFound (fresh read)", err)
	}
	// And the cache works again.
	mustPut(t, c, s)
	for range 2 {
		if _, err := c.GetSession(ctx, s.IDHash); err != nil {
			t.Fatal(err)
		}
	}
	if hits := c.Stats().SessionHits; hits == 0 {
		t.Fatal("no hits after resubscribing")
	}
}

// A late answer on the feed (Redis paused 1.5 s; a saturated CPU reading
// the answer late looks the same) pauses serving from memory while it is
// overdue and then serves again with every entry kept: no reset, so no
// burst of reads to Redis afterwards. (It used to empty the cache: under
// load the p99 rose to a second.) When Redis stays silent, the cache
// still stops serving within about a second and resets, cause "silent".
func TestLateAnswerKeepsTheCache(t *testing.T) {
	srv := requireRedis(t)
	ctx := context.Background()
	prefix := uniquePrefix()
	c := redisCache(t, newRedis(t, []string{srv.Addr()}, prefix), cache.Options{MaxAge: time.Hour}, time.Now)
	if err := newRedis(t, []string{srv.Addr()}, prefix).CreateUser(ctx, user("alice")); err != nil {
		t.Fatal(err)
	}
	// Read until served from memory (the creation's own announcement
	// may drop the first copy).
	waitFor(t, 2*time.Second, "alice served from memory", func() bool {
		if _, err := c.GetUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		return c.Stats().UserHits > 0
	})
	before := c.Stats()
	admin := srv.Client(t)
	pause := func(ms string) time.Time {
		t.Helper()
		if err := admin.Do(ctx, "CLIENT", "PAUSE", ms, "ALL").Err(); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}

	start := pause("1500")
	waitFor(t, 1500*time.Millisecond, "serving to pause while the answer is overdue", func() bool { return !c.Serving() })
	t.Logf("paused serving %v after Redis stopped answering", time.Since(start).Round(time.Millisecond))
	waitFor(t, 3*time.Second, "serving again when the answer came", c.Serving)
	after := c.Stats()
	if after.Resets != before.Resets || after.Users != 1 || after.Stalls == 0 {
		t.Fatalf("a late answer: stats before %+v, after %+v", before, after)
	}
	if _, err := c.GetUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := c.Stats(); got.UserHits != after.UserHits+1 {
		t.Fatalf("the kept entry is not served: %+v", got)
	}

	start = pause("4000")
	waitFor(t, 1500*time.Millisecond, "serving to stop when Redis stays silent", func() bool { return !c.Serving() })
	waitFor(t, 3*time.Second, "a reset", func() bool { return c.Stats().ResetCauses["silent"] == 1 })
	t.Logf("reset %v after Redis stopped answering", time.Since(start).Round(time.Millisecond))
	if c.Stats().Users != 0 {
		t.Fatal("entries kept after the feed was lost")
	}
	waitFor(t, 6*time.Second, "serving again after the pause", c.Serving)
}
