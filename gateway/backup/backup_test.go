package backup

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/control"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
	"github.com/authgate/authgate/gateway/users"
)

// shortDir is a temporary directory with a path short enough for a unix
// socket.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "agbk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serveSocket serves st's control socket at sock (with backups) as a
// running server does, until the test ends.
func serveSocket(t *testing.T, st *embedded.Store, sock string) {
	t.Helper()
	ln, err := control.ListenSocket(sock)
	if err != nil {
		t.Fatal(err)
	}
	src := settings.New(st, settings.Values{Mode: "off"}, 0, time.Now)
	svc := users.NewService(st, src, audit.New(st, zerolog.Nop(), time.Now), "test", time.Now)
	srv := &http.Server{Handler: control.NewSocketHandler(svc, zerolog.Nop(), control.WithBackup(st.Snapshot))}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func TestBackupEmbedded(t *testing.T) {
	dir := shortDir(t)
	src := Embedded{Path: filepath.Join(dir, "authgate.db"), Socket: filepath.Join(dir, "authgate.sock")}
	st, err := embedded.Open(src.Path, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateUser(t.Context(), store.User{Name: "alice", Role: store.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "backup.db")

	// The file is held and nobody answers on the socket.
	if _, err := BackupEmbedded(t.Context(), src, dst, false); !errors.Is(err, embedded.ErrLocked) || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("backup of a held file without a server: %v", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed backup left %s: %v", dst, err)
	}

	serveSocket(t, st, src.Socket)
	res, err := BackupEmbedded(t.Context(), src, dst, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil || !res.ViaServer || res.Users != 1 || res.Bytes != fi.Size() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup through the server: %+v, %v, %v", res, fi, err)
	}
	if _, err := os.Stat(dst + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	if _, err := BackupEmbedded(t.Context(), src, dst, false); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("backup over an existing file: %v", err)
	}
	if _, err := BackupEmbedded(t.Context(), src, dst, true); err != nil {
		t.Fatalf("backup --force: %v", err)
	}

	// A restore while the server answers is refused, changing nothing.
	if _, err := RestoreEmbedded(t.Context(), dst, src, time.Now(), nil); !errors.Is(err, ErrServerRunning) || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("restore while the server runs: %v", err)
	}

	// Without a server, from the file.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	dst2 := filepath.Join(dir, "backup2.db")
	res, err = BackupEmbedded(t.Context(), Embedded{Path: src.Path, Socket: filepath.Join(dir, "none.sock")}, dst2, false)
	if err != nil || res.ViaServer || res.Users != 1 {
		t.Fatalf("backup from the file: %+v, %v", res, err)
	}
}

// TestWriteFileVerifyFails: a copy that does not check out is never put
// at FILE, and no temporary file stays.
func TestWriteFileVerifyFails(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "b")
	_, err := writeFile(dst, false, func(w io.Writer) (int64, error) {
		n, err := w.Write([]byte("junk"))
		return int64(n), err
	}, func(string, int64) error { return errors.New("bad copy") })
	if err == nil || !strings.Contains(err.Error(), "nothing was written to") {
		t.Fatalf("verify failure: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// TestRestoreRedisDropsCachedUsers: a gateway's cache (the real one, fed
// by the invalidation channel, entries good for an hour) holds users;
// after a restore that deletes one and changes another, it serves
// neither from memory: the restore's flush reached it.
func TestRestoreRedisDropsCachedUsers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	open := func() *redisstore.Store {
		st := redisstore.New(redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}}), redisstore.Options{KeyPrefix: "ag"})
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	admin := open()
	for _, u := range []store.User{{Name: "alice", Role: store.RoleAdmin}, {Name: "bob", Role: store.RoleUser}} {
		if err := admin.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "redis.backup")
	res, err := BackupRedis(ctx, admin, file, false, time.Now())
	if err != nil || res.Users != 2 || res.Keys == 0 {
		t.Fatalf("backup: %+v, %v", res, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != res.Bytes {
		t.Fatalf("backup file: %v, %v", fi, err)
	}

	// After the backup: carol is added, alice becomes a user.
	if err := admin.CreateUser(ctx, store.User{Name: "carol", Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UpdateUser(ctx, "alice", func(u *store.User) error { u.Role = store.RoleUser; return nil }); err != nil {
		t.Fatal(err)
	}

	gw := open()
	c := cache.New(gw, cache.Options{MaxAge: time.Hour, Feed: func(ctx context.Context, h cache.Handler) { gw.Invalidations(ctx, h) }}, nil)
	t.Cleanup(func() { _ = c.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for !c.Serving() {
		if time.Now().After(deadline) {
			t.Fatal("the cache never subscribed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Warm up until both are served from memory.
	for {
		before := c.Stats().UserHits
		_, err1 := c.GetUser(ctx, "carol")
		_, err2 := c.GetUser(ctx, "alice")
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if c.Stats().UserHits == before+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache never served both users")
		}
	}

	b, err := ReadRedis(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Restore(ctx, b, redisstore.RestoreOptions{}); !errors.Is(err, redisstore.ErrHasUsers) {
		t.Fatalf("restore over users without force: %v", err)
	}
	if info, err := admin.Restore(ctx, b, redisstore.RestoreOptions{Force: true}); err != nil || info.Users != 2 {
		t.Fatalf("restore: %+v, %v", info, err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, errC := c.GetUser(ctx, "carol")
		a, errA := c.GetUser(ctx, "alice")
		if errors.Is(errC, store.ErrNotFound) && errA == nil && a.Role == store.RoleAdmin {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache still serves the users as before the restore: carol %v, alice %+v %v", errC, a, errA)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadRedisRejectsEmbeddedBackup: the wrong kind of file is refused
// before Redis is touched.
func TestReadRedisRejectsEmbeddedBackup(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	st, err := embedded.Open(p, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := ReadRedis(p); !errors.Is(err, redisstore.ErrNotBackup) {
		t.Fatalf("an embedded store read as a Redis backup: %v", err)
	}
}
