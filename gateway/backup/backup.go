package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/authgate/authgate/gateway/control"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
)

var (
	// ErrExists: the backup file exists and overwriting was not asked for.
	ErrExists = errors.New("backup: the file exists")
	// ErrServerRunning: a restore of the embedded store while a server
	// holds it.
	ErrServerRunning = errors.New("backup: the server is running")
)

// Embedded locates an embedded store: its file and the control socket of
// a server that uses it.
type Embedded struct {
	Path   string
	Socket string
}

// Result says what a backup wrote.
type Result struct {
	// Bytes is the file's size; Users the users it holds.
	Bytes int64
	Users int
	// Keys counts the Redis keys written (Redis only).
	Keys int
	// ViaServer: the running server wrote it over its control socket.
	ViaServer bool
}

// BackupEmbedded writes a backup of the embedded store to dst: through
// the server's control socket when a server answers there, else from the
// file (which then must not be held by a process that does not answer).
func BackupEmbedded(ctx context.Context, src Embedded, dst string, force bool) (Result, error) {
	var res Result
	write := func(w io.Writer) (int64, error) {
		if _, err := os.Stat(src.Socket); err == nil {
			n, err := control.NewClient(src.Socket).Backup(ctx, w)
			if err == nil {
				res.ViaServer = true
				return n, nil
			}
			if !errors.Is(err, control.ErrUnavailable) {
				return 0, err
			}
			// Nobody answers (nothing was written): a socket left by a
			// crash; read the file.
		}
		var n int64
		err := embedded.SnapshotFile(src.Path, func(_ int64, snap io.WriterTo) error {
			var err error
			n, err = snap.WriteTo(w)
			return err
		})
		if errors.Is(err, embedded.ErrLocked) {
			return 0, fmt.Errorf("%w, and its control socket %s does not answer", err, src.Socket)
		}
		return n, err
	}
	verify := func(tmp string, n int64) error {
		info, err := embedded.Inspect(tmp)
		if err != nil {
			return err
		}
		if info.Size != n {
			return fmt.Errorf("backup: wrote %d bytes, the file has %d", n, info.Size)
		}
		res.Users = info.Users
		return nil
	}
	n, err := writeFile(dst, force, write, verify)
	res.Bytes = n
	return res, err
}

// RestoreEmbedded restores the backup at src into the embedded store.
// The server must be stopped (ErrServerRunning). check vets the backup
// (the secret key check) before anything changes.
func RestoreEmbedded(ctx context.Context, src string, to Embedded, now time.Time, check func(embedded.Info) error) (embedded.RestoreResult, error) {
	if _, err := os.Stat(src); err != nil {
		return embedded.RestoreResult{}, fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Stat(to.Socket); err == nil {
		_, err := control.NewClient(to.Socket).Settings(ctx)
		if !errors.Is(err, control.ErrUnavailable) {
			return embedded.RestoreResult{}, fmt.Errorf("%w (its control socket %s answers): stop it first, restore, then start it", ErrServerRunning, to.Socket)
		}
	}
	res, err := embedded.Restore(src, to.Path, now, check)
	if errors.Is(err, embedded.ErrLocked) {
		return res, fmt.Errorf("%w: %s is held by another process (%v): stop the server first, restore, then start it", ErrServerRunning, to.Path, err)
	}
	return res, err
}

// BackupRedis writes a backup of the keys under st's prefix to dst.
func BackupRedis(ctx context.Context, st *redisstore.Store, dst string, force bool, now time.Time) (Result, error) {
	var res Result
	write := func(w io.Writer) (int64, error) {
		cw := &countingWriter{w: w}
		info, err := st.Backup(ctx, cw, now)
		res.Keys, res.Users = info.Keys, info.Users
		return cw.n, err
	}
	verify := func(tmp string, _ int64) error {
		f, err := os.Open(tmp)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := redisstore.ReadBackup(f)
		if err != nil {
			return err
		}
		if b.Keys != res.Keys {
			return fmt.Errorf("backup: wrote %d keys, the file holds %d", res.Keys, b.Keys)
		}
		return nil
	}
	n, err := writeFile(dst, force, write, verify)
	res.Bytes = n
	return res, err
}

// ReadRedis reads and checks a Redis backup file.
func ReadRedis(path string) (*redisstore.BackupFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	b, err := redisstore.ReadBackup(f)
	if err != nil {
		return nil, fmt.Errorf("backup: %s: %w", path, err)
	}
	return b, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeFile writes dst through dst.tmp (0600): write fills it, it is
// synced, verify checks it, then it is renamed to dst. An existing dst is
// refused unless force.
func writeFile(dst string, force bool, write func(io.Writer) (int64, error), verify func(tmp string, n int64) error) (int64, error) {
	if fi, err := os.Stat(dst); err == nil {
		if !force {
			return 0, fmt.Errorf("%w: %s (use --force to replace it)", ErrExists, dst)
		}
		if !fi.Mode().IsRegular() {
			return 0, fmt.Errorf("backup: %s is not a regular file", dst)
		}
	}
	tmp := dst + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("backup: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := write(f)
	if err != nil {
		return n, err
	}
	if err := f.Sync(); err != nil {
		return n, fmt.Errorf("backup: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("backup: close %s: %w", tmp, err)
	}
	if err := verify(tmp, n); err != nil {
		os.Remove(tmp)
		done = true
		return n, fmt.Errorf("backup: the copy does not check out (nothing was written to %s): %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		done = true
		return n, fmt.Errorf("backup: %w", err)
	}
	done = true
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return n, nil
}
