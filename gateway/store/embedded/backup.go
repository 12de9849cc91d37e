package embedded

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrNotStore is returned by Inspect and Restore for a file that is not an
// authgate embedded store, or is damaged.
var ErrNotStore = errors.New("embedded: not an authgate embedded store")

// requiredBuckets are the buckets every authgate store file has had from
// the first version; a file without them is not one of ours.
var requiredBuckets = [][]byte{bucketUsers, bucketSessions, bucketUserSessions, bucketSteps, bucketCounters, bucketSettings}

// droppedOnRestore are emptied in a restored copy: sessions (a restore may
// revert a revocation or an epoch bump, which must not bring a session
// back), and the sign-in failure counters and bans.
var droppedOnRestore = [][]byte{bucketSessions, bucketUserSessions, bucketCounters, bucketBans}

// backupLockTimeout is how long SnapshotFile, Inspect and Restore wait for
// a file lock before reporting ErrLocked.
const backupLockTimeout = time.Second

// Snapshot calls fn inside one read transaction with the size of the
// database file and a writer of a consistent copy of it (bbolt's
// Tx.WriteTo). Writers are not blocked meanwhile.
func (s *Store) Snapshot(fn func(size int64, snap io.WriterTo) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx.Size(), tx) })
}

// SnapshotFile is Snapshot for a store file that no process holds open: it
// opens path read-only (a shared lock). If a process holds the file (a
// running server) it fails with an error matching ErrLocked.
func SnapshotFile(path string, fn func(size int64, snap io.WriterTo) error) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	db, err := openReadOnly(path)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error { return fn(tx.Size(), tx) })
}

func openReadOnly(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: backupLockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("embedded: open %s: %w (waited %v)", path, ErrLocked, backupLockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotStore, path, err)
	}
	return db, nil
}

// Info describes a store file checked by Inspect.
type Info struct {
	// Size is the file's size in bytes.
	Size int64
	// Users and Sessions count the stored users and sessions.
	Users, Sessions int
	// Settings are the stored settings (the secret key check among them).
	Settings map[string]string
}

// Inspect opens the store file at path read-only and checks that it is an
// authgate store: every page is readable, bbolt's consistency check
// passes, the buckets are there, every user and setting decodes.
// Anything else is an error matching ErrNotStore that says what is wrong.
func Inspect(path string) (info Info, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Info{}, fmt.Errorf("embedded: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("%w: %s: not a regular file", ErrNotStore, path)
	}
	if fi.Size() == 0 {
		return Info{}, fmt.Errorf("%w: %s: empty file", ErrNotStore, path)
	}
	info.Size = fi.Size()
	err = guard(path, func() error {
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: backupLockTimeout, PreLoadFreelist: true})
		if errors.Is(err, bolterrors.ErrTimeout) {
			return fmt.Errorf("embedded: open %s: %w (waited %v)", path, ErrLocked, backupLockTimeout)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrNotStore, path, err)
		}
		defer db.Close()
		if err := db.View(func(tx *bolt.Tx) error { return inspectTx(tx, &info) }); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrNotStore, path, err)
		}
		return nil
	})
	if err != nil {
		return Info{}, err
	}
	return info, nil
}

func inspectTx(tx *bolt.Tx, info *Info) error {
	// Read every key and value first, here: bbolt's own check runs in a
	// goroutine of its own, where a fault could not be caught.
	err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return readAll(b) })
	if err != nil {
		return err
	}
	var damage error
	for cerr := range tx.Check() { // drained: the check holds tx until done
		if damage == nil {
			damage = fmt.Errorf("damaged: %v", cerr)
		}
	}
	if damage != nil {
		return damage
	}
	for _, name := range requiredBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("it has no %q bucket", name)
		}
	}
	err = tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
		if _, err := decodeUser(v); err != nil {
			return fmt.Errorf("user %q: %w", k, err)
		}
		info.Users++
		return nil
	})
	if err != nil {
		return err
	}
	info.Sessions = tx.Bucket(bucketSessions).Stats().KeyN
	info.Settings = map[string]string{}
	return tx.Bucket(bucketSettings).ForEach(func(k, v []byte) error {
		var s string
		if err := decode(v, &s); err != nil {
			return fmt.Errorf("setting %q: %w", k, err)
		}
		info.Settings[string(k)] = s
		return nil
	})
}

