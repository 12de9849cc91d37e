package stream_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/stream"
)

// fakeStream is one tracked request: its verdict is settable, its checks
// and cancels are counted.
type fakeStream struct {
	reason    atomic.Value // string
	checks    atomic.Int32
	cancelled atomic.Int32
}

func newFake() *fakeStream {
	f := &fakeStream{}
	f.reason.Store("")
	return f
}

func (f *fakeStream) stream(user string) stream.Stream {
	return stream.Stream{
		Check:  func(context.Context) string { f.checks.Add(1); return f.reason.Load().(string) },
		Cancel: func() { f.cancelled.Add(1) },
		User:   user, Route: "panel",
	}
}

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) StreamClosed(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[reason]++
}

func (c *counter) get(reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[reason]
}

// A request is first checked once it has been open for a whole interval
// (the gate has just decided on it), then at every sweep; one whose check
// gives a reason is cancelled once, forgotten, logged and counted.
func TestSweepEndsRefusedStreams(t *testing.T) {
	var logs testkit.SyncBuffer
	var obs counter
	tr := stream.New(stream.Options{Logger: zerolog.New(&logs), Observer: &obs})
	ctx := context.Background()
	keep, end := newFake(), newFake()
	tr.Add(keep.stream("alice"))
	tr.Add(end.stream("bob"))

	if n := tr.Sweep(ctx); n != 0 || keep.checks.Load() != 0 || end.checks.Load() != 0 {
		t.Fatalf("first sweep after Add: %d ended, checks %d/%d; want none checked", n, keep.checks.Load(), end.checks.Load())
	}
	if n := tr.Sweep(ctx); n != 0 || keep.checks.Load() != 1 || end.checks.Load() != 1 {
		t.Fatalf("second sweep: %d ended, checks %d/%d; want one each", n, keep.checks.Load(), end.checks.Load())
	}
	if logs.String() != "" {
		t.Fatalf("allowed re-checks logged: %s", logs.String())
	}

	end.reason.Store(stream.ReasonSignedOut)
	if n := tr.Sweep(ctx); n != 1 {
		t.Fatalf("sweep after the session ended: %d ended, want 1", n)
	}
	if end.cancelled.Load() != 1 || keep.cancelled.Load() != 0 {
		t.Fatalf("cancelled: ended %d, kept %d", end.cancelled.Load(), keep.cancelled.Load())
	}
	if tr.Len() != 1 {
		t.Fatalf("%d tracked after one of two ended, want 1", tr.Len())
	}
	for _, want := range []string{`"event":"stream_closed"`, `"reason":"signed_out"`, `"user":"bob"`, `"route":"panel"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s: %s", want, logs.String())
		}
	}
	if obs.get(stream.ReasonSignedOut) != 1 {
		t.Fatalf("observer counted %v", obs.n)
	}
	// Ended once: later sweeps neither check nor cancel it again.
	tr.Sweep(ctx)
	if end.checks.Load() != 2 || end.cancelled.Load() != 1 || strings.Count(logs.String(), "stream_closed") != 1 {
		t.Fatalf("ended stream checked %d times, cancelled %d times, logged %d times", end.checks.Load(), end.cancelled.Load(),
			strings.Count(logs.String(), "stream_closed"))
	}
}

// A request that returns (Remove) while its check runs is not cancelled
// or counted, and Add/Remove never wait for a running check.
func TestRemoveDuringCheck(t *testing.T) {
	var obs counter
	tr := stream.New(stream.Options{Logger: zerolog.Nop(), Observer: &obs})
	var id uint64
	cancelled := false
	started, release := make(chan struct{}), make(chan struct{})
	id = tr.Add(stream.Stream{
		Check: func(context.Context) string {
			close(started)
			<-release
			return stream.ReasonSignedOut
		},
		Cancel: func() { cancelled = true },
	})
	tr.Sweep(context.Background())
	done := make(chan int)
	go func() { done <- tr.Sweep(context.Background()) }()
	<-started
	other := tr.Add(newFake().stream("carol")) // does not wait for the check
	tr.Remove(id)
	tr.Remove(other)
	close(release)
	if n := <-done; n != 0 || cancelled || obs.get(stream.ReasonSignedOut) != 0 {
		t.Fatalf("a request that had returned was ended: %d, cancelled %v", n, cancelled)
	}
	tr.Remove(id) // twice: nothing happens
}

// Run sweeps on the injected ticks and stops with its context; a check
// cut short by that context (shutdown) is no verdict.
func TestRunOnTicks(t *testing.T) {
	// A check timeout far beyond the test: only the shutdown may end the
	// blocked check (a loaded machine must not turn it into a verdict).
	tr := stream.New(stream.Options{Logger: zerolog.Nop(), CheckTimeout: time.Hour})
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.Run(ctx, ticks) }()

	f := newFake()
	f.reason.Store(stream.ReasonSecondFactor)
	tr.Add(f.stream("alice"))
	ticks <- time.Time{}
	ticks <- time.Time{}
	ticks <- time.Time{} // the previous sweep has finished once this is taken
	if f.cancelled.Load() != 1 {
		t.Fatalf("cancelled %d times after two sweeps, want 1", f.cancelled.Load())
	}

	blocked := make(chan struct{})
	shutdownCancelled := false
	tr.Add(stream.Stream{
		Check: func(cctx context.Context) string {
			close(blocked)
			<-cctx.Done()
			return stream.ReasonUnavailable
		},
		Cancel: func() { shutdownCancelled = true },
	})
	// Tick until a sweep is inside that check (how many sweeps that takes
	// depends on where the previous one was when the stream was added).
	go func() {
		for {
			select {
			case ticks <- time.Time{}:
			case <-blocked:
				return
			}
		}
	}()
	<-blocked
	cancel()
	<-done
	if shutdownCancelled {
		t.Fatal("a check cut short by shutdown ended its request")
	}
}

// Start's stop ends the watcher and may be called twice.
func TestStartStop(t *testing.T) {
	tr := stream.New(stream.Options{Logger: zerolog.Nop()})
	f := newFake()
	f.reason.Store(stream.ReasonSignedOut)
	tr.Add(f.stream("alice"))
	stop := tr.Start(10 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for f.cancelled.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watcher never ended the stream")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	stop()
}
