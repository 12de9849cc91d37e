package redistest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// getEventually reads key through c until the client has found the
// current master again (it redials once a second after failed dials).
func getEventually(t *testing.T, c redis.UniversalClient, key string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, err := c.Get(context.Background(), key).Result()
		if err == nil {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s through sentinel client: %v", key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSentinelSet(t *testing.T) {
	if testing.Short() {
		t.Skip("sentinel failovers take seconds")
	}
	start := time.Now()
	s := StartSentinel(t)
	t.Logf("start-up: %v", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	if got := s.Master(t); got != s.Data[0] {
		t.Fatalf("master is %s, want Data[0] %s", got.Addr(), s.Data[0].Addr())
	}
	for _, d := range s.Data {
		v, err := d.Client(t).ConfigGet(ctx, "appendonly").Result()
		if err != nil || v["appendonly"] != "yes" {
			t.Errorf("data node %s appendonly = %v, %v; want yes", d.Addr(), v, err)
		}
	}
	c := s.Client(t)
	if err := c.Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatalf("SET through sentinel client: %v", err)
	}
	// The replica is read-only: writes really go to the master.
	if err := s.Replica(t).Client(t).Set(ctx, "x", 1, 0).Err(); err == nil {
		t.Fatal("the replica accepted a write")
	}
	s.WaitReplicated(t)
	if v, err := s.Replica(t).Client(t).Get(ctx, "k").Result(); err != nil || v != "before" {
		t.Fatalf("replica after WaitReplicated: GET k = %q, %v", v, err)
	}

	// A crash: the replica is promoted and keeps the data.
	start = time.Now()
	killed, promoted := s.KillMaster(t)
	t.Logf("SIGKILL to promotion agreed by all sentinels: %v", time.Since(start).Round(time.Millisecond))
	if killed != s.Data[0] || promoted != s.Data[1] {
		t.Fatalf("killed %s, promoted %s; want Data[0] killed and Data[1] promoted", killed.Addr(), promoted.Addr())
	}
	if err := ping(killed.Addr()); err == nil {
		t.Fatal("the killed master still answers")
	}
	if got := getEventually(t, c, "k"); got != "before" {
		t.Fatalf("after failover GET k = %q, want before", got)
	}
	if err := c.Set(ctx, "k", "after", 0).Err(); err != nil {
		t.Fatalf("SET after failover: %v", err)
	}

	// The old master comes back as a replica of the new one, with the
	// new data.
	start = time.Now()
	s.Rejoin(t, killed)
	t.Logf("rejoin: %v", time.Since(start).Round(time.Millisecond))
	if s.Replica(t) != killed {
		t.Fatalf("rejoined node %s is not the replica", killed.Addr())
	}
	s.WaitReplicated(t)
	if v, err := killed.Client(t).Get(ctx, "k").Result(); err != nil || v != "after" {
		t.Fatalf("rejoined replica: GET k = %q, %v; want after", v, err)
	}

	// A requested failover moves the master back without losing writes.
	start = time.Now()
	demoted, back := s.Failover(t)
	t.Logf("requested failover: %v", time.Since(start).Round(time.Millisecond))
	if demoted != promoted || back != killed {
		t.Fatalf("SENTINEL FAILOVER demoted %s, promoted %s", demoted.Addr(), back.Addr())
	}
	for i := range 20 {
		key := fmt.Sprintf("n%d", i)
		deadline := time.Now().Add(15 * time.Second)
		for c.Set(ctx, key, i, 0).Err() != nil {
			if time.Now().After(deadline) {
				t.Fatal("the client did not follow the requested failover")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := getEventually(t, c, "k"); got != "after" {
		t.Fatalf("after the requested failover GET k = %q, want after", got)
	}
	if n, err := back.Client(t).Exists(ctx, "n19").Result(); err != nil || n != 1 {
		t.Fatalf("writes after the requested failover are not on the new master %s: %d, %v", back.Addr(), n, err)
	}
}
