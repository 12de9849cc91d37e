package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gatewayProc is "authgate serve" running as a subprocess.
type gatewayProc struct {
	*proc
	origin string // http://127.0.0.1:PORT
	config string
}

// startServer starts "authgate serve" on a free port with the config
// writeConfig makes from c, and waits until /.authgate/healthz answers 200.
// A port taken between choosing and binding it is retried.
func startServer(t *testing.T, dir string, c testConfig) *gatewayProc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c.Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cfg := writeConfig(t, dir, c)
		p := startCLI(t, "", nil, "serve", "--config", cfg)
		origin := "http://" + c.Listen
		hc := &http.Client{Timeout: 5 * time.Second}
		healthy := p.waitFor(t, "healthz", func() bool {
			resp, err := hc.Get(origin + "/.authgate/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		if healthy {
			return &gatewayProc{proc: p, origin: origin, config: cfg}
		}
		if attempt < 5 && strings.Contains(p.stderr.String(), "address already in use") {
			continue
		}
		t.Fatalf("serve exited (code %d) before it was healthy\nstderr:\n%s", p.wait(t, exitTimeout), p.stderr)
	}
}

// upstream is the "legacy panel" behind the gateway.
func upstream(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "legacy panel for %s", r.Header.Get("Remote-User"))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestServeUserCommandsWhileRunning drives the whole lifecycle: user
// commands reach the running server through its control socket (the
// server holds the bbolt lock), a user logs in, deleting them ends their
// session at once, and SIGTERM stops the server cleanly.
func TestServeUserCommandsWhileRunning(t *testing.T) {
	dir := shortTempDir(t)
	up := upstream(t)
	srv := startServer(t, dir, testConfig{Upstream: up.URL})
	sock := filepath.Join(dir, "authgate.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("control socket %s: %v", sock, err)
	}

	r := runSub(t, "bob-password-1\n", "user", "add", "bob", "--group", "ops", "--password-stdin", "--config", srv.config)
	if r.code != 0 || !strings.Contains(r.stdout, "user bob added (role user)") {
		t.Fatalf("user add while the server runs: %v", r)
	}
	listHas := func(re string) {
		t.Helper()
		r := runSub(t, "", "user", "list", "--config", srv.config)
		if r.code != 0 || !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Fatalf("user list should match %s: %v", re, r)
		}
	}
	listHas(`(?m)^bob\s+user\s+ops\s+not set up\s+0\s`)

	b := newBrowser()
	if code, loc, _ := b.get(t, srv.origin+"/"); code != http.StatusFound || !strings.HasPrefix(loc, "/.authgate/login") {
		t.Fatalf("anonymous GET /: want 302 to the login page, got %d %q", code, loc)
	}
	if code, _ := b.login(t, srv.origin, "bob", "wrong-password"); code != http.StatusUnauthorized {
		t.Fatalf("login with a wrong password: want 401, got %d", code)
	}
	code, loc := b.login(t, srv.origin, "bob", "bob-password-1")
	if code != http.StatusSeeOther || !b.hasCookie(t, srv.origin, "authgate_session") {
		t.Fatalf("login: want 303 and a session cookie, got %d %q", code, loc)
	}
	if code, _, body := b.get(t, srv.origin+"/"); code != http.StatusOK || body != "legacy panel for bob" {
		t.Fatalf("GET / after login: %d %q", code, body)
	}
	listHas(`(?m)^bob\s+user\s+ops\s+not set up\s+1\s`)

	r = runSub(t, "", "user", "delete", "bob", "--config", srv.config)
	if r.code != 0 || !strings.Contains(r.stdout, "user bob deleted") {
		t.Fatalf("user delete while the server runs: %v", r)
	}
	if code, loc, _ := b.get(t, srv.origin+"/"); code != http.StatusFound || !strings.HasPrefix(loc, "/.authgate/login") {
		t.Fatalf("GET / with a deleted user's session: want 302 to the login page, got %d %q", code, loc)
	}
	r = runSub(t, "", "user", "delete", "bob", "--config", srv.config)
	if r.code != 1 || !strings.Contains(r.stderr, `no user "bob"`) {
		t.Fatalf("second delete through the socket: %v", r)
	}

	// A second server on the same data directory is refused clearly.
	second := writeConfig(t, shortTempDir(t), testConfig{DataDir: dir, Upstream: up.URL, Listen: "127.0.0.1:0"})
	r = runCLI(t, "", "serve", "--config", second)
	if r.code != 1 || !strings.Contains(r.stderr, "locked by another process") {
		t.Fatalf("second serve on the same data_dir: %v", r)
	}

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t, exitTimeout); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d\nstderr:\n%s", code, srv.stderr)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("control socket left behind after shutdown: %v", err)
	}

	// No server, no socket: the commands work on the file directly.
	r = runCLI(t, "carol-password\n", "user", "add", "carol", "--password-stdin", "--config", srv.config)
	if r.code != 0 {
		t.Fatalf("user add without a server: %v", r)
	}
	r = runCLI(t, "", "user", "list", "--config", srv.config)
	if r.code != 0 || !regexp.MustCompile(`(?m)^carol\s+user\s`).MatchString(r.stdout) || strings.Contains(r.stdout, "bob") {
		t.Fatalf("user list without a server: %v", r)
	}
}

func TestServeInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		file string
		want []string
	}{
		{
			name: "unknown key and invalid values",
			file: "data_dir: /tmp/x\nbogus: 1\ntwo_factor:\n  mode: sometimes\nroutes: []\n",
			want: []string{
				"is invalid:",
				`bogus (line 2): unknown key`,
				`two_factor.mode (line 4): must be "off", "on" or "required"`,
				`routes (line 5): at least one route is required`,
			},
		},
		{name: "missing file", want: []string{"no such file"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
			if tt.file != "" {
				writeFile(t, dir, filepath.Base(path), tt.file)
			}
			start := time.Now()
			r := runCLI(t, "", "serve", "--config", path)
			if r.code != 1 {
				t.Fatalf("want exit 1, got %v", r)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %v", w, r)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestServeRedisUnreachable: a Redis store nobody listens on fails start-up
// fast, naming the address.
func TestServeRedisUnreachable(t *testing.T) {
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // closed again: nothing listens
	cfg := writeConfig(t, dir, testConfig{Extra: fmt.Sprintf("store:\n  driver: redis\n  redis:\n    addrs: [%q]\n", addr)})
	start := time.Now()
	r := runCLI(t, "", "serve", "--config", cfg)
	elapsed := time.Since(start)
	if r.code != 1 || !strings.Contains(r.stderr, "redis at "+addr+" unreachable") {
		t.Fatalf("want exit 1 naming the unreachable Redis, got %v", r)
	}
	if elapsed > 10*time.Second {
		t.Fatalf("serve took %v to give up on an unreachable Redis", elapsed)
	}
	// The user commands fail just as clearly.
	r = runCLI(t, "", "user", "list", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "redis at "+addr+" unreachable") {
		t.Fatalf("user list: want exit 1 naming the unreachable Redis, got %v", r)
	}
}

// TestServeListenBusy: a listen address already in use is a clear error,
// and the embedded store is released (a user command can open it).
func TestServeListenBusy(t *testing.T) {
	dir := shortTempDir(t)
	busy := httptest.NewServer(http.NotFoundHandler())
	defer busy.Close()
	cfg := writeConfig(t, dir, testConfig{Listen: busy.Listener.Addr().String()})
	r := runCLI(t, "", "serve", "--config", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, "listen "+busy.Listener.Addr().String()) {
		t.Fatalf("want exit 1 naming the address, got %v", r)
	}
	if r := runCLI(t, "", "user", "list", "--config", cfg); r.code != 0 {
		t.Fatalf("store still locked after the failed serve: %v", r)
	}
}
