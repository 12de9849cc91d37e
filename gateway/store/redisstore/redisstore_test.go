package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/storetest"
)

var prefixSeq atomic.Int64

// uniquePrefix isolates one store on a shared server.
func uniquePrefix() string {
	return fmt.Sprintf("test%d", prefixSeq.Add(1))
}

func newStore(t testing.TB, addrs []string, prefix string) *Store {
	s := New(NewClient(ClientOptions{Addrs: addrs}), Options{KeyPrefix: prefix})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Redis expires keys on its own clock, so Advance sleeps for real.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Store: newStore(t, []string{srv.Addr()}, uniquePrefix()), Advance: time.Sleep}
	})
}

// The same suite on a three-node Cluster catches any operation whose keys
// span hash slots (CROSSSLOT).
func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start-up takes seconds")
	}
	cluster := redistest.StartCluster(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Store: newStore(t, cluster.Addrs(), uniquePrefix()), Advance: time.Sleep}
	})
}

func TestDefaultKeyPrefix(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := newStore(t, []string{srv.Addr()}, "")
	if err := s.CreateUser(ctx, store.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, store.Session{IDHash: "ab", User: "alice"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	keys, err := srv.Client(t).Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no keys written")
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "authgate:") {
			t.Errorf("key %q lacks the default prefix", k)
		}
	}
}

func TestPrefixesIsolate(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	a := newStore(t, []string{srv.Addr()}, "a")
	b := newStore(t, []string{srv.Addr()}, "b")
	if err := a.CreateUser(ctx, store.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("user visible under another prefix: err = %v", err)
	}
	if n, err := b.CountUsers(ctx); err != nil || n != 0 {
		t.Errorf("CountUsers under another prefix = %d, %v", n, err)
	}
}

