package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
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
	n       int
	slots   *semaphore.Weighted
	queue   int64
	waiting atomic.Int64
	maxWait time.Duration
	now     func() time.Time
	// budget, when SetShare set one, is the hashing time the slots may
	// still spend before they rest: a token bucket of milliseconds.
	budget *rate.Limiter
	// collect: every slot given back starts a garbage collection
	// (CollectAfterHash).
	collect bool
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
	return &Limiter{n: n, slots: semaphore.NewWeighted(int64(n)), queue: int64(queue), maxWait: maxWait, now: time.Now}
}

// MinShare is the smallest share SetShare accepts.
const MinShare = 0.05

// SetShare bounds the fraction of the slots' time spent hashing in the
// long run. Password hashing is long, uninterruptible CPU work; under a
// flood of logins the slots would otherwise be busy all the time and, on
// a small machine, starve the proxied traffic of signed-in users.
//
// It works as a budget of hashing time (a token bucket) that refills at
// share × slots per second and holds at most BudgetBurst per slot: a check
// that takes d spends d, and when the budget is spent and callers are
// waiting for a slot, the slot rests until the budget has refilled before
// the next one may take it. So sign-ins one after another run at once,
// and a flood (callers always waiting) gets share of the time. share is
// clamped to [MinShare, 1]; 1 (the default) means no rest. Call it before
// the Limiter is used.
func (l *Limiter) SetShare(share float64) {
	share = max(MinShare, min(share, 1))
	if share >= 1 {
		l.budget = nil
		return
	}
	// Tokens are milliseconds of hashing; the bucket starts full.
	msPerSecond := share * float64(l.n) * 1000
	l.budget = rate.NewLimiter(rate.Limit(msPerSecond), int(BudgetBurst.Milliseconds())*l.n)
}

// CollectAfterHash makes every slot given back start a garbage
// collection (in the background). An argon2id run allocates its whole
// memory (64 MiB by default) at once, which nearly always starts a
// collection while that buffer is in use: the collector then counts it as
// live heap and sets its next goal at gc_percent above it (400%: five
// times 65 MB), so the heap, and the process, grow towards the memory
// limit on the proxied traffic's garbage before the next collection. One
// collection once the buffer is garbage puts the goal back where the
// small live heap puts it. It costs one collection of that small heap per
// hash, about 1% of the hash's own CPU. Call it before the Limiter is
// used.
func (l *Limiter) CollectAfterHash() { l.collect = true }

// Slots returns how many hashes may run at once.
func (l *Limiter) Slots() int { return l.n }

// Acquire takes a slot, waiting in the queue if there is room, and returns
// the function that gives it back (call it exactly once). It fails with
// ErrBusy when the queue is full or maxWait passes, and with ctx's error
// when ctx ends first.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if l.slots.TryAcquire(1) {
		return l.releaser(), nil
	}
	if l.waiting.Add(1) > l.queue {
		l.waiting.Add(-1)
		return nil, ErrBusy
	}
	defer l.waiting.Add(-1)
	wait, cancel := context.WithTimeout(ctx, l.maxWait)
	defer cancel()
	if err := l.slots.Acquire(wait, 1); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w (waited %v)", ErrBusy, l.maxWait)
	}
	return l.releaser(), nil
}

// releaser returns the release function of a slot just taken: it frees
// the slot at once, or after the slot's rest when a share is set (and
// with CollectAfterHash starts a collection at once, either way).
func (l *Limiter) releaser() func() {
	start := l.now()
	var once sync.Once
	return func() {
		once.Do(func() {
			if l.collect {
				go runtime.GC()
			}
			if l.budget == nil {
				l.release()
				return
			}
			now := l.now()
			// Spend the time held (at most the whole bucket); the
			// reservation's delay is how long until the budget is back
			// at zero.
			held := min(int(now.Sub(start).Milliseconds()), l.budget.Burst())
			rest := l.budget.ReserveN(now, held).DelayFrom(now)
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

func (l *Limiter) release() { l.slots.Release(1) }

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
