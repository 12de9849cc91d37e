package drift

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/store"
)

// Updater stores observations on users (a store.Store).
type Updater interface {
	UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error)
}

// Defaults of RecorderOptions.
const (
	DefaultQueue        = 256
	DefaultMaxDelay     = time.Second
	DefaultWriteTimeout = 5 * time.Second
)

// RecorderOptions tune a Recorder. Zero values take the defaults.
type RecorderOptions struct {
	// Period is the TOTP period in seconds (for the log; default 30).
	Period uint
	// Queue is how many observations wait at most; more are dropped (and
	// logged), so an observation never blocks a request.
	Queue int
	// MaxDelay bounds a random delay before queued observations are
	// written, so the write does not coincide with the response to the
	// code that caused it (which would make a drifted code measurably
	// slower than a wrong one). Negative: no delay (tests).
	MaxDelay time.Duration
	// WriteTimeout bounds each store write.
	WriteTimeout time.Duration
}

type item struct {
	user  string
	steps int
	at    time.Time
	flush chan struct{}
}

// Recorder stores drift evidence on users off the request path: Observe
// queues, a goroutine writes. It implements factor.Observer.
type Recorder struct {
	users Updater
	log   zerolog.Logger
	o     RecorderOptions

	mu     sync.RWMutex
	closed bool
	ch     chan item
	done   chan struct{}
}

// NewRecorder starts a Recorder; Close stops it.
func NewRecorder(users Updater, log zerolog.Logger, o RecorderOptions) *Recorder {
	if o.Period == 0 {
		o.Period = 30
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	r := &Recorder{users: users, log: log, o: o, ch: make(chan item, o.Queue), done: make(chan struct{})}
	go r.run()
	return r
}

// Observe queues one observation; it never blocks. Nothing about the code
// itself is recorded.
func (r *Recorder) Observe(user string, steps int, at time.Time) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	select {
	case r.ch <- item{user: user, steps: steps, at: at.UTC()}:
	default:
		r.log.Warn().Str("event", "totp_drift").Str("user", user).Int("offset_steps", steps).
			Msg("drift evidence dropped: recorder queue full")
	}
}

// ErrClosed is returned by Flush after Close.
var ErrClosed = errors.New("drift: recorder closed")

// Flush writes everything queued so far, without the delay, and waits
// for it.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return ErrClosed
	}
	done := make(chan struct{})
	select {
	case r.ch <- item{flush: done}:
	case <-ctx.Done():
		r.mu.RUnlock()
		return ctx.Err()
	}
	r.mu.RUnlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued and stops the Recorder. It is safe to call
// more than once; Observe after Close does nothing.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.ch)
	}
	r.mu.Unlock()
	<-r.done
	return nil
}

func (r *Recorder) delay() time.Duration {
	if r.o.MaxDelay < 0 {
		return 0
	}
	return rand.N(r.o.MaxDelay) //nolint:gosec // jitter, not a secret
}

func (r *Recorder) run() {
	defer close(r.done)
	var pending []item
	var timer *time.Timer
	var tick <-chan time.Time
	writeAll := func() {
		r.write(pending)
		pending = nil
		if timer != nil {
			timer.Stop()
			timer, tick = nil, nil
		}
	}
	for {
		select {
		case it, ok := <-r.ch:
			switch {
			case !ok:
				writeAll()
				return
			case it.flush != nil:
				writeAll()
				close(it.flush)
			default:
				pending = append(pending, it)
				if timer == nil {
					timer = time.NewTimer(r.delay())
					tick = timer.C
				}
			}
		case <-tick:
			writeAll()
		}
	}
}

// write stores the observations, one update per user, and logs each.
func (r *Recorder) write(items []item) {
	byUser := map[string][]store.DriftObservation{}
	var order []string
	for _, it := range items {
		if _, ok := byUser[it.user]; !ok {
			order = append(order, it.user)
		}
		byUser[it.user] = append(byUser[it.user], store.DriftObservation{At: it.at, Steps: it.steps})
		r.log.Warn().Str("event", "totp_drift").Str("user", it.user).Int("offset_steps", it.steps).
			Int("offset_seconds", it.steps*int(r.o.Period)).
			Msg("a refused code matched the user's secret at a clock offset: the phone's or the server's clock is off")
	}
	for _, name := range order {
		obs := byUser[name]
		ctx, cancel := context.WithTimeout(context.Background(), r.o.WriteTimeout)
		_, err := r.users.UpdateUser(ctx, name, func(u *store.User) error {
			u.DriftSeen = appendObservations(u.DriftSeen, obs)
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			r.log.Error().Err(err).Str("user", name).Msg("drift evidence not stored")
		}
	}
}

// appendObservations keeps the newest MaxDriftSeen observations, oldest
// first.
func appendObservations(seen, add []store.DriftObservation) []store.DriftObservation {
	out := append(append([]store.DriftObservation(nil), seen...), add...)
	if n := len(out) - store.MaxDriftSeen; n > 0 {
		out = append([]store.DriftObservation(nil), out[n:]...)
	}
	return out
}
