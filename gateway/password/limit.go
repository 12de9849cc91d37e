package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy is returned when every hashing slot is taken and the caller
// could not wait for one (the queue was full, or the wait ran out).
var ErrBusy = errors.New("password: too many password checks in progress")

// DefaultMaxWait is how long a caller waits for a slot by default.
const DefaultMaxWait = 2 * time.Second

// Limiter bounds how many password hashes and verifications run at once.
// Each argon2id run holds its memory (MemoryKiB) for its whole duration,
// so without a bound a flood of logins turns into a flood of allocations.
// Callers beyond the slots wait in a short queue, for a bounded time;
// anyone beyond that is refused at once with ErrBusy.
type Limiter struct {
	slots   chan struct{}
	queue   int64
	waiting atomic.Int64
	maxWait time.Duration
	// share is the fraction of the slots' time that may go to hashing
	// in the long run (see SetShare); 1 means no rest between holders.
	share float64
	now   func() time.Time

	// The hashing budget: time the slots may still spend hashing before
	// they rest. It refills at share × slots per second up to burst.
	mu     sync.Mutex
	budget time.Duration
	burst  time.Duration
	last   time.Time
}

// BudgetBurst is how many seconds of hashing per slot the budget holds:
// sign-ins now and then (a few a minute) never wait for it; only a
// sustained stream, a flood, is held to the share.
const BudgetBurst = 2 * time.Second

// NewLimiter returns a Limiter with n slots (n <= 0: one per CPU), up to
// queue callers waiting (queue < 0: 2×n) at most maxWait each (maxWait
// <= 0: DefaultMaxWait).
func NewLimiter(n, queue int, maxWait time.Duration) *Limiter {
	if n <= 0 {
		n = runtime.NumCPU()
	}
	if queue < 0 {
		queue = 2 * n
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	return &Limiter{slots: make(chan struct{}, n), queue: int64(queue), maxWait: maxWait, share: 1, now: time.Now}
}

// MinShare is the smallest share SetShare accepts.
const MinShare = 0.05

// SetShare bounds the fraction of the slots' time spent hashing in the
// long run. Password hashing is long, uninterruptible CPU work; under a
// flood of logins the slots would otherwise be busy all the time and, on
// a small machine, starve the proxied traffic of signed-in users.
//
// It works as a budget of hashing time that refills at share × slots per
// second and holds at most BudgetBurst per slot: a check that takes d
// spends d, and when the budget is spent and callers are waiting for a
// slot, the slot rests until the budget has refilled before the next one
// may take it. So sign-ins one after another run at once, and a flood
// (callers always waiting) gets share of the time. share is clamped to
// [MinShare, 1]; 1 (the default) means no rest. Call it before the
// Limiter is used.
func (l *Limiter) SetShare(share float64) {
	l.share = max(MinShare, min(share, 1))
	l.burst = BudgetBurst * time.Duration(cap(l.slots))
	l.budget = l.burst
	l.last = l.now()
}

// spend takes held hashing time from the budget and returns how long the
// slot must rest for the budget to be back at zero.
func (l *Limiter) spend(held time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	rate := l.share * float64(cap(l.slots))
	l.budget = min(l.burst, l.budget+time.Duration(float64(now.Sub(l.last))*rate))
	l.last = now
	l.budget -= held
	if l.budget >= 0 {
		return 0
	}
	return time.Duration(float64(-l.budget) / rate)
}

// Slots returns how many hashes may run at once.
func (l *Limiter) Slots() int { return cap(l.slots) }

// Acquire takes a slot, waiting in the queue if there is room, and returns
// the function that gives it back (call it exactly once). It fails with
// ErrBusy when the queue is full or maxWait passes, and with ctx's error
// when ctx ends first.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
		return l.releaser(), nil
	default:
	}
	if l.waiting.Add(1) > l.queue {
		l.waiting.Add(-1)
		return nil, ErrBusy
	}
	defer l.waiting.Add(-1)
	timer := time.NewTimer(l.maxWait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
		return l.releaser(), nil
	case <-timer.C:
		return nil, fmt.Errorf("%w (waited %v)", ErrBusy, l.maxWait)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// releaser returns the release function of a slot just taken: it frees
// the slot at once, or after the slot's rest when a share is set.
func (l *Limiter) releaser() func() {
	if l.share >= 1 {
		return l.release
	}
	start := l.now()
	var once sync.Once
	return func() {
		once.Do(func() {
			rest := l.spend(l.now().Sub(start))
			// The share is enforced under contention only: with no one
			// waiting for a slot, resting would only delay the next
			// sign-in, not protect anyone (the debt stays and a flood
			// still meets it).
			if rest <= 0 || l.waiting.Load() == 0 {
				l.release()
				return
			}
			time.AfterFunc(rest, l.release)
		})
	}
}

func (l *Limiter) release() { <-l.slots }

// Limited is a Hasher whose every hash and verification takes a slot of
// a Limiter first: for callers that hash outside the sign-in handler
// (which takes its slot itself, once per attempt). It is safe for
// concurrent use.
type Limited struct {
	h *Hasher
	l *Limiter
}

// NewLimited returns h gated by l.
func NewLimited(h *Hasher, l *Limiter) *Limited { return &Limited{h: h, l: l} }

// Hash is Hasher.Hash in a slot; ErrBusy when none is free in time.
func (x *Limited) Hash(pw string) (string, error) {
	release, err := x.l.Acquire(context.Background())
	if err != nil {
		return "", err
	}
	defer release()
	return x.h.Hash(pw)
}

// Verify is Verify in a slot; (false, ErrBusy) when none is free in time.
func (x *Limited) Verify(encoded, pw string) (bool, error) {
	release, err := x.l.Acquire(context.Background())
	if err != nil {
		return false, err
	}
	defer release()
	return x.h.Verify(encoded, pw)
}

// VerifyDummy is Hasher.VerifyDummy in a slot. When no slot is free in
// time it returns without the work, like a busy Verify: under overload
// both answer early, so timing still tells nothing about the user.
func (x *Limited) VerifyDummy(pw string) {
	release, err := x.l.Acquire(context.Background())
	if err != nil {
		return
	}
	defer release()
	x.h.VerifyDummy(pw)
}

// NeedsRehash is Hasher.NeedsRehash (no hashing involved).
func (x *Limited) NeedsRehash(encoded string) bool { return x.h.NeedsRehash(encoded) }
