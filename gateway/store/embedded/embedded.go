package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/authgate/authgate/gateway/store"
)

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("embedded: database file is locked by another process")

// errBadTTL is returned for a ttl or window that is not positive.
var errBadTTL = errors.New("embedded: ttl must be positive")

var _ store.Store = (*Store)(nil)

// Options tunes Open. The zero value is usable.
type Options struct {
	// Now is the clock used for expiry; default time.Now.
	Now func() time.Time
	// LockTimeout is how long Open waits for the file lock; default 1s.
	LockTimeout time.Duration
	// SweepInterval is how often expired items are deleted; default 1m.
	SweepInterval time.Duration
}

const (
	defaultLockTimeout   = time.Second
	defaultSweepInterval = time.Minute
)

var (
	bucketUsers        = []byte("users")
	bucketSessions     = []byte("sessions")
	bucketUserSessions = []byte("user_sessions")
	bucketSteps        = []byte("steps")
	bucketCounters     = []byte("counters")
	bucketSettings     = []byte("settings")
	bucketAudit        = []byte("audit") // store.AuditChanges (the one list before there were two)
	bucketAuditFailed  = []byte("audit_failures")
	bucketBans         = []byte("bans")
	allBuckets         = [][]byte{bucketUsers, bucketSessions, bucketUserSessions, bucketSteps, bucketCounters, bucketSettings, bucketAudit, bucketAuditFailed, bucketBans}
)

// Store is a bbolt-backed store.Store. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	now  func() time.Time
	stop chan struct{}
	done chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database file at path and starts
// the expiry sweeper. If another process holds the file, Open fails after
// opts.LockTimeout with an error matching ErrLocked.
func Open(path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = defaultLockTimeout
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = defaultSweepInterval
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("embedded: open %s: %w (waited %v)", path, ErrLocked, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	// The file holds password hashes: tighten a pre-existing loose mode.
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("embedded: restrict mode of %s: %w", path, err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("embedded: init %s: %w", path, err)
	}
	s := &Store{
		db:   db,
		now:  opts.Now,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.sweepLoop(opts.SweepInterval)
	return s, nil
}

// Ping reports whether the database is open.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.db.View(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("embedded: ping: %w", err)
	}
	return nil
}

// Close stops the sweeper and closes the file. Calling it again returns
// the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("embedded: close: %w", err)
		}
	})
	return s.closeErr
}

// view and update run fn in a read or write transaction after checking
// ctx (bbolt itself cannot be interrupted).
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

// expiringRecord is the envelope of steps and counters.
type expiringRecord struct {
	Value int64 `json:"value,omitempty"`
	// Expiry is the end of life in Unix nanoseconds of the store's clock.
	Expiry int64 `json:"expiry_unix_nano"`
}

// expired reports whether an item ending at expiry (Unix ns) is gone at now.
func expired(expiry int64, now time.Time) bool {
	return now.UnixNano() >= expiry
}

// deadline returns the Unix ns expiry of an item stored now for ttl.
func deadline(now time.Time, ttl time.Duration) int64 {
	return now.Add(ttl).UnixNano()
}

// userKey builds a key scoped to one user: uvarint(len(user)) + user +
// rest. The length prefix keeps "al" from matching "alice"'s keys.
func userKey(user string, rest []byte) []byte {
	k := make([]byte, 0, binary.MaxVarintLen64+len(user)+len(rest))
	k = binary.AppendUvarint(k, uint64(len(user)))
	k = append(k, user...)
	return append(k, rest...)
}

func decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode stored value: %w", err)
	}
	return nil
}

// utc normalises a time for storage: UTC, zero stays zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
