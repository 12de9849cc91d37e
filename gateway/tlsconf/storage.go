package tlsconf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/authgate/authgate/gateway/store"
)

// Blobs is the shared key-value store with distributed locks that
// SharedStorage keeps certmagic's data in (redisstore's CertBlobs is
// one). Keys are '/'-separated paths; a "directory" is a prefix of stored
// keys. Missing keys return errors matching store.ErrNotFound.
type Blobs interface {
	// Put stores value at key, replacing any previous value.
	Put(ctx context.Context, key string, value []byte) error
	// Get returns the value at key.
	Get(ctx context.Context, key string) ([]byte, error)
	// Exists reports whether key is stored or is a directory.
	Exists(ctx context.Context, key string) (bool, error)
	// Delete removes key and everything below it; missing is fine.
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix: its direct children (files and
	// directories), or with recursive every key below it.
	List(ctx context.Context, prefix string, recursive bool) ([]string, error)
	// Stat returns a stored key's write time and size (isFile true) or a
	// directory's newest write below it (isFile false).
	Stat(ctx context.Context, key string) (modified time.Time, size int64, isFile bool, err error)
	// Lock takes lock name, waiting while another holder has it, until
	// ctx ends; the lock is kept alive until unlock is called, and lapses
	// after a TTL if its holder dies.
	Lock(ctx context.Context, name string) (unlock func(context.Context) error, err error)
	// TryLock takes lock name if it is free; ok false means it is not.
	TryLock(ctx context.Context, name string) (unlock func(context.Context) error, ok bool, err error)
}

// errNotLocked is returned by Unlock of a name this storage does not hold.
var errNotLocked = errors.New("tlsconf: lock not held by this instance")

var (
	_ certmagic.Storage   = (*SharedStorage)(nil)
	_ certmagic.TryLocker = (*SharedStorage)(nil)
)

// SharedStorage is a certmagic.Storage (and TryLocker) over Blobs, so
// gateway instances sharing one store share their certificates, ACME
// account and locks: one instance obtains a certificate and the others
// load it instead of asking the CA again.
type SharedStorage struct {
	blobs Blobs

	mu sync.Mutex
	// held maps a lock name to the release functions of this instance's
	// holds, oldest first (a second one exists only if the first was lost
	// to expiry, so Unlock releases the oldest).
	held map[string][]func(context.Context) error
}

// NewSharedStorage returns a certmagic storage keeping everything in b.
// Use it as certmagic.Config.Storage; with Redis:
// NewSharedStorage(redisStore.CertBlobs()).
func NewSharedStorage(b Blobs) *SharedStorage {
	return &SharedStorage{blobs: b, held: make(map[string][]func(context.Context) error)}
}

// notExist makes a store.ErrNotFound also match fs.ErrNotExist, which is
// what certmagic checks.
func notExist(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w (%w)", fs.ErrNotExist, err)
	}
	return err
}

// Store puts value at key.
func (s *SharedStorage) Store(ctx context.Context, key string, value []byte) error {
	return s.blobs.Put(ctx, key, value)
}

// Load returns the value at key; fs.ErrNotExist if there is none.
func (s *SharedStorage) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := s.blobs.Get(ctx, key)
	return v, notExist(err)
}

// Delete removes key and, if it is a directory, everything below it. A
// missing key is not an error.
func (s *SharedStorage) Delete(ctx context.Context, key string) error {
	return s.blobs.Delete(ctx, key)
}

// Exists reports whether key is a stored key or a directory; false also
// when the store cannot be asked.
func (s *SharedStorage) Exists(ctx context.Context, key string) bool {
	ok, err := s.blobs.Exists(ctx, key)
	return ok && err == nil
}

// List returns the keys under path: its direct children, or every key
// below it if recursive. fs.ErrNotExist if there are none.
func (s *SharedStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	keys, err := s.blobs.List(ctx, path, recursive)
	return keys, notExist(err)
}

// Stat describes key; fs.ErrNotExist if it is neither stored nor a
// directory.
func (s *SharedStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	mod, size, isFile, err := s.blobs.Stat(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, notExist(err)
	}
	return certmagic.KeyInfo{Key: key, Modified: mod, Size: size, IsTerminal: isFile}, nil
}

// Lock takes lock name across every instance sharing the store, waiting
// while another has it.
func (s *SharedStorage) Lock(ctx context.Context, name string) error {
	unlock, err := s.blobs.Lock(ctx, name)
	if err != nil {
		return err
	}
	s.remember(name, unlock)
	return nil
}

// TryLock takes lock name if no instance has it.
func (s *SharedStorage) TryLock(ctx context.Context, name string) (bool, error) {
	unlock, ok, err := s.blobs.TryLock(ctx, name)
	if err != nil || !ok {
		return false, err
	}
	s.remember(name, unlock)
	return true, nil
}

func (s *SharedStorage) remember(name string, unlock func(context.Context) error) {
	s.mu.Lock()
	s.held[name] = append(s.held[name], unlock)
	s.mu.Unlock()
}

// Unlock releases lock name taken by this storage's Lock or TryLock. It
// fails for a name this instance does not hold (another instance's lock
// is never released) and when the lock had lapsed to another holder.
func (s *SharedStorage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	holds := s.held[name]
	if len(holds) == 0 {
		s.mu.Unlock()
		return fmt.Errorf("tlsconf: unlock %q: %w", name, errNotLocked)
	}
	unlock := holds[0]
	if len(holds) == 1 {
		delete(s.held, name)
	} else {
		s.held[name] = holds[1:]
	}
	s.mu.Unlock()
	return unlock(ctx)
}
