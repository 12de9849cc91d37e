package cache

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/store"
)

// Defaults of Options.
const (
	DefaultMaxAge     = 30 * time.Second
	DefaultMaxEntries = 100_000
)

// Options configure New.
type Options struct {
	// MaxAge is how long an entry may be served without reading the
	// backend again, whatever the feed says. Default DefaultMaxAge.
	MaxAge time.Duration
	// MaxEntries bounds the sessions held, and separately the users.
	// Default DefaultMaxEntries.
	MaxEntries int
	// SoleWriter says every write to the backend goes through this cache
	// (one process owns the store, as with the embedded file): the cache
	// then serves from the start, knowing of every change.
	SoleWriter bool
	// Feed, for a backend other processes write too, delivers their
	// changes: New runs it in its own goroutine with the cache as the
	// Handler until Close (a *redisstore.Store's Invalidations). The
	// cache serves only between a FeedReset(true) and the next
	// FeedReset(false).
	//
	// With neither SoleWriter nor Feed the cache never serves: every read
	// goes to the backend.
	Feed func(ctx context.Context, h Handler)
	// Logger receives a line for every reset, with its cause (zero
	// value: none).
	Logger zerolog.Logger
}

// Handler receives a backend's change feed (Options.Feed). *Cache is one;
// it has the method set of redisstore.InvalidationHandler.
type Handler interface {
	SessionChanged(idHash string)
	UserChanged(name string)
	UserSessionsChanged(name string)
	FeedReset(subscribed bool, cause string, err error)
	FeedStalled(stalled bool)
}

// SessionTTLReader is a backend that can say how long it keeps a session.
// Sessions are cached only in front of one (both of ours are), so a
// cached session is never served past the backend's TTL.
type SessionTTLReader interface {
	GetSessionTTL(ctx context.Context, idHash string) (store.Session, time.Duration, error)
}

