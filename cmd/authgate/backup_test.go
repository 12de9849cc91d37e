package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// TestBackupRestoreRoundTrip: a backup taken through the running server's
// control socket, restored after the server stopped, brings back users,
// a TOTP secret and the settings, refuses what must be refused on the
// way, and ends every session: the cookie from before is sent to sign in
// again.
func TestBackupRestoreRoundTrip(t *testing.T) {
	dir := shortTempDir(t)
	up := upstream(t)
	cfg := writeConfig(t, dir, testConfig{Upstream: up.URL})
	st := openTestStore(t, cfg)
	now := time.Now().UTC()
	if err := st.CreateUser(context.Background(), store.User{Name: "alice", Role: store.RoleAdmin, TOTPSecret: []byte("sealed-totp-secret"), TOTPEnrolledAt: now, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	srv := startServer(t, dir, testConfig{Upstream: up.URL})
	cli := func(args ...string) cliResult {
		t.Helper()
		return runCLI(t, "", append(args, "--config", srv.config)...)
	}
	if r := runCLI(t, "bob-password-1\n", "user", "add", "bob", "--admin", "--password-stdin", "--config", srv.config); r.code != 0 {
		t.Fatalf("user add: %v", r)
	}
	if r := cli("2fa", "issuer", "Acme"); r.code != 0 {
		t.Fatalf("2fa issuer: %v", r)
	}
	b := newBrowser()
	if code, _ := b.login(t, srv.origin, "bob", "bob-password-1"); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	if code, _, body := b.get(t, srv.origin+"/"); code != http.StatusOK || body != "legacy panel for bob" {
		t.Fatalf("GET / signed in: %d %q", code, body)
	}

	file := filepath.Join(dir, "backup.db")
	r := cli("backup", file)
	if r.code != 0 || !regexp.MustCompile(`^backup written to \S+backup.db \(by the running server\): 2 user\(s\), \d+ bytes\n`).MatchString(r.stdout) {
		t.Fatalf("backup while the server runs: %v", r)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}
	if r := cli("backup", file); r.code != 1 || !strings.Contains(r.stderr, "the file exists") || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("backup over an existing file: %v", r)
	}
	if r := cli("restore", file); r.code != 1 || !strings.Contains(r.stderr, "the server is running") || !strings.Contains(r.stderr, "stop it first") {
		t.Fatalf("restore while the server runs: %v", r)
	}
	if code, _, _ := b.get(t, srv.origin+"/"); code != http.StatusOK {
		t.Fatalf("the refused restore disturbed the server: %d", code)
	}

	// Changes after the backup, which the restore undoes.
	if r := cli("user", "delete", "alice"); r.code != 0 {
		t.Fatalf("user delete: %v", r)
	}
	if r := cli("2fa", "issuer", "Other"); r.code != 0 {
		t.Fatalf("2fa issuer: %v", r)
	}

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t, exitTimeout); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d\nstderr:\n%s", code, srv.stderr)
	}

	storePath := filepath.Join(dir, "authgate.db")
	before, err := os.ReadFile(storePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("another secret key", func(t *testing.T) {
		t.Setenv("AUTHGATE_SECRET_KEY", strings.Repeat("ab", 32))
		r := cli("restore", file)
		if r.code != 1 || !strings.Contains(r.stderr, "the backup was made with another secret key") {
			t.Fatalf("restore with another secret key: %v", r)
		}
	})
	t.Run("not a backup", func(t *testing.T) {
		junk := writeFile(t, dir, "junk.db", strings.Repeat("not a database\n", 1000))
		r := cli("restore", junk)
		if r.code != 1 || !strings.Contains(r.stderr, "not an authgate embedded store") {
			t.Fatalf("restore of a junk file: %v", r)
		}
	})
	if after, err := os.ReadFile(storePath); err != nil || !bytes.Equal(before, after) {
		t.Fatalf("a refused restore changed the store (%v)", err)
	}

	r = cli("restore", file)
	if r.code != 0 {
		t.Fatalf("restore: %v", r)
	}
	for _, re := range []string{
		`(?m)^restored \S+backup.db into \S+authgate.db: 2 user\(s\)$`,
		`(?m)^the replaced store was kept as \S+authgate.db.before-restore-\d{8}T\d{6}Z$`,
		`(?m)^all sessions \(1 in the backup\), sign-in failure counts and bans were dropped: everyone signs in again$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("restore output does not match %s:\n%s", re, r.stdout)
		}
	}
	kept, _ := filepath.Glob(storePath + ".before-restore-*")
	if len(kept) != 1 {
		t.Fatalf("kept files: %v", kept)
	}
	if k, err := os.ReadFile(kept[0]); err != nil || !bytes.Equal(k, before) {
		t.Fatalf("the kept file is not the replaced store (%v)", err)
	}

	st = openTestStore(t, srv.config)
	ctx := context.Background()
	u, err := st.GetUser(ctx, "alice")
	if err != nil || string(u.TOTPSecret) != "sealed-totp-secret" || u.Role != store.RoleAdmin {
		t.Fatalf("alice after the restore: %+v, %v", u, err)
	}
	if ss, err := st.ListUserSessions(ctx, "bob"); err != nil || len(ss) != 0 {
		t.Fatalf("bob's sessions after the restore: %v, %v", ss, err)
	}
	st.Close()

	srv = startServer(t, dir, testConfig{Upstream: up.URL})
	if code, loc, _ := b.get(t, srv.origin+"/"); code != http.StatusFound || !strings.HasPrefix(loc, "/.authgate/login") {
		t.Fatalf("the session from before the restore: want 302 to the login page, got %d %q", code, loc)
	}
	if r := cli("2fa", "status"); r.code != 0 || !strings.Contains(r.stdout, `issuer: "Acme"`) || !regexp.MustCompile(`(?m)^alice\s`).MatchString(r.stdout) {
		t.Fatalf("2fa status after the restore: %v", r)
	}
	if code, _ := newBrowser().login(t, srv.origin, "bob", "bob-password-1"); code != http.StatusSeeOther {
		t.Fatalf("bob signs in again after the restore: %d", code)
	}
}

// TestBackupWithoutServer: with no server the backup reads the file; a
// backup of a store that does not exist, and a restore of a missing file,
// say so.
func TestBackupWithoutServer(t *testing.T) {
	dir := shortTempDir(t)
	cfg := writeConfig(t, dir, testConfig{})
	file := filepath.Join(dir, "b.db")
	if r := runCLI(t, "", "backup", file, "--config", cfg); r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("backup of a store that does not exist: %v", r)
	}
	if r := runCLI(t, "pw-for-bob-1\n", "user", "add", "bob", "--password-stdin", "--config", cfg); r.code != 0 {
		t.Fatalf("user add: %v", r)
	}
	r := runCLI(t, "", "backup", "--config", cfg, file)
	if r.code != 0 || !strings.Contains(r.stdout, "backup written to "+file+" (from "+filepath.Join(dir, "authgate.db")+"): 1 user(s)") {
		t.Fatalf("backup without a server: %v", r)
	}
	if r := runCLI(t, "", "restore", filepath.Join(dir, "missing.db"), "--config", cfg); r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("restore of a missing file: %v", r)
	}
	if r := runCLI(t, "", "restore", file, "--force", "--config", cfg); r.code != 2 {
		t.Fatalf("restore --force on the embedded store: %v", r)
	}
	if r := runCLI(t, "", "backup", "--config", cfg); r.code != 2 {
		t.Fatalf("backup without FILE: %v", r)
	}
	// The restored store still holds bob, and nothing is left beside it.
	if r := runCLI(t, "", "restore", file, "--config", cfg); r.code != 0 {
		t.Fatalf("restore: %v", r)
	}
	if r := runCLI(t, "", "user", "list", "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "bob") {
		t.Fatalf("user list after the restore: %v", r)
	}
	if _, err := os.Stat(file + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
}

// TestBackupRestoreRedis: the commands on a Redis store (the store's own
// tests cover the details): backup, refused restore over users, forced
// restore.
func TestBackupRestoreRedis(t *testing.T) {
	addr := startRedis(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, testConfig{Extra: "store:\n  driver: redis\n  redis:\n    addrs: [\"" + addr + "\"]\n    key_prefix: ag\n"})
	cli := func(stdin string, args ...string) cliResult {
		t.Helper()
		return runCLI(t, stdin, append(args, "--config", cfg)...)
	}
	if r := cli("pw-for-bob-1\n", "user", "add", "bob", "--password-stdin"); r.code != 0 {
		t.Fatalf("user add: %v", r)
	}
	file := filepath.Join(dir, "redis.backup")
	r := cli("", "backup", file)
	if r.code != 0 || !strings.Contains(r.stdout, `backup of Redis prefix "ag:" written to `+file+": 1 user(s)") {
		t.Fatalf("backup: %v", r)
	}
	if r := cli("pw-for-carol-1\n", "user", "add", "carol", "--password-stdin"); r.code != 0 {
		t.Fatalf("user add: %v", r)
	}
	if r := cli("", "restore", file); r.code != 1 || !strings.Contains(r.stderr, `2 user(s) under "ag:"`) || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("restore over users: %v", r)
	}
	r = cli("", "restore", file, "--force")
	if r.code != 0 || !strings.Contains(r.stdout, `into Redis prefix "ag:": 1 user(s)`) || !strings.Contains(r.stdout, "everyone signs in again") {
		t.Fatalf("restore --force: %v", r)
	}
	if r := cli("", "user", "list"); r.code != 0 || !strings.Contains(r.stdout, "bob") || strings.Contains(r.stdout, "carol") {
		t.Fatalf("user list after the restore: %v", r)
	}
	junk := writeFile(t, dir, "junk", "hello\n")
	if r := cli("", "restore", junk, "--force"); r.code != 1 || !strings.Contains(r.stderr, "not an authgate Redis backup") {
		t.Fatalf("restore of a junk file: %v", r)
	}
}
