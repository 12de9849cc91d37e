package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
)

// withStore opens the embedded store at dir/authgate.db (no command may be
// running) and hands it to fn.
func withStore(t *testing.T, dir string, fn func(st *embedded.Store)) {
	t.Helper()
	st, err := embedded.Open(filepath.Join(dir, "authgate.db"), embedded.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()
	fn(st)
}

func getUser(t *testing.T, st store.Store, name string) store.User {
	t.Helper()
	u, err := st.GetUser(context.Background(), name)
	if err != nil {
		t.Fatalf("get user %s: %v", name, err)
	}
	return u
}

func assertNoUser(t *testing.T, st store.Store, name string) {
	t.Helper()
	if _, err := st.GetUser(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("user %s: want ErrNotFound, got %v", name, err)
	}
}

func assertPassword(t *testing.T, u store.User, pw string, want bool) {
	t.Helper()
	ok, err := password.Verify(u.PasswordHash, pw)
	if err != nil {
		t.Fatalf("verify %s's hash: %v", u.Name, err)
	}
	if ok != want {
		t.Fatalf("password %q of %s: verify = %v, want %v", pw, u.Name, ok, want)
	}
}

func putSession(t *testing.T, st store.Store, user, id string) {
	t.Helper()
	now := time.Now().UTC()
	err := st.PutSession(context.Background(), store.Session{
		IDHash: id, User: user, Stage: store.StageFull, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour),
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
}

// TestUserCommands runs the user commands in order against one embedded
// store, checking each one's output and its effect on the store.
func TestUserCommands(t *testing.T) {
	dir := shortTempDir(t)
	cfg := writeConfig(t, dir, testConfig{})
	ctx := context.Background()

	steps := []struct {
		name       string
		args       []string // after "user"; --config is added
		stdin      string
		wantCode   int
		wantStdout []string
		wantStderr []string
		before     func(t *testing.T, st *embedded.Store) // prepares the store
		check      func(t *testing.T, st *embedded.Store)
	}{
		{
			name: "add with flags after NAME", args: []string{"add", "alice", "--group", "ops", "--group", "web", "--password-stdin"},
			stdin: "alice-secret-1\n", wantStdout: []string{"user alice added (role user)"},
			check: func(t *testing.T, st *embedded.Store) {
				u := getUser(t, st, "alice")
				if u.Role != store.RoleUser || !slices.Equal(u.Groups, []string{"ops", "web"}) {
					t.Errorf("alice: role %q groups %q", u.Role, u.Groups)
				}
				if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=8192,t=1,p=1$") {
					t.Errorf("hash does not use the configured argon2 parameters: %.40s", u.PasswordHash)
				}
				assertPassword(t, u, "alice-secret-1", true)
				assertPassword(t, u, "alice-secret-2", false)
			},
		},
		{
			name: "add admin with flags before NAME", args: []string{"add", "--admin", "--password-stdin", "root"},
			stdin: "root-secret-1\r\n", wantStdout: []string{"user root added (role admin)"},
			check: func(t *testing.T, st *embedded.Store) {
				u := getUser(t, st, "root")
				if u.Role != store.RoleAdmin || len(u.Groups) != 0 {
					t.Errorf("root: role %q groups %q", u.Role, u.Groups)
				}
				assertPassword(t, u, "root-secret-1", true) // CRLF stripped
			},
		},
		{
			name: "duplicate add", args: []string{"add", "alice", "--password-stdin"}, stdin: "other-secret-1\n",
			wantCode: 1, wantStderr: []string{`user "alice" already exists`},
			check: func(t *testing.T, st *embedded.Store) {
				assertPassword(t, getUser(t, st, "alice"), "alice-secret-1", true)
			},
		},
		{
			name: "short password refused", args: []string{"add", "bob", "--password-stdin"}, stdin: "short12\n",
			wantCode: 1, wantStderr: []string{"at least 8 characters"},
			check: func(t *testing.T, st *embedded.Store) { assertNoUser(t, st, "bob") },
		},
		{
			name: "empty stdin refused", args: []string{"add", "bob", "--password-stdin"}, stdin: "",
			wantCode: 1, wantStderr: []string{"at least 8 characters"},
			check: func(t *testing.T, st *embedded.Store) { assertNoUser(t, st, "bob") },
		},
		{
			name: "no terminal without --password-stdin", args: []string{"add", "bob"}, stdin: "bob-secret-1\n",
			wantCode: 2, wantStderr: []string{"use --password-stdin"},
			check: func(t *testing.T, st *embedded.Store) { assertNoUser(t, st, "bob") },
		},
		{
			name: "invalid name", args: []string{"add", "bob smith", "--password-stdin"}, stdin: "bob-secret-1\n",
			wantCode: 1, wantStderr: []string{`user name "bob smith"`},
		},
		{
			name: "flag of another command", args: []string{"list", "--admin"},
			wantCode: 2, wantStderr: []string{"flag provided but not defined: -admin", "Usage: authgate user list [--config PATH]"},
		},
		{
			name: "missing NAME", args: []string{"delete"},
			wantCode: 2, wantStderr: []string{"usage: authgate user delete NAME [--config PATH]"},
		},
		{
			name: "list", args: []string{"list"},
			before: func(t *testing.T, st *embedded.Store) {
				putSession(t, st, "alice", strings.Repeat("a", 64))
				if _, err := st.UpdateUser(ctx, "root", func(u *store.User) error {
					u.TOTPSecret = []byte("sealed")
					u.Passkeys = []store.Passkey{{ID: []byte("cred"), Name: "Phone", PublicKey: []byte("key"), CreatedAt: time.Now()}}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			},
			wantStdout: []string{"NAME", "ROLE", "GROUPS", "2FA", "SESSIONS", "CREATED"},
			check:      func(t *testing.T, _ *embedded.Store) {}, // rows checked below
		},
		{
			name: "passwd", args: []string{"passwd", "alice", "--password-stdin"}, stdin: "alice-secret-2\n",
			wantStdout: []string{"password of alice changed; their sessions were ended"},
			check: func(t *testing.T, st *embedded.Store) {
				u := getUser(t, st, "alice")
				assertPassword(t, u, "alice-secret-2", true)
				assertPassword(t, u, "alice-secret-1", false)
				if ss, err := st.ListUserSessions(ctx, "alice"); err != nil || len(ss) != 0 {
					t.Errorf("alice's sessions after passwd: %d, %v", len(ss), err)
				}
			},
		},
		{
			name: "passwd too short", args: []string{"passwd", "--password-stdin", "alice"}, stdin: "1234567\n",
			wantCode: 1, wantStderr: []string{"at least 8 characters"},
			check: func(t *testing.T, st *embedded.Store) {
				assertPassword(t, getUser(t, st, "alice"), "alice-secret-2", true)
			},
		},
		{
			name: "passwd of unknown user", args: []string{"passwd", "nobody", "--password-stdin"}, stdin: "nobody-secret\n",
			wantCode: 1, wantStderr: []string{`no user "nobody"`},
		},
		{
			name: "delete", args: []string{"delete", "alice"},
			before:     func(t *testing.T, st *embedded.Store) { putSession(t, st, "alice", strings.Repeat("b", 64)) },
			wantStdout: []string{"user alice deleted; their sessions were ended"},
			check: func(t *testing.T, st *embedded.Store) {
				assertNoUser(t, st, "alice")
				if _, err := st.GetSession(ctx, strings.Repeat("b", 64)); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("alice's session after delete: %v", err)
				}
				getUser(t, st, "root")
			},
		},
		{
			name: "delete again", args: []string{"delete", "alice"},
			wantCode: 1, wantStderr: []string{`no user "alice"`},
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				withStore(t, dir, func(st *embedded.Store) { s.before(t, st) })
			}
			args := append([]string{"user"}, s.args...)
			r := runCLI(t, s.stdin, append(args, "--config", cfg)...)
			if r.code != s.wantCode {
				t.Fatalf("want exit %d, got %v", s.wantCode, r)
			}
			for _, w := range s.wantStdout {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q: %v", w, r)
				}
			}
			for _, w := range s.wantStderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %v", w, r)
				}
			}
			if s.wantCode != 0 && r.stdout != "" {
				t.Errorf("a failed command printed to stdout: %v", r)
			}
			if strings.Contains(r.stdout+r.stderr, "secret-") {
				t.Errorf("a password was echoed: %v", r)
			}
			if s.name == "list" {
				rows := []string{
					`(?m)^NAME\s+ROLE\s+GROUPS\s+2FA\s+SESSIONS\s+CREATED$`,
					`(?m)^alice\s+user\s+ops,web\s+not set up\s+1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`,
					`(?m)^root\s+admin\s+-\s+app\+1 key\s+0\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`,
				}
				for _, re := range rows {
					if !regexp.MustCompile(re).MatchString(r.stdout) {
						t.Errorf("list output does not match %s:\n%s", re, r.stdout)
					}
				}
				if i, j := strings.Index(r.stdout, "alice"), strings.Index(r.stdout, "root"); i > j {
					t.Errorf("users not in name order:\n%s", r.stdout)
				}
			}
			if s.check != nil {
				withStore(t, dir, func(st *embedded.Store) { s.check(t, st) })
			}
		})
	}
}

