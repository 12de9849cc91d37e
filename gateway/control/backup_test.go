package control

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// serveBackup serves a socket handler with opts on a new socket and
// returns a client for it.
func serveBackup(t *testing.T, opts ...SocketOption) *Client {
	t.Helper()
	path := filepath.Join(shortDir(t), "c.sock")
	ln, err := ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: NewSocketHandler(nil, zerolog.Nop(), opts...)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return NewClient(path)
}

type writerToFunc func(io.Writer) (int64, error)

func (f writerToFunc) WriteTo(w io.Writer) (int64, error) { return f(w) }

// snapshotOf is a Snapshotter of data that announces size.
func snapshotOf(size int64, data []byte, err error) Snapshotter {
	return func(fn func(int64, io.WriterTo) error) error {
		if err != nil {
			return err
		}
		return fn(size, writerToFunc(func(w io.Writer) (int64, error) {
			n, err := w.Write(data)
			return int64(n), err
		}))
	}
}

func TestSocketBackup(t *testing.T) {
	data := bytes.Repeat([]byte("page"), 10000)
	t.Run("copy", func(t *testing.T) {
		c := serveBackup(t, WithBackup(snapshotOf(int64(len(data)), data, nil)))
		var buf bytes.Buffer
		n, err := c.Backup(t.Context(), &buf)
		if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("backup: %d bytes, %v", n, err)
		}
	})
	t.Run("cut off", func(t *testing.T) {
		// The server announces more than it sends (a write failed
		// part-way): the client must not take the short copy.
		c := serveBackup(t, WithBackup(snapshotOf(int64(len(data))+100, data, nil)))
		if _, err := c.Backup(t.Context(), io.Discard); err == nil {
			t.Fatal("a cut-off backup was accepted")
		}
	})
	t.Run("store error", func(t *testing.T) {
		c := serveBackup(t, WithBackup(snapshotOf(0, nil, errors.New("disk on fire"))))
		if _, err := c.Backup(t.Context(), io.Discard); err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("backup with a failing store: %v", err)
		}
	})
	t.Run("not offered", func(t *testing.T) {
		c := serveBackup(t)
		if _, err := c.Backup(t.Context(), io.Discard); !errors.Is(err, ErrNoBackup) {
			t.Fatalf("backup from a server without it: %v", err)
		}
	})
	t.Run("nobody answers", func(t *testing.T) {
		c := NewClient(filepath.Join(shortDir(t), "none.sock"))
		if _, err := c.Backup(t.Context(), io.Discard); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("backup without a server: %v", err)
		}
	})
}
