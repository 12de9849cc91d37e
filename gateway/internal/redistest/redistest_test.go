package redistest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartKillRestart(t *testing.T) {
	for _, aof := range []bool{false, true} {
		t.Run(fmt.Sprintf("appendonly=%v", aof), func(t *testing.T) {
			s := Start(t, Options{AppendOnly: aof})
			c := s.Client(t)
			ctx := context.Background()
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			s.Kill()
			if err := ping(s.Addr()); err == nil {
				t.Fatal("server still answers after Kill")
			}
			s.Restart()
			var got string
			var err error
			// The client's pool may need a moment to redial.
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
				if got, err = c.Get(ctx, "k").Result(); err == nil || errors.Is(err, redis.Nil) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if aof && got != "v" {
				t.Errorf("after restart with appendonly GET k = %q, %v; want v", got, err)
			}
			if !aof && got != "" {
				t.Errorf("after restart without persistence GET k = %q, %v; want nothing", got, err)
			}
		})
	}
}

func TestServersAreIsolated(t *testing.T) {
	a, b := Start(t, Options{}), Start(t, Options{})
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers share %s", a.Addr())
	}
	ctx := context.Background()
	if err := a.Client(t).Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client(t).Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Errorf("key leaked between servers: EXISTS = %d, %v", n, err)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t)
	rc := c.Client(t)
	ctx := context.Background()
	// Keys spread over every node; the client follows the slots.
	for i := range 50 {
		if err := rc.Set(ctx, fmt.Sprintf("key%d", i), i, 0).Err(); err != nil {
			t.Fatalf("SET on cluster: %v", err)
		}
	}
	if err := rc.MSet(ctx, "{tag}a", 1, "{tag}b", 2).Err(); err != nil {
		t.Errorf("MSET within one hash tag: %v", err)
	}
	if err := rc.Do(ctx, "MSET", "x1", 1, "y2", 2).Err(); err == nil {
		t.Error("cross-slot MSET succeeded: this is not a real cluster")
	}
}

// recorder stands in for *testing.T to observe Skipf and Fatalf.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinary(t *testing.T) {
	tests := []struct {
		name        string
		ci, require string
		wantFail    bool
	}{
		{"developer machine skips", "", "", false},
		{"CI fails", "true", "", true},
		{"required fails", "", "1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv("CI", tc.ci)
			t.Setenv("AUTHGATE_REQUIRE_REDIS", tc.require)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				lookPath(r, "redis-server")
			}()
			<-done
			if tc.wantFail {
				if r.failed == "" || r.skipped != "" {
					t.Errorf("failed=%q skipped=%q; want a failure", r.failed, r.skipped)
				}
				return
			}
			if !strings.HasPrefix(r.skipped, "SKIPPING: redis-server not installed") || r.failed != "" {
				t.Errorf("failed=%q skipped=%q; want a loud skip", r.failed, r.skipped)
			}
		})
	}
}