func bcryptHash(t *testing.T, pw, prefix string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return prefix + string(h[len(prefix):]) // htpasswd -B writes $2y$
}

func TestUserImportHtpasswd(t *testing.T) {
	tests := []struct {
		name        string
		lines       []string
		wantCode    int
		wantStdout  string
		wantStderr  []string
		wantPass    map[string]string // user → password that must verify
		wantMissing []string
	}{
		{
			name: "bcrypt entries, existing user and a {SHA} line",
			lines: []string{
				"# exported from the old panel",
				"dave:" + bcryptHash(t, "dave-pass-1", "$2y$"),
				"erin:" + bcryptHash(t, "erin-pass-1", "$2a$"),
				"frank:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
				"root:" + bcryptHash(t, "not-roots-password", "$2b$"),
				"a/b:" + bcryptHash(t, "slash-pass-1", "$2y$"),
			},
			wantCode:   1,
			wantStdout: "imported 2 user(s); skipped 1 existing: root\n",
			wantStderr: []string{
				`htpasswd line 4: user "frank"`, "{SHA}",
				`htpasswd line 6: user name "a/b"`,
				"2 line(s) of", "were not imported",
			},
			wantPass:    map[string]string{"dave": "dave-pass-1", "erin": "erin-pass-1", "root": "root-secret-1"},
			wantMissing: []string{"frank", "a/b"},
		},
		{
			name:       "all good",
			lines:      []string{"gina:" + bcryptHash(t, "gina-pass-1", "$2y$"), ""},
			wantStdout: "imported 1 user(s)\n",
			wantPass:   map[string]string{"gina": "gina-pass-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := shortTempDir(t)
			cfg := writeConfig(t, dir, testConfig{})
			if r := runCLI(t, "root-secret-1\n", "user", "add", "root", "--admin", "--password-stdin", "--config", cfg); r.code != 0 {
				t.Fatalf("seed root: %v", r)
			}
			file := writeFile(t, dir, "htpasswd", strings.Join(tt.lines, "\n"))
			r := runCLI(t, "", "user", "import-htpasswd", file, "--config", cfg)
			if r.code != tt.wantCode || r.stdout != tt.wantStdout {
				t.Fatalf("want exit %d and stdout %q, got %v", tt.wantCode, tt.wantStdout, r)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %v", w, r)
				}
			}
			if strings.Contains(r.stderr, "$2") {
				t.Errorf("a hash was printed: %v", r)
			}
			withStore(t, dir, func(st *embedded.Store) {
				for name, pw := range tt.wantPass {
					u := getUser(t, st, name)
					assertPassword(t, u, pw, true)
					if name != "root" && u.Role != store.RoleUser {
						t.Errorf("%s imported with role %q", name, u.Role)
					}
				}
				for _, name := range tt.wantMissing {
					assertNoUser(t, st, name)
				}
			})
		})
	}

	t.Run("missing file", func(t *testing.T) {
		dir := shortTempDir(t)
		cfg := writeConfig(t, dir, testConfig{})
		r := runCLI(t, "", "user", "import-htpasswd", filepath.Join(dir, "nope"), "--config", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "no such file") {
			t.Fatalf("want exit 1 naming the file, got %v", r)
		}
	})
}

