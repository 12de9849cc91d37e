package redisstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store"
)

// Invalidation messages. Every write of a session or a user publishes one
// on the channel P:invalidate, after the write (or pipelined behind it on
// one connection), so whoever caches what it read (any gateway instance;
// see gateway/store/cache) learns of every change, whichever process
// made it: another instance, the admin area or the `authgate` command
// line. The payload is KIND ":" KEY; "flush:all" (AnnounceFlush) says
// everything may have changed.
const (
	msgSession      = "session"       // KEY: a session's id hash (put or deleted)
	msgUser         = "user"          // KEY: a user name (created, updated or deleted)
	msgUserSessions = "user_sessions" // KEY: a user name whose sessions were deleted
	// msgFlush ("flush:all") says anything may have changed (a restore
	// replaced the data): caches drop everything. Versions that predate it
	// read it as an unknown message, which does the same.
	msgFlush = "flush"
)

// Health of the subscription. Every pingEvery the follower sends a PING
// (when none is outstanding), however busy the channel, so a reader that
// lags behind the messages is found too. If the answer is not there at
// the next tick, the feed is stalled (FeedStalled(true)): whoever caches
// stops serving from memory but keeps what it holds. The answer, however
// late (a busy CPU reads it late, or Redis was briefly busy), ends the
// stall: the connection delivers in order, so every change announced
// before the ping has been delivered by then and nothing was missed.
// Only a subscription whose ping goes unanswered for lostAfter, or that
// fails, counts as lost (FeedReset(false)): then changes may have been
// missed. So a dead connection stops the serving within about a second,
// and costs a flush only when it stays dead.
const (
	pingEvery = 500 * time.Millisecond
	lostAfter = 2 * time.Second
)

// Waits between attempts to subscribe again: from retryMin, doubling up
// to retryMax while Redis stays away.
const (
	retryMin = 50 * time.Millisecond
	retryMax = time.Second
)

// InvalidationHandler receives the invalidation feed of Invalidations.
// Its methods are called from one goroutine, in order, and should return
// quickly.
type InvalidationHandler interface {
	// SessionChanged: the session with this id hash was written or
	// deleted.
	SessionChanged(idHash string)
	// UserChanged: the user was created, updated or deleted.
	UserChanged(name string)
	// UserSessionsChanged: sessions of the user were deleted (all of
	// them, or all that were live).
	UserSessionsChanged(name string)
	// FeedReset: messages may have been missed. subscribed is true when
	// the feed has just subscribed (again): every change made from now on
	// will be delivered. It is false when the subscription was lost (an
	// error, or health pings left unanswered for lostAfter) and is being
	// re-established; until the next FeedReset(true) changes may go
	// unannounced. cause is one of store's Feed* constants; err, when not
	// nil, is what failed.
	FeedReset(subscribed bool, cause string, err error)
	// FeedStalled: stalled is true when an answer the feed asked for is
	// overdue (changes may be announced but not yet delivered: do not
	// rely on what was delivered so far), false when it arrived (every
	// change announced before it has been delivered). A stall ends with
	// FeedStalled(false) or with FeedReset(false).
	FeedStalled(stalled bool)
}

// invalidateChannel is the channel the messages go to.
func (s *Store) invalidateChannel() string { return s.prefix + ":invalidate" }

// keepsOrder reports whether commands pipelined on the client run in the
// order sent: true for one server or Sentinel (one connection), false for
// a Cluster, whose pipelines split by node and may run out of order.
func (s *Store) keepsOrder() bool {
	_, cluster := s.rdb.(*redis.ClusterClient)
	return !cluster
}

// announce queues the message kind:key on p.
func (s *Store) announce(ctx context.Context, p redis.Cmdable, kind, key string) *redis.IntCmd {
	return p.Publish(ctx, s.invalidateChannel(), kind+":"+key)
}

// announceNow publishes kind:key on its own (after a write that could not
// carry it in its pipeline). The write has happened; an error here means
// other instances may not have heard of it, and is returned so the
// caller retries or reports it (fail closed).
func (s *Store) announceNow(ctx context.Context, kind, key string) error {
	if err := s.announce(ctx, s.rdb, kind, key).Err(); err != nil {
		return fmt.Errorf("announce change: %w", s.announceErr(err))
	}
	return nil
}

// announceErr returns err (nil stays nil), explaining a refused PUBLISH:
// Redis 7 gives an ACL user no pub/sub channel unless one is granted.
func (s *Store) announceErr(err error) error {
	if err == nil || !redis.IsPermissionError(err) {
		return err
	}
	ch := s.invalidateChannel()
	return fmt.Errorf("%w (the Redis user must be allowed the channel %s: ACL SETUSER <user> &%s)", err, ch, ch)
}

