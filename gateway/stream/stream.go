package stream

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultInterval is how often Start's watcher re-checks the open
// requests: a session that ends is cut from its streams within about
// twice this (one interval for a request that has just started).
const DefaultInterval = time.Second

// DefaultCheckTimeout bounds one Check.
const DefaultCheckTimeout = 2 * time.Second

// Reasons a Check gives for ending a stream (the "reason" of the
// stream_closed log line and of the metric).
const (
	// ReasonSignedOut: the session is gone (logout, revoke, expiry,
	// rotation, a deleted user) or is no longer valid.
	ReasonSignedOut = "signed_out"
	// ReasonSecondFactor: the route now wants a second factor the
	// session has not passed (the 2FA mode was raised).
	ReasonSecondFactor = "second_factor_required"
	// ReasonPasswordChange: an admin reset the password; nothing is
	// reached until it is changed.
	ReasonPasswordChange = "password_change_required"
	// ReasonNotAllowed: the user is no longer in the route's allow lists.
	ReasonNotAllowed = "not_allowed"
	// ReasonIdentityChanged: still allowed, but as another identity
	// (groups) than the upstream was told when the stream started.
	ReasonIdentityChanged = "identity_changed"
	// ReasonUnavailable: the decision could not be made (the store did
	// not answer): fail closed, as the gate does.
	ReasonUnavailable = "unavailable"
	// ReasonDenied: any other refusal.
	ReasonDenied = "denied"
)

// Reasons lists every reason, for metrics created at zero.
var Reasons = []string{ReasonSignedOut, ReasonSecondFactor, ReasonPasswordChange, ReasonNotAllowed,
	ReasonIdentityChanged, ReasonUnavailable, ReasonDenied}

// Stream is one running request as Add takes it.
type Stream struct {
	// Check decides again whether the request may go on: "" lets it,
	// anything else is the reason to end it (one of the Reason*
	// constants). It is called from the watcher's goroutine only, with a
	// context bounded by Options.CheckTimeout, and must not write or log
	// anything while it lets the request go on (it runs every interval).
	Check func(ctx context.Context) (reason string)
	// Cancel ends the request (the cancel func of its context).
	Cancel context.CancelFunc
	// Log is the request's logger (its request id); nil: the Tracker's.
	Log *zerolog.Logger
	// User and Route name the request in the stream_closed line.
	User, Route string
}

// Observer counts ended streams (a *metrics.Metrics). It must not block.
type Observer interface {
	StreamClosed(reason string)
}

// Options configure New.
type Options struct {
	// Logger writes the stream_closed lines of Streams without a Log.
	Logger zerolog.Logger
	// Observer counts ended streams (nil: none).
	Observer Observer
	// CheckTimeout bounds each Check. Default DefaultCheckTimeout.
	CheckTimeout time.Duration
}

// Tracker is the registry of running requests and their watcher. It is
// safe for concurrent use.
type Tracker struct {
	o Options

	mu sync.Mutex
	// sweeps counts the Sweeps begun; an entry is checked from the
	// second Sweep after its Add on, so it has been open for at least one
	// whole interval.
	sweeps uint64
	next   uint64
	open   map[uint64]entry
}

type entry struct {
	Stream
	since uint64 // sweeps when added
}

// New returns an empty Tracker; nothing is checked until Run, Start or
// Sweep is called.
func New(o Options) *Tracker {
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	return &Tracker{o: o, open: make(map[uint64]entry)}
}

// Add registers a running request and returns the id to Remove it with.
func (t *Tracker) Add(s Stream) uint64 {
	t.mu.Lock()
	t.next++
	id := t.next
	t.open[id] = entry{Stream: s, since: t.sweeps}
	t.mu.Unlock()
	return id
}

// Remove forgets the request (it has returned). Removing an id twice, or
// one the watcher has already ended, does nothing.
func (t *Tracker) Remove(id uint64) {
	t.mu.Lock()
	delete(t.open, id)
	t.mu.Unlock()
}

// Len is the number of requests tracked now.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open)
}

// Sweep checks every request added before the previous Sweep, one after
// the other, and ends those whose Check gives a reason. It returns how
// many it ended. A Sweep cut short by ctx ends nothing more: a Check that
// failed because ctx ended (shutdown) is not a verdict.
func (t *Tracker) Sweep(ctx context.Context) int {
	type due struct {
		id uint64
		entry
	}
	t.mu.Lock()
	t.sweeps++
	var todo []due
	for id, e := range t.open {
		if t.sweeps-e.since >= 2 {
			todo = append(todo, due{id, e})
		}
	}
	t.mu.Unlock()
	closed := 0
	for _, d := range todo {
		cctx, cancel := context.WithTimeout(ctx, t.o.CheckTimeout)
		reason := d.Check(cctx)
		cancel()
		if ctx.Err() != nil {
			return closed
		}
		if reason == "" {
			continue
		}
		t.mu.Lock()
		_, running := t.open[d.id]
		delete(t.open, d.id)
		t.mu.Unlock()
		if !running {
			continue // it returned meanwhile
		}
		d.Cancel()
		closed++
		log := d.Log
		if log == nil || log.GetLevel() == zerolog.Disabled {
			log = &t.o.Logger
		}
		log.Info().Str("event", "stream_closed").Str("reason", reason).Str("user", d.User).Str("route", d.Route).
			Msg("the session no longer passes: request ended")
		if t.o.Observer != nil {
			t.o.Observer.StreamClosed(reason)
		}
	}
	return closed
}

// Run sweeps at every tick until ctx ends. Ticks that come while a Sweep
// runs wait for it (a time.Ticker drops them).
func (t *Tracker) Run(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			t.Sweep(ctx)
		}
	}
}

// Start runs the watcher on a real ticker of interval (DefaultInterval
// if <= 0) in its own goroutine. stop ends it and waits for it; it may be
// called more than once.
func (t *Tracker) Start(interval time.Duration) (stop func()) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	tk := time.NewTicker(interval)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer tk.Stop()
		t.Run(ctx, tk.C)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}
