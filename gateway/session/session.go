package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"

	"github.com/authgate/authgate/gateway/store"
)

// ErrNoSession means the request carries no usable session: no cookie, a
// malformed one, an unknown id, or an expired session. Callers treat all of
// these alike (fail closed).
var ErrNoSession = errors.New("session: no valid session")

// idBytes is the entropy of a session id (256 bits).
const idBytes = 32

// encodedIDLen is the length of an id in the cookie (unpadded base64url).
var encodedIDLen = base64.RawURLEncoding.EncodedLen(idBytes)

// Store is what the manager needs from the storage layer (see the
// store.Sessions contract: only PutSession creates, ReplaceSession never
// re-creates, TakeSession is won once).
type Store interface {
	PutSession(ctx context.Context, s store.Session, ttl time.Duration) error
	ReplaceSession(ctx context.Context, s store.Session, ttl time.Duration) error
	GetSession(ctx context.Context, idHash string) (store.Session, error)
	TakeSession(ctx context.Context, idHash string) (store.Session, error)
	DeleteSession(ctx context.Context, idHash string) error
}

// FreshStore is a Store that caches reads (gateway/store/cache). When the
// Store given to New is one, a session read from memory is read again
// from the backend (GetSessionFresh) before the manager acts on its
// LastSeenAt (ending it as idle, or writing a touch), so a copy cached on
// this instance never ends, or writes back over, a session another
// instance has used since.
type FreshStore interface {
	// GetSessionCached is GetSession that also reports whether the
	// session came from memory (and so may be older than the backend's).
	GetSessionCached(ctx context.Context, idHash string) (s store.Session, cached bool, err error)
	// GetSessionFresh reads the backend, whatever the cache holds.
	GetSessionFresh(ctx context.Context, idHash string) (store.Session, error)
}

// Options configure lifetimes and the cookie.
type Options struct {
	// CookieName is the base name; over HTTPS it gets the __Host- prefix
	// (or __Secure- when Domain is set, since __Host- forbids Domain).
	CookieName  string
	Domain      string
	IdleTimeout time.Duration
	MaxLifetime time.Duration
	// PendingLifetime bounds a half-finished login (password accepted,
	// second factor owed). Default 10 minutes.
	PendingLifetime time.Duration
	// TouchInterval is how stale LastSeenAt may get before a read writes
	// it back; it keeps busy sessions from writing on every request.
	// Default: IdleTimeout/10, at most one minute.
	TouchInterval time.Duration
}

// Manager creates and validates sessions.
type Manager struct {
	// staleOnce logs the first stale same-named cookie (FromRequest).
	staleOnce *sync.Once
	opts      Options
	st        Store
	// fresh re-reads past st's cache; nil when st does not cache.
	fresh FreshStore
	// touches lets one write refresh a session's LastSeenAt while the
	// other requests that found it due wait for that write (see Get).
	touches *singleflight.Group
	now     func() time.Time
	rand    io.Reader
}