// readAll reads every key and value of b and its nested buckets.
func readAll(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return readAll(nb)
			}
		}
		_ = crc32.ChecksumIEEE(k)
		_ = crc32.ChecksumIEEE(v)
		return nil
	})
}

// guard runs fn with memory faults turned into panics and panics into an
// error matching ErrNotStore: bbolt maps the file and trusts its pages,
// so a damaged or cut-off file makes it panic or fault.
func guard(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: damaged (%v)", ErrNotStore, path, r)
		}
	}()
	return fn()
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	// Info describes the store now in place (no sessions).
	Info Info
	// DroppedSessions is how many sessions the backup held (all dropped).
	DroppedSessions int
	// Previous is where the replaced store file was kept; "" when there
	// was none.
	Previous string
}

// Restore puts the backup at src in place of the store file at path. It
// refuses, changing nothing, when src is not an authgate store
// (ErrNotStore), when check (nil: none) rejects the backup's Info, and
// when a process holds path (ErrLocked: a running server). The restored
// file has no sessions, failure counters or bans (everyone signs in
// again). The file it replaces is kept as
// path.before-restore-<UTC time>; the new file is written beside it and
// renamed into place, so path is never missing or half written.
func Restore(src, path string, now time.Time, check func(Info) error) (RestoreResult, error) {
	info, err := Inspect(src)
	if err != nil {
		return RestoreResult{}, err
	}
	if check != nil {
		if err := check(info); err != nil {
			return RestoreResult{}, err
		}
	}
	// Hold the current file (a shared lock) so no server opens it while it
	// is replaced. A file bbolt cannot read is not held by anyone either
	// (the lock comes before the read): it is replaced all the same.
	_, statErr := os.Stat(path)
	exists := statErr == nil
	if exists {
		cur, err := openReadOnly(path)
		if errors.Is(err, ErrLocked) {
			return RestoreResult{}, err
		}
		if err == nil {
			defer cur.Close()
		}
	} else if !errors.Is(statErr, os.ErrNotExist) {
		return RestoreResult{}, fmt.Errorf("embedded: %w", statErr)
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return RestoreResult{}, fmt.Errorf("embedded: %w", err)
	}
	tmp, err := copyToTemp(src, dir, filepath.Base(path)+".restore-*")
	if err != nil {
		return RestoreResult{}, err
	}
	defer os.Remove(tmp) // gone already once renamed into place
	if err := guard(src, func() error { return dropVolatile(tmp) }); err != nil {
		return RestoreResult{}, err
	}
	res := RestoreResult{DroppedSessions: info.Sessions}
	if res.Info, err = Inspect(tmp); err != nil {
		return RestoreResult{}, err
	}
	if exists {
		res.Previous = path + ".before-restore-" + now.UTC().Format("20060102T150405Z")
		// A hard link keeps the old file at path until the rename below
		// replaces it; it fails rather than overwrite an earlier copy.
		if err := os.Link(path, res.Previous); err != nil {
			return RestoreResult{}, fmt.Errorf("embedded: keep the current store as %s: %w", res.Previous, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return RestoreResult{}, fmt.Errorf("embedded: put the restored store in place: %w", err)
	}
	syncDir(dir)
	return res, nil
}

// copyToTemp copies src to a new 0600 file in dir, synced, and returns
// its name.
func copyToTemp(src, dir, pattern string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("embedded: %w", err)
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, pattern) // mode 0600
	if err != nil {
		return "", fmt.Errorf("embedded: %w", err)
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", fmt.Errorf("embedded: copy %s: %w", src, err)
	}
	return out.Name(), nil
}

// dropVolatile empties the sessions, counters and bans of the store file
// at path and adds any bucket an older version did not have.
func dropVolatile(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: backupLockTimeout})
	if err != nil {
		return fmt.Errorf("embedded: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range droppedOnRestore {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return fmt.Errorf("empty bucket %s: %w", name, err)
			}
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("embedded: prepare %s: %w", path, err)
	}
	return nil
}

// syncDir makes renames in dir durable; failure is harmless (some
// platforms cannot sync directories).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