// AnnounceFlush tells every cache following the invalidation channel to
// drop everything it holds (after the data was replaced wholesale, by a
// restore). Instances whose subscription is down drop everything anyway
// when they subscribe again.
func (s *Store) AnnounceFlush(ctx context.Context) error {
	return s.announceNow(ctx, msgFlush, "all")
}

// Invalidations follows the invalidation channel until ctx ends, calling
// h for every message and for every (re)subscription and loss of the
// subscription. It keeps (re)subscribing while Redis is away. It returns
// when ctx ends, after a final h.FeedReset(false).
//
// It uses its own connection (a go-redis PubSub) read with the low-level
// Receive, so it sees subscription confirmations and errors, and pings
// the server when the channel is quiet.
func (s *Store) Invalidations(ctx context.Context, h InvalidationHandler) {
	wait := retryMin
	for ctx.Err() == nil {
		if s.follow(ctx, h) {
			wait = retryMin
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		wait = min(2*wait, retryMax)
	}
}

// received is one result of PubSub.Receive.
type received struct {
	msg any
	err error
}

// follow subscribes once and delivers messages until the subscription
// fails or ctx ends; it always ends with h.FeedReset(false). It reports
// whether the subscription was confirmed.
func (s *Store) follow(ctx context.Context, h InvalidationHandler) (subscribed bool) {
	cause, why := store.FeedStopped, error(nil)
	defer func() { h.FeedReset(false, cause, why) }()
	lost := func(c string, err error) bool {
		if ctx.Err() != nil {
			c, err = store.FeedStopped, nil
		}
		cause, why = c, err
		return subscribed
	}
	ps := s.rdb.Subscribe(ctx)
	defer ps.Close()
	if err := ps.Subscribe(ctx, s.invalidateChannel()); err != nil {
		return lost(store.FeedError, err)
	}
	// Receive blocks: it runs in its own goroutine so this one can ping
	// and give up on a silent connection. Closing ps ends it.
	in := make(chan received)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := ps.Receive(ctx)
			select {
			case in <- received{msg, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		_ = ps.Close()
		<-done
	}()
	// A ping every pingEvery, whatever else arrives: a busy channel
	// must not hide a reader that lags behind.
	tick := time.NewTicker(pingEvery)
	defer tick.Stop()
	var pingedAt time.Time // zero: no ping outstanding
	stalled := false
	// handle takes one result of Receive; false ends the subscription.
	handle := func(r received) bool {
		if r.err != nil {
			lost(store.FeedError, r.err)
			return false
		}
		switch m := r.msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" || m.Channel != s.invalidateChannel() {
				// Not ours, or unsubscribed: start over.
				lost(store.FeedError, fmt.Errorf("unexpected %s of %q", m.Kind, m.Channel))
				return false
			}
			subscribed = true
			h.FeedReset(true, store.FeedSubscribed, nil)
		case *redis.Message:
			dispatch(h, m.Payload)
		case *redis.Pong:
			// Everything announced before the ping has been applied.
			pingedAt = time.Time{}
			if stalled {
				stalled = false
				h.FeedStalled(false)
			}
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return lost(store.FeedStopped, nil)
		case r := <-in:
			if !handle(r) {
				return subscribed
			}
		case <-tick.C:
			// What was received first, however late it is read (one
			// result: a reader that lags behind a busy channel must
			// still come to the checks below).
			select {
			case r := <-in:
				if !handle(r) {
					return subscribed
				}
			default:
			}
			switch {
			case pingedAt.IsZero():
				if err := ps.Ping(ctx); err != nil {
					return lost(store.FeedError, err)
				}
				pingedAt = time.Now()
			case time.Since(pingedAt) >= lostAfter:
				return lost(store.FeedSilent, fmt.Errorf("no answer to a ping for %v", time.Since(pingedAt).Round(time.Millisecond)))
			case !stalled: // unanswered for a tick
				stalled = true
				h.FeedStalled(true)
			}
		}
	}
}

// dispatch hands one message to h. A message it cannot read (from a newer
// version, say) could have been about anything: everything is dropped.
func dispatch(h InvalidationHandler, payload string) {
	kind, key, ok := strings.Cut(payload, ":")
	switch {
	case !ok:
		h.FeedReset(true, store.FeedFlush, fmt.Errorf("unreadable message %.40q", payload))
	case kind == msgSession:
		h.SessionChanged(key)
	case kind == msgUser:
		h.UserChanged(key)
	case kind == msgUserSessions:
		h.UserSessionsChanged(key)
	case kind == msgFlush:
		h.FeedReset(true, store.FeedFlush, nil)
	default:
		h.FeedReset(true, store.FeedFlush, fmt.Errorf("unknown message kind %.40q", kind))
	}
}
