package control

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shortDir returns a temp dir with a short path: unix socket paths are
// limited to 107 bytes and t.TempDir includes the (long) test name.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ua")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// answers reports whether something accepts connections on path.
func answers(path string) bool {
	c, err := net.Dial("unix", path)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestListenSocketMode(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "control.sock")
	l, err := ListenSocket(path)
	if err != nil {
		t.Fatalf("ListenSocket: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s is not a socket: %v", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %o, want 600", perm)
	}
	if got := l.Addr().String(); got != path {
		t.Errorf("Addr = %q, want %q", got, path)
	}
	if !answers(path) {
		t.Error("nothing answers on the socket")
	}
	// No temporary bind directory is left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dir holds %v, want only control.sock", names)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want removed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestListenSocketCreatesDir(t *testing.T) {
	path := filepath.Join(shortDir(t), "run", "c.sock")
	l, err := ListenSocket(path)
	if err != nil {
		t.Fatalf("ListenSocket: %v", err)
	}
	defer l.Close()
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("created dir: %v, %v; want mode 700", fi, err)
	}
}

func TestListenSocketStale(t *testing.T) {
	path := filepath.Join(shortDir(t), "c.sock")
	// A server that died without removing its socket file.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}

	l, err := ListenSocket(path)
	if err != nil {
		t.Fatalf("ListenSocket over a stale socket: %v", err)
	}
	defer l.Close()
	if !answers(path) {
		t.Error("new listener does not answer")
	}
}

func TestListenSocketLive(t *testing.T) {
	path := filepath.Join(shortDir(t), "c.sock")
	first, err := ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	go func() { // accept so the probe is answered
		for {
			c, err := first.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	second, err := ListenSocket(path)
	if !errors.Is(err, ErrSocketInUse) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second ListenSocket = %v, want ErrSocketInUse", err)
	}
	if !answers(path) {
		t.Error("the running server's socket was removed")
	}
}

func TestListenSocketNotASocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "c.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := ListenSocket(path)
	if err == nil {
		l.Close()
		t.Fatal("ListenSocket replaced a regular file")
	}
	if !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("error %q does not say why", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Error("regular file was changed")
	}
}

// Close must not remove a file that replaced the socket meanwhile.
func TestListenSocketCloseKeepsReplacement(t *testing.T) {
	path := filepath.Join(shortDir(t), "c.sock")
	l, err := ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if b, err := os.ReadFile(path); err != nil || string(b) != "new" {
		t.Errorf("replacement file after Close: %q, %v", b, err)
	}
}

func TestListenSocketPathTooLong(t *testing.T) {
	path := filepath.Join(shortDir(t), strings.Repeat("x", 120))
	if l, err := ListenSocket(path); err == nil {
		l.Close()
		t.Fatal("ListenSocket accepted a path longer than a socket address")
	}
}