// TestUserCommandsStaleSocket: a control socket file left by a crashed
// server must not stop the user commands from using the store directly.
func TestUserCommandsStaleSocket(t *testing.T) {
	dir := shortTempDir(t)
	cfg := writeConfig(t, dir, testConfig{})
	sock := filepath.Join(dir, "authgate.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}
	r := runCLI(t, "henry-pass-1\n", "user", "add", "henry", "--password-stdin", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("user add with a stale socket: %v", r)
	}
	withStore(t, dir, func(st *embedded.Store) { assertPassword(t, getUser(t, st, "henry"), "henry-pass-1", true) })
}

// TestUserCommandsLockedStore: when another process holds the store and no
// control socket answers, the command fails with a message naming both.
func TestUserCommandsLockedStore(t *testing.T) {
	dir := shortTempDir(t)
	cfg := writeConfig(t, dir, testConfig{})
	// bbolt's flock is per open file description, so a second Open in this
	// process is refused just like another process would be.
	withStore(t, dir, func(*embedded.Store) {
		start := time.Now()
		r := runCLI(t, "", "user", "list", "--config", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "in use by another process") || !strings.Contains(r.stderr, "authgate.sock") {
			t.Fatalf("want a clear lock error, got %v", r)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v", d)
		}
	})
}
