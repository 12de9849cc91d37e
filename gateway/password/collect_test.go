package password

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// heapGoal reads the collector's current heap goal.
func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func forcedGCs() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumForcedGC
}

// One argon2id run (64 MiB, the default) at gc_percent 400 leaves the
// collector's heap goal at five times the 64 MiB buffer, which the
// collection its own allocation started counted as live: the process
// then grows towards the memory limit on other garbage (the reviewer's
// 190 MiB peak). With CollectAfterHash a collection runs once the
// buffer is garbage and the goal is back near the small live heap.
func TestCollectAfterHashLowersTheHeapGoal(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	h := NewHasher(Params{MemoryKiB: 64 << 10, Iterations: 1, Parallelism: 1}, nil)
	goalAfterHash := func(collect bool) uint64 {
		t.Helper()
		l := NewLimiter(1, 0, 0)
		if collect {
			l.CollectAfterHash()
		}
		runtime.GC()
		forced := forcedGCs()
		release, err := l.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Hash("correct horse"); err != nil {
			t.Fatal(err)
		}
		release()
		if collect {
			deadline := time.Now().Add(5 * time.Second)
			for forcedGCs() == forced {
				if time.Now().After(deadline) {
					t.Fatal("no collection after the slot was given back")
				}
				time.Sleep(time.Millisecond)
			}
			// The collection counted is the one started; let it finish.
			runtime.Gosched()
			time.Sleep(10 * time.Millisecond)
		}
		return heapGoal()
	}
	without := goalAfterHash(false)
	with := goalAfterHash(true)
	t.Logf("heap goal after one 64 MiB hash: %d MiB without, %d MiB with a collection after it", without>>20, with>>20)
	if without < 128<<20 {
		t.Fatalf("without a collection after the hash the goal is %d MiB: the problem this guards against did not show", without>>20)
	}
	if with > 64<<20 {
		t.Fatalf("with a collection after the hash the goal is still %d MiB", with>>20)
	}
}
