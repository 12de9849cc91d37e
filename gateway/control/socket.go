package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrSocketInUse is returned by ListenSocket when a live server already
// answers on the socket path.
var ErrSocketInUse = errors.New("control: socket in use by a running server")

// maxSocketPath is the longest path a unix socket address can hold on
// Linux (sun_path is 108 bytes including the terminating NUL).
const maxSocketPath = 107

// staleProbeTimeout bounds the check whether a server answers on an
// existing socket file.
const staleProbeTimeout = time.Second

// ListenSocket listens on a unix socket at path, created with mode 0600
// (owner only) from its first moment: it is bound in a private 0700
// directory, chmodded, then hard-linked into place, so no other user can
// ever connect. An existing socket file is removed only if nothing answers
// on it (a stale file left by a crash); if a server answers, it returns
// ErrSocketInUse. A file at path that is not a socket is never removed.
// Closing the listener removes the socket file (if it is still ours).
func ListenSocket(path string) (net.Listener, error) {
	path = filepath.Clean(path)
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control: socket path %q is longer than %d bytes", path, maxSocketPath)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("control: socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}

	tmpDir, err := os.MkdirTemp(dir, ".sock")
	if err != nil {
		return nil, fmt.Errorf("control: socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("control: socket directory %q is too deep for a unix socket", dir)
	}
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control: listen on control socket: %w", err)
	}
	ul.SetUnlinkOnClose(false) // the file is unlinked by socketListener.Close
	fail := func(err error) (net.Listener, error) {
		ul.Close()
		return nil, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(fmt.Errorf("control: socket permissions: %w", err))
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fail(fmt.Errorf("%w: %s appeared while starting", ErrSocketInUse, path))
		}
		return fail(fmt.Errorf("control: socket: %w", err))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		os.Remove(path)
		return fail(fmt.Errorf("control: socket: %w", err))
	}
	return &socketListener{UnixListener: ul, path: path, file: fi}, nil
}

// removeStale removes a socket file at path that nobody answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control: %s exists and is not a socket; refusing to replace it", path)
	}
	conn, err := net.DialTimeout("unix", path, staleProbeTimeout)
	if err == nil {
		conn.Close()
		return fmt.Errorf("%w: %s (is another authgate server running with this data directory?)", ErrSocketInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control: probing existing control socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control: removing stale control socket: %w", err)
	}
	return nil
}

// socketListener removes its socket file on Close, unless the file was
// replaced by someone else meanwhile.
type socketListener struct {
	*net.UnixListener
	path string
	file os.FileInfo
	once sync.Once
	err  error
}

func (l *socketListener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.file) {
			if err := os.Remove(l.path); err != nil && l.err == nil {
				l.err = err
			}
		}
	})
	return l.err
}

// Addr reports the public path rather than the temporary bind path.
func (l *socketListener) Addr() net.Addr {
	return &net.UnixAddr{Name: l.path, Net: "unix"}
}
