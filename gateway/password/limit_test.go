package password

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/testkit"
)

func TestLimiterBoundsConcurrency(t *testing.T) {
	const slots, queue, callers = 3, 6, 200
	l := NewLimiter(slots, queue, 5*time.Second)
	var running, peak, ok, busy atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range callers {
		wg.Go(func() {
			<-start
			release, err := l.Acquire(context.Background())
			if errors.Is(err, ErrBusy) {
				busy.Add(1)
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			running.Add(-1)
			ok.Add(1)
			release()
		})
	}
	close(start)
	wg.Wait()
	if p := peak.Load(); p > slots || p < 1 {
		t.Errorf("peak concurrency %d, want 1..%d", p, slots)
	}
	// The slots and the queue get through; everyone else is refused at
	// once (a few more may slip in as slots free up during the burst).
	if ok.Load() < slots+queue || busy.Load() == 0 || ok.Load()+busy.Load() != callers {
		t.Errorf("ok %d, busy %d of %d callers", ok.Load(), busy.Load(), callers)
	}
}

func TestLimiterWaitIsBounded(t *testing.T) {
	l := NewLimiter(1, 1, 50*time.Millisecond)
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if _, err := l.Acquire(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Acquire err = %v, want ErrBusy after the wait", err)
	}
	if d := time.Since(begin); d < 50*time.Millisecond || d > 2*time.Second {
		t.Errorf("waited %v, want about 50ms", d)
	}
	// A cancelled context ends the wait with its error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a cancelled context err = %v", err)
	}
	// A waiter gets the slot as soon as it is released.
	done := make(chan error, 1)
	go func() {
		r, err := l.Acquire(context.Background())
		if err == nil {
			r()
		}
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	release()
	if err := <-done; err != nil {
		t.Errorf("waiter after release: %v", err)
	}
}

func TestLimiterDefaults(t *testing.T) {
	l := NewLimiter(0, -1, 0)
	if l.Slots() < 1 || l.queue != int64(2*l.Slots()) || l.maxWait != DefaultMaxWait {
		t.Errorf("defaults: slots %d, queue %d, wait %v", l.Slots(), l.queue, l.maxWait)
	}
	if l := NewLimiter(2, 0, time.Second); l.queue != 0 {
		t.Errorf("queue 0 must mean no waiting, got %d", l.queue)
	}
}

func TestLimitedRefusesWhenBusy(t *testing.T) {
	h := NewHasher(Params{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}, nil)
	l := NewLimiter(1, 0, time.Millisecond)
	x := NewLimited(h, l)
	enc, err := x.Hash("secret")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := x.Verify(enc, "secret"); !ok || err != nil {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := x.Hash("secret"); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash while busy err = %v, want ErrBusy", err)
	}
	if ok, err := x.Verify(enc, "secret"); ok || !errors.Is(err, ErrBusy) {
		t.Errorf("Verify while busy = %v, %v; want false, ErrBusy", ok, err)
	}
	begin := time.Now()
	x.VerifyDummy("secret") // returns without the work
	if d := time.Since(begin); d > time.Second {
		t.Errorf("VerifyDummy while busy took %v", d)
	}
	if x.NeedsRehash(enc) {
		t.Error("NeedsRehash of a fresh hash")
	}
}

// With a share, occasional checks run at once (the budget's burst), and
// under contention a stream of checks rests in proportion to its hashing.
func TestLimiterShareBudget(t *testing.T) {
	clk := testkit.NewClock(time.Unix(1_000_000, 0))
	l := NewLimiter(1, 4, 10*time.Second)
	l.now = clk.Now
	l.SetShare(0.25) // 1 slot: refills 0.25 s per second, holds 2 s

	// hold takes the slot for d of (fake) hashing with another caller
	// waiting, and returns how long that caller waited after the release.
	hold := func(d time.Duration) time.Duration {
		t.Helper()
		release, err := l.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan time.Time, 1)
		go func() {
			next, err := l.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				got <- time.Now()
				return
			}
			got <- time.Now()
			next()
		}()
		for l.waiting.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		clk.Advance(d)
		released := time.Now()
		release()
		release() // a second call must not free the slot twice
		return (<-got).Sub(released)
	}
	// 1.5 s of hashing fits the 2 s burst: no rest. (The waiter spends
	// nothing, so the budget stays at 0.5 s.)
	if w := hold(1500 * time.Millisecond); w > 200*time.Millisecond {
		t.Fatalf("a check within the burst made the next caller wait %v", w)
	}
	// 0.7 s more (refilling 0.175 s meanwhile) overdraws by 25 ms: at
	// 0.25 s per second the slot rests 100 ms before the waiter gets it.
	if w := hold(700 * time.Millisecond); w < 100*time.Millisecond {
		t.Fatalf("the waiting caller got the slot after %v, want at least 100ms of rest", w)
	}
	// In debt but with no one waiting, the slot is free at once: resting
	// would only delay the next sign-in.
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	next, err := l.Acquire(ctx)
	if err != nil {
		t.Fatalf("in debt with no one waiting, the slot was not free at once: %v", err)
	}
	next()
	// Time passing refills the budget.
	clk.Advance(time.Hour)
	if w := hold(100 * time.Millisecond); w > 200*time.Millisecond {
		t.Fatalf("after a quiet hour a check made the next caller wait %v", w)
	}
}

func TestLimiterShareIsClamped(t *testing.T) {
	l := NewLimiter(1, 1, time.Second)
	l.SetShare(0)
	if l.budget == nil || float64(l.budget.Limit()) != MinShare*1000 {
		t.Fatalf("share 0 gave a budget of %v ms per second, want %v", l.budget.Limit(), MinShare*1000)
	}
	l.SetShare(3)
	if l.budget != nil {
		t.Fatalf("share 3 kept a budget (%v ms per second), want none", l.budget.Limit())
	}
	// share 1: the slot is free again at once.
	release, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	again, err := l.Acquire(ctx)
	if err != nil {
		t.Fatalf("slot not free after release with share 1: %v", err)
	}
	again()
}