// New returns a Manager. now and rnd may be nil for the real clock and
// crypto/rand. If st is also a FreshStore, see FreshStore.
func New(st Store, opts Options, now func() time.Time, rnd io.Reader) *Manager {
	if now == nil {
		now = time.Now
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	if opts.PendingLifetime <= 0 {
		opts.PendingLifetime = 10 * time.Minute
	}
	if opts.TouchInterval <= 0 {
		opts.TouchInterval = min(opts.IdleTimeout/10, time.Minute)
	}
	fresh, _ := st.(FreshStore)
	return &Manager{opts: opts, st: st, fresh: fresh, touches: new(singleflight.Group), now: now, rand: rnd,
		staleOnce: new(sync.Once)}
}

// HashID returns the store key of a session id.
func HashID(id string) string {
	// Stack buffers for the id (ours are 43 bytes) and the hex digest:
	// the returned string is the one allocation.
	var in [64]byte
	var sum [sha256.Size]byte
	if len(id) <= len(in) {
		sum = sha256.Sum256(in[:copy(in[:], id)])
	} else {
		sum = sha256.Sum256([]byte(id))
	}
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// validID reports whether s has the exact shape of an id we issue; anything
// else is rejected before it reaches the store.
func validID(s string) bool {
	if len(s) != encodedIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

func (m *Manager) newID() (string, error) {
	b := make([]byte, idBytes)
	if _, err := io.ReadFull(m.rand, b); err != nil {
		return "", fmt.Errorf("session: random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// CookieName returns the cookie's name for a request served over HTTPS
// (secure) or plain HTTP.
func (m *Manager) CookieName(secure bool) string {
	switch {
	case !secure:
		return m.opts.CookieName
	case m.opts.Domain != "":
		return "__Secure-" + m.opts.CookieName
	default:
		return "__Host-" + m.opts.CookieName
	}
}

// CookieNames returns every name the session cookie can have, so the proxy
// can strip all of them from requests sent upstream.
func (m *Manager) CookieNames() []string {
	return []string{m.opts.CookieName, "__Host-" + m.opts.CookieName, "__Secure-" + m.opts.CookieName}
}

// Create stores a new session built from tmpl (User, Stage, TwoFactor,
// IP, UserAgent, Redirect, PendingTOTPSecret are taken from it) under a new
// random id, and returns the id for the cookie.
func (m *Manager) Create(ctx context.Context, tmpl store.Session) (string, store.Session, error) {
	return m.create(ctx, tmpl, false)
}

func (m *Manager) create(ctx context.Context, tmpl store.Session, keepLifetime bool) (string, store.Session, error) {
	id, err := m.newID()
	if err != nil {
		return "", store.Session{}, err
	}
	now := m.now().UTC()
	s := tmpl
	s.IDHash = HashID(id)
	s.CreatedAt = now
	s.LastSeenAt = now
	if s.TwoFactor && s.TwoFactorAt.IsZero() {
		s.TwoFactorAt = now
	}
	life := m.opts.MaxLifetime
	if s.Stage != store.StageFull {
		life = m.opts.PendingLifetime
	}
	if keepLifetime {
		// A new id for the same login: the absolute lifetime still counts
		// from the original sign-in.
		s.CreatedAt = tmpl.CreatedAt
	} else {
		s.ExpiresAt = now.Add(life)
	}
	ttl := m.ttl(s, now)
	if ttl <= 0 {
		return "", store.Session{}, ErrNoSession
	}
	if err := m.st.PutSession(ctx, s, ttl); err != nil {
		return "", store.Session{}, fmt.Errorf("session: create: %w", err)
	}
	return id, s, nil
}

// Rotate moves the session old to a new id (after a privilege change
// such as a passed second factor), applying upd to the copy: Move with
// nothing to commit.
func (m *Manager) Rotate(ctx context.Context, old store.Session, upd func(*store.Session)) (string, store.Session, error) {
	return m.Move(ctx, old, nil, upd)
}

// Move is the one way a session changes state: it moves the session old
// to a new id, committing a change on the way. In order:
//
//  1. the stored record is taken (read and deleted at once); if it is
//     gone, or no longer the record old was read from (another request
//     moved it on, or its epoch or stage changed), Move stops with
//     ErrNoSession and nothing was changed. Of concurrent moves of one
//     session exactly one gets past this step;
//  2. commit runs (may be nil): the change the move stands for (an
//     account update, a recovery code used up). If it fails, Move
//     returns its error: the old session is gone and no new one is
//     made, so the user signs in again (fail closed);
//  3. upd is applied to a copy of old (it may use what commit did), the
//     move is checked against CheckTransition, and the new session is
//     created.
//
// So a change is made only by the one request that owns the session at
// that moment, and a session exists afterwards only if the change was
// made. A complete session keeps its creation time and absolute expiry
// (a move never extends a login); a half-finished one that becomes
// complete starts its full lifetime now.
func (m *Manager) Move(ctx context.Context, old store.Session, commit func(context.Context) error, upd func(*store.Session)) (string, store.Session, error) {
	cur, err := m.st.TakeSession(ctx, old.IDHash)
	if err = loadErr(err); err != nil {
		return "", store.Session{}, err
	}
	if !sameState(cur, old) {
		return "", store.Session{}, fmt.Errorf("%w: the session changed during the request", ErrNoSession)
	}
	if commit != nil {
		if err := commit(ctx); err != nil {
			return "", store.Session{}, err
		}
	}
	tmpl := old
	if upd != nil {
		upd(&tmpl)
	}
	if err := CheckTransition(old, tmpl); err != nil {
		return "", store.Session{}, err
	}
	return m.create(ctx, tmpl, old.Stage == store.StageFull && tmpl.Stage == store.StageFull)
}

// sameState reports whether the stored record a is still the session b
// was read as: same user, stage, factor state and epoch.
func sameState(a, b store.Session) bool {
	return a.IDHash == b.IDHash && a.User == b.User && a.Stage == b.Stage &&
		a.TwoFactor == b.TwoFactor && a.UserEpoch == b.UserEpoch && a.Mode == b.Mode &&
		a.CreatedAt.Equal(b.CreatedAt)
}

// Save writes back a session changed by the caller (not its state: use
// Rotate for that), keeping its expiry. A session ended meanwhile stays
// ended: ErrNoSession.
func (m *Manager) Save(ctx context.Context, s store.Session) error {
	return m.replace(ctx, s, m.now().UTC())
}

// replace writes s over the stored session only if it still exists.
func (m *Manager) replace(ctx context.Context, s store.Session, now time.Time) error {
	ttl := m.ttl(s, now)
	if ttl <= 0 {
		return ErrNoSession
	}
	if err := loadErr(m.st.ReplaceSession(ctx, s, ttl)); err != nil {
		if errors.Is(err, ErrNoSession) {
			return err
		}
		return fmt.Errorf("session: save: %w", err)
	}
	return nil
}

// ttl is how long the backend should keep s: until the earlier of its
// absolute end and its idle end (plus one touch interval of slack, since
// LastSeenAt is written coarsely).
func (m *Manager) ttl(s store.Session, now time.Time) time.Duration {
	end := s.ExpiresAt
	if s.Stage == store.StageFull {
		if idle := s.LastSeenAt.Add(m.opts.IdleTimeout + m.opts.TouchInterval); idle.Before(end) {
			end = idle
		}
	}
	return end.Sub(now)
}

// Get loads the session with the given cookie value, enforcing lifetimes
// and refreshing LastSeenAt when it is stale. Every failure other than a
// store outage is ErrNoSession.
//
// The session may come from a cache (see FreshStore): before it is ended
// as idle or touched, it is read again from the backend and judged on
// that copy, so only the newest LastSeenAt decides.
func (m *Manager) Get(ctx context.Context, id string) (store.Session, error) {
	if !validID(id) {
		return store.Session{}, ErrNoSession
	}
	idHash := HashID(id)
	var s store.Session
	var cached bool
	var err error
	if m.fresh != nil {
		s, cached, err = m.fresh.GetSessionCached(ctx, idHash)
	} else {
		s, err = m.st.GetSession(ctx, idHash)
	}
	if err = loadErr(err); err != nil {
		return store.Session{}, err
	}
	now := m.now().UTC()
	todo := m.state(s, now)
	if cached && (todo == stateIdle || todo == stateTouch) {
		s, err = m.fresh.GetSessionFresh(ctx, idHash)
		if err = loadErr(err); err != nil {
			return store.Session{}, err
		}
		todo = m.state(s, now)
	}
	switch todo {
	case stateExpired, stateIdle:
		_ = m.st.DeleteSession(ctx, s.IDHash)
		return store.Session{}, ErrNoSession
	case stateBad:
		return store.Session{}, ErrNoSession
	case stateTouch:
		s.LastSeenAt = now
		if err := m.touch(ctx, s, now); err != nil {
			return store.Session{}, err
		}
	}
	return s, nil
}

// touch writes s back (its LastSeenAt already now). Written only over a
// session that still exists: a request that read it just before a
// logout or revoke cannot bring it back.
//
// A busy session falls due on every request in flight at once (64
// connections of one browser, or of a load test): one of them writes and
// the others wait for its answer and share it, so the store sees one
// write instead of one per request. On the embedded store each write is a
// disk sync taken in turn, and the requests queued behind them were the
// latency spikes of issue 15. The write does not stop when the request
// that makes it is cancelled, since the others depend on it.
func (m *Manager) touch(ctx context.Context, s store.Session, now time.Time) error {
	_, err, _ := m.touches.Do(s.IDHash, func() (any, error) {
		return nil, m.replace(context.WithoutCancel(ctx), s, now)
	})
	return err
}

// loadErr maps a store read's error: not found is ErrNoSession.
func loadErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return ErrNoSession
	default:
		return fmt.Errorf("session: load: %w", err)
	}
}

// sessionState is what Get must do with a session it read.
type sessionState int

const (
	stateOK      sessionState = iota
	stateExpired              // past its absolute end: delete
	stateIdle                 // a full session unused for IdleTimeout: delete
	stateBad                  // unknown stage: refuse
	stateTouch                // valid, LastSeenAt older than TouchInterval: write it
)

func (m *Manager) state(s store.Session, now time.Time) sessionState {
	switch {
	case !now.Before(s.ExpiresAt):
		return stateExpired
	case s.Stage == store.StageFull && now.Sub(s.LastSeenAt) >= m.opts.IdleTimeout:
		return stateIdle
	case s.Stage != store.StageFull && s.Stage != store.StagePending:
		return stateBad
	case now.Sub(s.LastSeenAt) >= m.opts.TouchInterval:
		return stateTouch
	}
	return stateOK
}

// maxSameNamed bounds how many cookies of the session's name one request
// may make the manager look up.
const maxSameNamed = 4

// FromRequest reads the session cookie for the request's scheme and loads
// the session. It returns the id too, for callers that rotate or end it.
//
// A browser can hold several cookies of that name (another gateway under
// the same parent domain, an old one with another Path): the first
// maxSameNamed are tried in order and the first live session wins, so a
// stale one cannot send the user round a sign-in loop. The first time a
// stale one is skipped, the request's logger says so.
func (m *Manager) FromRequest(r *http.Request, secure bool) (string, store.Session, error) {
	cs := r.CookiesNamed(m.CookieName(secure))
	if len(cs) == 0 {
		return "", store.Session{}, ErrNoSession
	}
	var err error
	for i, c := range cs[:min(len(cs), maxSameNamed)] {
		var s store.Session
		s, err = m.Get(r.Context(), c.Value)
		if err == nil {
			if i > 0 {
				m.staleOnce.Do(func() {
					zerolog.Ctx(r.Context()).Warn().Str("cookie", c.Name).Int("skipped", i).
						Msg("the browser sent several session cookies of this name and the first was stale (another gateway under the same domain? give each its own session.cookie_name)")
				})
			}
			return c.Value, s, nil
		}
		if !errors.Is(err, ErrNoSession) {
			return "", store.Session{}, err // the store failed: fail closed
		}
	}
	return "", store.Session{}, err
}

// Destroy ends a session server-side.
func (m *Manager) Destroy(ctx context.Context, idHash string) error {
	if err := m.st.DeleteSession(ctx, idHash); err != nil {
		return fmt.Errorf("session: delete: %w", err)
	}
	return nil
}

// SetCookie sends the session cookie for id.
func (m *Manager) SetCookie(w http.ResponseWriter, id string, s store.Session, secure bool) {
	c := m.cookie(secure)
	c.Value = id
	c.Expires = s.ExpiresAt
	http.SetCookie(w, c)
}

// ClearCookie removes the session cookie from the browser.
func (m *Manager) ClearCookie(w http.ResponseWriter, secure bool) {
	c := m.cookie(secure)
	c.MaxAge = -1
	http.SetCookie(w, c)
}

func (m *Manager) cookie(secure bool) *http.Cookie {
	c := &http.Cookie{
		Name:     m.CookieName(secure),
		Path:     "/",
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	if m.opts.Domain != "" {
		c.Domain = m.opts.Domain
	}
	return c
}

// PendingLifetime is how long a half-finished login may take.
func (m *Manager) PendingLifetime() time.Duration { return m.opts.PendingLifetime }