// A session's key and its user's index live in different slots, so the
// index can hold entries whose session is gone. Readers skip them, and
// prune them once they are past their expiry.
func TestSessionIndexPruned(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := newStore(t, []string{srv.Addr()}, "p")
	raw := srv.Client(t)
	if err := s.PutSession(ctx, store.Session{IDHash: "short", User: "alice"}, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, store.Session{IDHash: "crashed", User: "alice"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, store.Session{IDHash: "live", User: "alice"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	// As if a DeleteSession died between its two writes.
	if err := raw.Del(ctx, s.sessionKey("crashed")).Err(); err != nil {
		t.Fatal(err)
	}
	// The index never outlives its longest session.
	if pttl, err := raw.PTTL(ctx, s.indexKey("alice")).Result(); err != nil || pttl <= 0 || pttl > time.Hour {
		t.Errorf("index PTTL = %v, %v; want (0, 1h]", pttl, err)
	}
	time.Sleep(300 * time.Millisecond)
	list, err := s.ListUserSessions(ctx, "alice")
	if err != nil || len(list) != 1 || list[0].IDHash != "live" {
		t.Fatalf("ListUserSessions = %v, %v; want only live", list, err)
	}
	members, err := raw.ZRange(ctx, s.indexKey("alice"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(members, ",") != "crashed,live" {
		t.Errorf("index after list = %v; want the expired entry pruned, the unexpired stale one kept", members)
	}
	if n, err := s.DeleteUserSessions(ctx, "alice"); err != nil || n != 1 {
		t.Errorf("DeleteUserSessions = %d, %v; want 1", n, err)
	}
	if n, err := raw.Exists(ctx, s.indexKey("alice")).Result(); err != nil || n != 0 {
		t.Errorf("index still exists after DeleteUserSessions: %d, %v", n, err)
	}
}

func TestCounterKeyExpires(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := newStore(t, []string{srv.Addr()}, "p")
	for range 3 {
		if _, err := s.Incr(ctx, "k", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	pttl, err := srv.Client(t).PTTL(ctx, s.counterKey("k")).Result()
	if err != nil || pttl <= 0 || pttl > time.Minute {
		t.Errorf("counter PTTL = %v, %v; want (0, 1m]", pttl, err)
	}
}

// interferer rewrites the watched key just before every EXEC, so each
// optimistic transaction fails.
type interferer struct {
	other redis.UniversalClient
	key   string
}

func (h interferer) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h interferer) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h interferer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			if err := h.other.Append(ctx, h.key, " ").Err(); err != nil {
				return err
			}
		}
		return next(ctx, cmds)
	}
}

func TestUpdateUserConflict(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := newStore(t, []string{srv.Addr()}, "p")
	if err := s.CreateUser(ctx, store.User{Name: "alice", Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	s.rdb.AddHook(interferer{other: srv.Client(t), key: s.userKey("alice")})
	calls := 0
	_, err := s.UpdateUser(ctx, "alice", func(u *store.User) error {
		calls++
		u.Role = store.RoleAdmin
		return nil
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateUser under constant interference err = %v, want ErrConflict", err)
	}
	if calls != updateAttempts {
		t.Errorf("fn ran %d times, want %d", calls, updateAttempts)
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil || got.Role != store.RoleUser {
		t.Errorf("user after failed update = %+v, %v; want unchanged", got, err)
	}
}

// Paging must stay correct and cheap with many users (ZRANGEBYLEX, not
// a scan).
func TestListManyUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 users")
	}
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := newStore(t, []string{srv.Addr()}, "p")
	const n = 10000
	name := func(i int) string { return fmt.Sprintf("user%05d", i) }
	// Seed through a pipeline in the store's own layout: n CreateUser
	// round trips would dominate the test.
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			data, err := encode(store.User{Name: name(i), Role: store.RoleUser})
			if err != nil {
				return err
			}
			p.Set(ctx, s.userKey(name(i)), data, 0)
			p.ZAdd(ctx, s.usersKey(), redis.Z{Member: name(i)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s.CountUsers(ctx); err != nil || c != n {
		t.Fatalf("CountUsers = %d, %v", c, err)
	}
	start := time.Now()
	seen, after := 0, ""
	for {
		page, err := s.ListUsers(ctx, store.ListOptions{After: after, Limit: 250})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, u := range page {
			if u.Name != name(seen) {
				t.Fatalf("user %d is %q, want %q", seen, u.Name, name(seen))
			}
			seen++
		}
		after = page[len(page)-1].Name
	}
	if seen != n {
		t.Fatalf("paged through %d users, want %d", seen, n)
	}
	all, err := s.ListUsers(ctx, store.ListOptions{})
	if err != nil || len(all) != n {
		t.Fatalf("unlimited ListUsers = %d users, %v", len(all), err)
	}
	t.Logf("paged %d users in %v", n, time.Since(start))
}

// With appendonly yes, a crash (SIGKILL) and restart keeps the data.
func TestSurvivesRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	ctx := t.Context()
	s := newStore(t, []string{srv.Addr()}, "p")
	want := store.User{Name: "alice", Role: store.RoleAdmin, TOTPSecret: []byte("sealed")}
	if err := s.CreateUser(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Restart()
	waitUp(t, s)
	got, err := s.GetUser(ctx, "alice")
	if err != nil || string(got.TOTPSecret) != "sealed" || got.Role != store.RoleAdmin {
		t.Fatalf("GetUser after restart = %+v, %v", got, err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers after restart = %d, %v", n, err)
	}
	if v, err := s.GetSetting(ctx, "k"); err != nil || v != "v" {
		t.Errorf("GetSetting after restart = %q, %v", v, err)
	}
}

// While Redis is down every operation returns an error promptly instead
// of hanging the request; after it comes back the store recovers.
func TestFailsFastWhileDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := newStore(t, []string{srv.Addr()}, "p")
	if err := s.CreateUser(ctx, store.User{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	ops := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"GetUser", func() error { _, err := s.GetUser(ctx, "alice"); return err }},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(ctx, "alice", func(*store.User) error { return nil })
			return err
		}},
		{"GetSession", func() error { _, err := s.GetSession(ctx, "x"); return err }},
		{"PutSession", func() error { return s.PutSession(ctx, store.Session{IDHash: "x", User: "alice"}, time.Minute) }},
		{"UseStep", func() error { _, err := s.UseStep(ctx, "alice", 1, time.Minute); return err }},
		{"Incr", func() error { _, err := s.Incr(ctx, "k", 1, time.Minute); return err }},
		{"ListUsers", func() error { _, err := s.ListUsers(ctx, store.ListOptions{}); return err }},
	}
	for _, op := range ops {
		start := time.Now()
		err := op.call()
		elapsed := time.Since(start)
		if err == nil {
			t.Errorf("%s succeeded with Redis down", op.name)
		}
		if errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s with Redis down returned ErrNotFound; an outage must not look like a missing item", op.name)
		}
		if elapsed > 3*time.Second {
			t.Errorf("%s took %v with Redis down, want a prompt error", op.name, elapsed)
		}
	}
	srv.Restart()
	waitUp(t, s)
	if err := s.SetSetting(ctx, "k", "v"); err != nil {
		t.Errorf("SetSetting after recovery: %v", err)
	}
}

// waitUp waits for the client to reconnect (go-redis re-probes a failed
// pool about once a second).
func waitUp(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("store did not reconnect within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNewClientKinds(t *testing.T) {
	tests := []struct {
		name string
		opts ClientOptions
		want string
	}{
		{"one address is standalone", ClientOptions{Addrs: []string{"127.0.0.1:1"}}, "*redis.Client"},
		{"several addresses are a cluster", ClientOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, "*redis.ClusterClient"},
		{"a master name is sentinel", ClientOptions{Addrs: []string{"127.0.0.1:1"}, MasterName: "mymaster"}, "*redis.Client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(tc.opts)
			defer c.Close()
			if got := fmt.Sprintf("%T", c); got != tc.want {
				t.Errorf("client type = %s, want %s", got, tc.want)
			}
		})
	}
}
