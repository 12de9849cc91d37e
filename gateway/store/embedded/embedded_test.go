package embedded

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/storetest"
)

// newFakeClock is a manually advanced clock.
func newFakeClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
}

func openTest(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		clk := newFakeClock()
		s := openTest(t, filepath.Join(t.TempDir(), "authgate.db"), Options{Now: clk.Now})
		return storetest.Harness{Store: s, Advance: clk.Advance}
	})
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	openTest(t, path, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %v, want 0600", perm)
	}
}

func TestOpenTightensLooseMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	s := openTest(t, path, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openTest(t, path, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode after reopen = %v, want 0600", perm)
	}
}

// flock locks are per open file, so a second Open in this process
// contends exactly as another process would.
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	openTest(t, path, Options{})
	start := time.Now()
	s, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		_ = s.Close()
		t.Fatal("second Open succeeded while the file was held")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open err = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v despite a 100ms lock timeout", d)
	}
}

func TestOpenBadPath(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing-dir", "authgate.db"), Options{})
	if err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("Open in a missing directory err = %v, want a plain open error", err)
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "authgate.db")
	clk := newFakeClock()
	s := openTest(t, path, Options{Now: clk.Now})
	u := store.User{Name: "alice", PasswordHash: "$2y$10$x", Role: store.RoleAdmin, TOTPSecret: []byte("sealed")}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, store.Session{IDHash: "ab", User: "alice", Stage: store.StageFull}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{Now: clk.Now})
	got, err := s.GetUser(ctx, "alice")
	if err != nil || string(got.TOTPSecret) != "sealed" {
		t.Fatalf("GetUser after reopen = %+v, %v", got, err)
	}
	if _, err := s.GetSession(ctx, "ab"); err != nil {
		t.Errorf("GetSession after reopen: %v", err)
	}
	if v, err := s.GetSetting(ctx, "k"); err != nil || v != "v" {
		t.Errorf("GetSetting after reopen = %q, %v", v, err)
	}
	// Expiry is absolute, so time spent closed counts.
	clk.Advance(2 * time.Hour)
	if _, err := s.GetSession(ctx, "ab"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession after its TTL err = %v, want ErrNotFound", err)
	}
}

// countKeys returns how many keys each bucket holds.
func countKeys(t *testing.T, s *Store) map[string]int {
	t.Helper()
	counts := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			counts[string(name)] = tx.Bucket(name).Stats().KeyN
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

func fill(t *testing.T, s *Store, ttl time.Duration) {
	t.Helper()
	ctx := t.Context()
	for i, user := range []string{"alice", "alice", "bob"} {
		id := string(rune('a' + i))
		if err := s.PutSession(ctx, store.Session{IDHash: id, User: user}, ttl); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.UseStep(ctx, "alice", 1, ttl); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(ctx, "c", 1, ttl); err != nil {
		t.Fatal(err)
	}
}

func TestSweepRemovesOnlyExpired(t *testing.T) {
	clk := newFakeClock()
	s := openTest(t, filepath.Join(t.TempDir(), "authgate.db"), Options{Now: clk.Now, SweepInterval: time.Hour})
	fill(t, s, time.Minute)
	// Long-lived items that must survive.
	ctx := t.Context()
	if err := s.PutSession(ctx, store.Session{IDHash: "keep", User: "alice"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseStep(ctx, "alice", 2, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(ctx, "keep", 1, time.Hour); err != nil {
		t.Fatal(err)
	}

	if n, err := s.sweep(); err != nil || n != 0 {
		t.Fatalf("sweep before expiry removed %d, %v; want 0", n, err)
	}
	clk.Advance(time.Minute)
	n, err := s.sweep()
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 { // 3 sessions, 1 step, 1 counter
		t.Errorf("sweep removed %d items, want 5", n)
	}
	want := map[string]int{"sessions": 1, "user_sessions": 1, "steps": 1, "counters": 1}
	got := countKeys(t, s)
	for bucket, w := range want {
		if got[bucket] != w {
			t.Errorf("bucket %s holds %d keys after sweep, want %d", bucket, got[bucket], w)
		}
	}
	list, err := s.ListUserSessions(ctx, "alice")
	if err != nil || len(list) != 1 || list[0].IDHash != "keep" {
		t.Errorf("ListUserSessions after sweep = %v, %v", list, err)
	}
}

func TestSweepManyBatches(t *testing.T) {
	clk := newFakeClock()
	s := openTest(t, filepath.Join(t.TempDir(), "authgate.db"), Options{Now: clk.Now, SweepInterval: time.Hour})
	const n = 2*sweepBatch + 17
	// One transaction: n separate UseStep calls would mean n fsyncs.
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			rec := expiringRecord{Expiry: deadline(clk.Now(), time.Second)}
			if err := putExpiring(tx.Bucket(bucketSteps), stepKey("alice", int64(i)), rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.UseStep(t.Context(), "alice", n-1, time.Second); err != nil || ok {
		t.Fatalf("UseStep on a filled step = %v, %v; want false", ok, err)
	}
	clk.Advance(time.Second)
	if got, err := s.sweep(); err != nil || got != n {
		t.Fatalf("sweep removed %d, %v; want %d", got, err, n)
	}
	if got := countKeys(t, s)["steps"]; got != 0 {
		t.Errorf("%d steps left after sweep", got)
	}
}

func TestSweeperRunsInBackground(t *testing.T) {
	clk := newFakeClock()
	s := openTest(t, filepath.Join(t.TempDir(), "authgate.db"), Options{Now: clk.Now, SweepInterval: 5 * time.Millisecond})
	fill(t, s, time.Minute)
	clk.Advance(time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := countKeys(t, s)
		if c["sessions"]+c["user_sessions"]+c["steps"]+c["counters"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background sweeper left %v", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Close stops the sweeper: it returns promptly and the goroutine ends.
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case <-s.done:
	default:
		t.Fatal("sweeper goroutine still running after Close")
	}
}

func TestCorruptValueIsAnError(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "authgate.db"), Options{})
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).Put([]byte("alice"), []byte("{not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(context.Background(), "alice"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser of a corrupt record err = %v, want a decode error", err)
	}
}
