package redisstore

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/storetest"
)

func newSentinelStore(t testing.TB, set *redistest.SentinelSet, prefix string) *Store {
	s := New(NewClient(ClientOptions{Addrs: set.SentinelAddrs(), MasterName: redistest.SentinelMasterName}), Options{KeyPrefix: prefix})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The suite through Sentinel: NewClient with MasterName finds the master
// through the sentinels and every operation works on it.
func TestConformanceSentinel(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel start-up takes seconds")
	}
	set := redistest.StartSentinel(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Store: newSentinelStore(t, set, uniquePrefix()), Advance: time.Sleep}
	})
}

// A master crash (SIGKILL) under a store built by NewClient: while the
// master is gone every read fails promptly and none says "not found";
// after the promotion the same store, without being rebuilt, finds the
// new master and everything written (and replicated) before the crash.
func TestSentinelFailoverKeepsData(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel failover takes seconds")
	}
	set := redistest.StartSentinel(t)
	ctx := t.Context()
	s := newSentinelStore(t, set, "p")
	user := store.User{Name: "alice", Role: store.RoleAdmin, TOTPSecret: []byte("sealed")}
	if err := s.CreateUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	sess := store.Session{IDHash: "live", User: "alice", Stage: store.StageFull}
	if err := s.PutSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.UseStep(ctx, "alice", 42, time.Hour); err != nil || !ok {
		t.Fatalf("UseStep = %v, %v", ok, err)
	}
	if _, err := s.Incr(ctx, "fail:alice", 3, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting(ctx, "two_factor.mode", "required"); err != nil {
		t.Fatal(err)
	}
	set.WaitReplicated(t)

	// Reads keep going while the master dies and the replica takes over.
	var (
		mu       sync.Mutex
		problems []string
		slowest  time.Duration
		failed   int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			got, err := s.GetSession(ctx, "live")
			took := time.Since(start)
			mu.Lock()
			slowest = max(slowest, took)
			switch {
			case errors.Is(err, store.ErrNotFound):
				problems = append(problems, "GetSession said not found during the failover")
			case err != nil:
				failed++
			case got.User != "alice":
				problems = append(problems, "GetSession returned another session: "+got.User)
			}
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	})
	_, promoted := set.KillMaster(t)
	promotedAt := time.Now()
	waitUp(t, s)
	t.Logf("store usable %v after the promotion", time.Since(promotedAt).Round(time.Millisecond))
	close(stop)
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	// Each failed read must fail fast (dial refused or timeout), not hang.
	if slowest > 5*time.Second {
		t.Errorf("a read took %v during the failover, want a prompt answer", slowest)
	}
	t.Logf("%d reads failed during the failover; the slowest took %v", failed, slowest.Round(time.Millisecond))

	if got, err := s.GetUser(ctx, "alice"); err != nil || string(got.TOTPSecret) != "sealed" {
		t.Errorf("GetUser after failover = %+v, %v", got, err)
	}
	if list, err := s.ListUserSessions(ctx, "alice"); err != nil || len(list) != 1 || list[0].IDHash != "live" {
		t.Errorf("ListUserSessions after failover = %v, %v", list, err)
	}
	if ok, err := s.UseStep(ctx, "alice", 42, time.Hour); err != nil || ok {
		t.Errorf("a step used before the failover is usable again: %v, %v", ok, err)
	}
	if n, err := s.Counter(ctx, "fail:alice"); err != nil || n != 3 {
		t.Errorf("Counter after failover = %d, %v; want 3", n, err)
	}
	if v, err := s.GetSetting(ctx, "two_factor.mode"); err != nil || v != "required" {
		t.Errorf("GetSetting after failover = %q, %v", v, err)
	}
	// Writes go to the new master.
	if err := s.PutSession(ctx, store.Session{IDHash: "new", User: "alice", Stage: store.StageFull}, time.Hour); err != nil {
		t.Fatalf("PutSession after failover: %v", err)
	}
	if n, err := promoted.Client(t).Exists(ctx, "p:s:new").Result(); err != nil || n != 1 {
		t.Errorf("the write after failover is not on the promoted node %s: %d, %v", promoted.Addr(), n, err)
	}
}