// Cache is a store.Store that serves sessions and users from memory (see
// the package doc). It is safe for concurrent use.
type Cache struct {
	next   store.Store
	ttls   SessionTTLReader // nil: sessions are not cached
	now    func() time.Time
	maxAge time.Duration

	sole  bool
	epoch atomic.Uint64
	// open: entries may be served and inserted (SoleWriter, or the feed
	// is subscribed).
	open atomic.Bool
	// stalled: the feed is subscribed but an answer it asked for is
	// overdue: entries are kept (and may be inserted) but not served.
	stalled atomic.Bool
	log     zerolog.Logger

	sessions *table[store.Session]
	users    *table[store.User]

	// Reads while not serving (the table counts the others).
	sessionBypass, userBypass atomic.Uint64
	stalls                    atomic.Uint64
	resetsMu                  sync.Mutex
	resets                    map[string]uint64 // by cause

	stopFeed  context.CancelFunc
	feedDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var (
	_ store.Store = (*Cache)(nil)
	_ Handler     = (*Cache)(nil)
)

// New returns a cache in front of next; Close closes next too. now is the
// clock entries age by (nil: time.Now).
func New(next store.Store, opts Options, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	c := &Cache{next: next, now: now, maxAge: opts.MaxAge, sole: opts.SoleWriter, log: opts.Logger, resets: map[string]uint64{}}
	c.ttls, _ = next.(SessionTTLReader)
	c.sessions = newTable[store.Session](opts.MaxEntries, &c.epoch, &c.open)
	c.users = newTable[store.User](opts.MaxEntries, &c.epoch, &c.open)
	c.open.Store(opts.SoleWriter)
	c.feedDone = make(chan struct{})
	if opts.Feed == nil || opts.SoleWriter {
		close(c.feedDone)
		c.stopFeed = func() {}
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stopFeed = cancel
	go func() {
		defer close(c.feedDone)
		opts.Feed(ctx, c)
	}()
	return c
}

// Serving reports whether entries are served now (SoleWriter, or the feed
// is subscribed and not stalled).
func (c *Cache) Serving() bool { return c.open.Load() && !c.stalled.Load() }

// Stats are the cache's counters since New.
type Stats struct {
	SessionHits, SessionMisses uint64
	UserHits, UserMisses       uint64
	// Resets counts feed resets (each drops every entry); ResetCauses
	// splits them by cause (store's Feed* constants).
	Resets      uint64
	ResetCauses map[string]uint64
	// Stalls counts the times the feed's answer was overdue (entries
	// kept, not served until it came).
	Stalls uint64
	// Sessions and Users are the entries held now.
	Sessions, Users int
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	var st Stats
	st.Sessions, st.SessionHits, st.SessionMisses = c.sessions.stats()
	st.Users, st.UserHits, st.UserMisses = c.users.stats()
	st.SessionMisses += c.sessionBypass.Load()
	st.UserMisses += c.userBypass.Load()
	st.Stalls = c.stalls.Load()
	c.resetsMu.Lock()
	st.ResetCauses = maps.Clone(c.resets)
	for _, n := range c.resets {
		st.Resets += n
	}
	c.resetsMu.Unlock()
	return st
}

// GetSession returns the session from memory when a live entry is held,
// else from the backend (then cached, when the backend told its TTL).
func (c *Cache) GetSession(ctx context.Context, idHash string) (store.Session, error) {
	s, _, err := c.GetSessionCached(ctx, idHash)
	return s, err
}

// GetSessionCached is GetSession that also reports whether the session
// came from memory (then it may be older than the backend's, by up to the
// feed's delivery time).
func (c *Cache) GetSessionCached(ctx context.Context, idHash string) (store.Session, bool, error) {
	if !c.Serving() {
		c.sessionBypass.Add(1)
	} else if s, ok := c.sessions.get(idHash, c.now()); ok {
		return cloneSession(s), true, nil
	}
	s, err := c.GetSessionFresh(ctx, idHash)
	return s, false, err
}

// GetSessionFresh reads the session from the backend whatever the cache
// holds, and caches the result. The session manager uses it before it
// acts on a session's LastSeenAt (idle expiry, touch), since another
// instance may have kept the session alive since it was cached.
func (c *Cache) GetSessionFresh(ctx context.Context, idHash string) (store.Session, error) {
	if c.ttls == nil {
		return c.next.GetSession(ctx, idHash)
	}
	tk := c.sessions.ticket(idHash)
	start := c.now()
	s, ttl, err := c.ttls.GetSessionTTL(ctx, idHash)
	if err != nil {
		return store.Session{}, err
	}
	if ttl > 0 {
		c.sessions.put(idHash, cloneSession(s), start.Add(min(ttl, c.maxAge)), tk, start)
	}
	return s, nil
}

// GetUser returns the user from memory when a live entry is held, else
// from the backend (then cached).
func (c *Cache) GetUser(ctx context.Context, name string) (store.User, error) {
	if !c.Serving() {
		c.userBypass.Add(1)
	} else if u, ok := c.users.get(name, c.now()); ok {
		return u.Clone(), nil
	}
	tk := c.users.ticket(name)
	start := c.now()
	u, err := c.next.GetUser(ctx, name)
	if err != nil {
		return store.User{}, err
	}
	c.users.put(name, u.Clone(), start.Add(c.maxAge), tk, start)
	return u, nil
}

// cloneSession copies the session's byte slices (the rest are values).
func cloneSession(s store.Session) store.Session {
	if s.PendingTOTPSecret != nil {
		s.PendingTOTPSecret = slices.Clone(s.PendingTOTPSecret)
	}
	if s.RecoveryCodesSealed != nil {
		s.RecoveryCodesSealed = slices.Clone(s.RecoveryCodesSealed)
	}
	if s.AdminResultSealed != nil {
		s.AdminResultSealed = slices.Clone(s.AdminResultSealed)
	}
	if s.PasskeyChallenge != nil {
		s.PasskeyChallenge = slices.Clone(s.PasskeyChallenge)
	}
	return s
}

// SessionChanged drops the session (Handler).
func (c *Cache) SessionChanged(idHash string) { c.sessions.invalidate(idHash) }

// UserChanged drops the user (Handler).
func (c *Cache) UserChanged(name string) { c.users.invalidate(name) }

// UserSessionsChanged drops every session of the user (Handler).
func (c *Cache) UserSessionsChanged(name string) { c.dropUserSessions(name, 0) }

func (c *Cache) dropUserSessions(name string, writes int) {
	c.sessions.invalidateWhere(func(s store.Session) bool { return s.User == name }, writes)
}

// FeedReset drops every entry, as changes may have been missed (Handler).
// After FeedReset(false) nothing is served until FeedReset(true). Each
// reset is counted and logged with its cause.
func (c *Cache) FeedReset(subscribed bool, cause string, err error) {
	if c.sole {
		return
	}
	if !subscribed {
		c.open.Store(false)
	}
	c.stalled.Store(false)
	c.epoch.Add(1)
	c.sessions.flush()
	c.users.flush()
	c.resetsMu.Lock()
	c.resets[cause]++
	c.resetsMu.Unlock()
	if subscribed {
		c.open.Store(true)
	}
	level, msg := zerolog.InfoLevel, "session cache emptied; serving from memory again: invalidation feed subscribed"
	switch {
	case !subscribed && cause == store.FeedStopped:
		level, msg = zerolog.DebugLevel, "session cache emptied: invalidation feed stopped"
	case !subscribed:
		level, msg = zerolog.WarnLevel, "session cache emptied and reads go to the store until the invalidation feed is back"
	case cause != store.FeedSubscribed:
		msg = "session cache emptied: the invalidation feed said everything may have changed"
	}
	c.log.WithLevel(level).Str("cause", cause).AnErr("error", err).Msg(msg)
}

// FeedStalled stops serving from memory while the feed's answer is
// overdue, keeping the entries: nothing is known to be missed (Handler).
func (c *Cache) FeedStalled(stalled bool) {
	if c.sole {
		return
	}
	if stalled {
		c.stalls.Add(1)
		c.log.Debug().Msg("session cache paused: the invalidation feed's answer is overdue")
	}
	c.stalled.Store(stalled)
}

// Close stops the feed, drops every entry (a closed store answers
// nothing from memory either), then closes the backend. Calling it again
// returns the first result.
func (c *Cache) Close() error {
	c.closeOnce.Do(func() {
		c.stopFeed()
		<-c.feedDone
		c.open.Store(false)
		c.epoch.Add(1)
		c.sessions.flush()
		c.users.flush()
		c.closeErr = c.next.Close()
	})
	return c.closeErr
}
