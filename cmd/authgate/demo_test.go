package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
)

// demoInfo is what the demo printed for its user.
type demoInfo struct {
	url, password, config string
}

// parseDemo finds the URL and password lines of the demo's banner.
func parseDemo(out string) (demoInfo, bool) {
	var d demoInfo
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "  Open:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				d.url = f[0]
			}
		}
		if _, rest, ok := strings.Cut(line, "--config "); ok {
			d.config = strings.TrimSpace(rest)
		}
		if rest, ok := strings.CutPrefix(line, "  Password:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				d.password = f[0]
			}
		}
	}
	return d, d.url != "" && d.password != "" && d.config != ""
}

// TestDemo runs "authgate demo" as a user would: read the banner, sign in
// as admin with the printed password (two-factor mode "required" sends a
// fresh admin to enrolment), then Ctrl-C, which must leave nothing behind.
func TestDemo(t *testing.T) {
	tmp := shortTempDir(t) // the demo's TMPDIR, to check it cleans up
	var p *proc
	var info demoInfo
	for attempt := 1; ; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p = startCLI(t, "", []string{"TMPDIR=" + tmp}, "demo", "--listen", addr)
		var ok bool
		if p.waitFor(t, "the demo's banner", func() bool { info, ok = parseDemo(p.stdout.String()); return ok }) {
			// Served as localhost (public_url), where browsers offer
			// passkeys.
			if want := "http://localhost:" + addr[strings.LastIndexByte(addr, ':')+1:] + "/"; info.url != want {
				t.Fatalf("demo prints URL %q, want %s", info.url, want)
			}
			break
		}
		if attempt < 5 && strings.Contains(p.stderr.String(), "address already in use") {
			continue
		}
		t.Fatalf("demo exited (code %d) before printing its banner\nstdout:\n%s\nstderr:\n%s", p.wait(t, exitTimeout), p.stdout, p.stderr)
	}
	if len(info.password) < 12 {
		t.Errorf("demo password %q is short", info.password)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil || len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "authgate-demo-") {
		t.Fatalf("want one authgate-demo-* directory in TMPDIR while the demo runs, got %v %v", entries, err)
	}

	// The printed --config lets the command line manage the running demo.
	add := startCLI(t, "alice's password 1\n", []string{"TMPDIR=" + tmp}, "user", "add", "alice", "--password-stdin", "--config", info.config)
	if code := add.wait(t, exitTimeout); code != 0 {
		t.Fatalf("authgate user add --config %s (as the banner says): exit %d\nstdout:\n%s\nstderr:\n%s", info.config, code, add.stdout, add.stderr)
	}
	list := startCLI(t, "", []string{"TMPDIR=" + tmp}, "user", "list", "--config", info.config)
	if code := list.wait(t, exitTimeout); code != 0 || !strings.Contains(list.stdout.String(), "alice") {
		t.Fatalf("user list after the add: exit %d\n%s%s", code, list.stdout, list.stderr)
	}

	origin := strings.TrimSuffix(info.url, "/")
	b := newBrowser()
	if code, loc, _ := b.get(t, info.url); code != http.StatusFound || !strings.HasPrefix(loc, "/.authgate/login") {
		t.Fatalf("GET %s: want 302 to the login page, got %d %q", info.url, code, loc)
	}
	if code, _ := b.login(t, origin, "admin", info.password+"x"); code != http.StatusUnauthorized {
		t.Fatalf("login with a wrong password: want 401, got %d", code)
	}
	if code, loc := b.login(t, origin, "admin", info.password); code != http.StatusSeeOther || loc != "/.authgate/enroll" {
		t.Fatalf("admin login: want 303 to /.authgate/enroll, got %d %q", code, loc)
	}
	if code, _, body := b.get(t, origin+"/.authgate/enroll"); code != http.StatusOK || !strings.Contains(body, "csrf_token") {
		t.Fatalf("enrolment page: %d", code)
	}

	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, exitTimeout); code != 0 {
		t.Fatalf("demo after SIGINT: exit %d\nstderr:\n%s", code, p.stderr)
	}
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
		t.Fatalf("demo left files in TMPDIR: %v %v", entries, err)
	}
	if strings.Contains(p.stderr.String(), info.password) {
		t.Errorf("the admin password appears in the log")
	}
}

// TestDemoListenBusy: a busy --listen address is a clear error that says
// how to pick another, and leaves no temporary directory.
func TestDemoListenBusy(t *testing.T) {
	tmp := shortTempDir(t)
	t.Setenv("TMPDIR", tmp)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := runCLI(t, "", "demo", "--listen", ln.Addr().String())
	if r.code != 1 || !strings.Contains(r.stderr, "use --listen to pick another address") {
		t.Fatalf("want exit 1 with a hint, got %v", r)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("demo left files in TMPDIR: %v", entries)
	}
}
