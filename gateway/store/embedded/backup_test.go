package embedded

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/gateway/store"
)

// seedBackup fills s with two users, a setting, a session, a failure
// counter and a ban.
func seedBackup(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	for _, u := range []store.User{
		{Name: "alice", Role: store.RoleAdmin, TOTPSecret: []byte("sealed"), AuthEpoch: 2},
		{Name: "bob", Role: store.RoleUser},
	} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetSetting(ctx, "secretbox.check", "check-value"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, store.Session{IDHash: "s1", User: "alice", ExpiresAt: s.now().Add(time.Hour)}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(ctx, "fail:alice", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBan(ctx, store.Ban{Key: "ip:192.0.2.1", Kind: store.BanKindIP, Subject: "192.0.2.1", Until: s.now().Add(time.Hour)}, time.Hour); err != nil {
		t.Fatal(err)
	}
}

// snapshotTo writes s's snapshot to a new file and returns its path.
func snapshotTo(t *testing.T, s *Store, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "backup.db")
	var buf bytes.Buffer
	var size int64
	err := s.Snapshot(func(n int64, snap io.WriterTo) error {
		size = n
		_, err := snap.WriteTo(&buf)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != size {
		t.Fatalf("snapshot wrote %d bytes, announced %d", buf.Len(), size)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRestoreDropsSessions: a snapshot taken while the store is open
// inspects as a store; restoring it keeps users and settings, drops
// sessions, counters and bans, and keeps the replaced file.
func TestRestoreDropsSessions(t *testing.T) {
	dir := t.TempDir()
	live := openTest(t, filepath.Join(dir, "live.db"), Options{})
	seedBackup(t, live)
	backup := snapshotTo(t, live, dir)

	info, err := Inspect(backup)
	if err != nil {
		t.Fatal(err)
	}
	if info.Users != 2 || info.Sessions != 1 || info.Settings["secretbox.check"] != "check-value" {
		t.Fatalf("inspect: %+v", info)
	}

	// The target has a user the backup does not.
	target := filepath.Join(dir, "sub", "authgate.db")
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := Open(target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(t.Context(), store.User{Name: "carol"}); err != nil {
		t.Fatal(err)
	}
	// While a process holds the file, nothing happens.
	if _, err := Restore(backup, target, time.Now(), nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("restore over a held file: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	var checked Info
	res, err := Restore(backup, target, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), func(i Info) error { checked = i; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if checked.Users != 2 || res.Info.Users != 2 || res.Info.Sessions != 0 || res.DroppedSessions != 1 {
		t.Fatalf("restore: %+v (check saw %+v)", res, checked)
	}
	if want := target + ".before-restore-20260102T030405Z"; res.Previous != want {
		t.Fatalf("previous kept as %q, want %q", res.Previous, want)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored file: %v, %v", fi, err)
	}
	if left, _ := filepath.Glob(target + ".restore-*"); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	got := openTest(t, target, Options{})
	ctx := t.Context()
	if u, err := got.GetUser(ctx, "alice"); err != nil || string(u.TOTPSecret) != "sealed" || u.AuthEpoch != 2 {
		t.Fatalf("alice: %+v, %v", u, err)
	}
	if _, err := got.GetUser(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("carol: %v", err)
	}
	if _, err := got.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session came back: %v", err)
	}
	if n, _ := got.Counter(ctx, "fail:alice"); n != 0 {
		t.Fatalf("a failure counter came back: %d", n)
	}
	if bans, _ := got.ListBans(ctx, 10); len(bans) != 0 {
		t.Fatalf("bans came back: %v", bans)
	}
	if ss, err := got.ListUserSessions(ctx, "alice"); err != nil || len(ss) != 0 {
		t.Fatalf("alice's session index: %v, %v", ss, err)
	}

	prev := openTest(t, res.Previous, Options{})
	if _, err := prev.GetUser(ctx, "carol"); err != nil {
		t.Fatalf("the kept file lost carol: %v", err)
	}
}

// TestRestoreRefusesBadBackups: a file that is not an authgate store, a
// damaged one, and one a check rejects are refused and the store file
// stays byte for byte as it was.
func TestRestoreRefusesBadBackups(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "authgate.db")
	st := openTest(t, target, Options{})
	seedBackup(t, st)
	good := snapshotTo(t, st, dir)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}

	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodBytes, _ := os.ReadFile(good)
	damaged := bytes.Clone(goodBytes)
	for i := 2 * 4096; i < len(damaged); i++ { // every page past the metas
		damaged[i] ^= 0x5a
	}
	otherDB := filepath.Join(dir, "other.db")
	db, err := bolt.Open(otherDB, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("things")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	errCheck := errors.New("another secret key")
	tests := []struct {
		name  string
		path  string
		check func(Info) error
		want  string
	}{
		{"text file", write("notes.txt", []byte("hello, this is not a database\n")), nil, "not an authgate embedded store"},
		{"empty file", write("empty", nil), nil, "not an authgate embedded store"},
		{"truncated", write("truncated.db", goodBytes[:len(goodBytes)/2]), nil, "not an authgate embedded store"},
		{"damaged", write("damaged.db", damaged), nil, "not an authgate embedded store"},
		{"another bbolt file", otherDB, nil, `has no "users" bucket`},
		{"missing", filepath.Join(dir, "nope.db"), nil, "no such file"},
		{"directory", dir, nil, "not a regular file"},
		{"check fails", good, func(Info) error { return errCheck }, "another secret key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Restore(tt.path, target, time.Now(), tt.check)
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an error saying %q, got %v", tt.want, err)
			}
			after, err := os.ReadFile(target)
			if err != nil || !bytes.Equal(before, after) {
				t.Fatalf("the store file changed (%v)", err)
			}
			if left, _ := filepath.Glob(target + ".*"); len(left) != 0 {
				t.Fatalf("files left beside the store: %v", left)
			}
		})
	}
}

// TestSnapshotFile: a file no process holds is copied; a held one gives
// ErrLocked.
func TestSnapshotFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "authgate.db")
	st := openTest(t, path, Options{})
	seedBackup(t, st)
	copyOf := func() error {
		return SnapshotFile(path, func(int64, io.WriterTo) error { return nil })
	}
	if err := copyOf(); !errors.Is(err, ErrLocked) {
		t.Fatalf("snapshot of a held file: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := copyOf(); err != nil {
		t.Fatal(err)
	}
}
