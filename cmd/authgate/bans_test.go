package main

import (
	"context"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/regulation"
	"github.com/authgate/authgate/gateway/store/embedded"
)

// With no server running, the bans commands open the store file.
func TestBansCommandsOnTheFile(t *testing.T) {
	dir := shortTempDir(t)
	cfg := writeConfig(t, dir, testConfig{})
	withStore(t, dir, func(st *embedded.Store) {
		r := regulation.New(st, nil, regulation.Options{MaxFailures: 1}, nil)
		for _, f := range []struct{ user, ip string }{{"alice", "203.0.113.7"}, {"evil\x1b[31mname", ""}} {
			ip := netip.Addr{}
			if f.ip != "" {
				ip = netip.MustParseAddr(f.ip)
			}
			if _, err := r.Fail(context.Background(), f.user, ip); err != nil {
				t.Fatal(err)
			}
		}
	})
	cli := func(args ...string) cliResult { t.Helper(); return runCLI(t, "", append(args, "--config", cfg)...) }

	res := cli("bans", "list")
	if res.code != 0 {
		t.Fatalf("bans list: %v", res)
	}
	for _, re := range []string{
		`(?m)^KIND\s+BANNED\s+FAILURES\s+SINCE\s+UNTIL\s+IN A ROW\s+KEY$`,
		`(?m)^user\s+alice\s+1\s+\S+ \S+\s+\S+ \S+\s+1\s+u:[0-9a-f]{32}$`,
		`(?m)^ip\s+203\.0\.113\.7\s+1\s+.*\s+ip:203\.0\.113\.7$`,
		`(?m)^user\s+evil\?\[31mname\s+1\s`,
	} {
		if !regexp.MustCompile(re).MatchString(res.stdout) {
			t.Errorf("bans list does not match %s:\n%s", re, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "\x1b") {
		t.Error("a terminal escape from a typed user name reached the terminal")
	}

	if res := cli("bans", "lift", "alice", "203.0.113.7"); res.code != 0 ||
		!strings.Contains(res.stdout, "lifted the user ban of alice") || !strings.Contains(res.stdout, "lifted the ip ban of 203.0.113.7") {
		t.Fatalf("bans lift: %v", res)
	}
	// Unknown targets fail (exit 1) but do not stop the others.
	key := regulation.UserKey("evil\x1b[31mname")
	if res := cli("bans", "lift", "alice", key); res.code != 1 || !strings.Contains(res.stderr, `no active ban for "alice"`) ||
		!strings.Contains(res.stdout, "lifted the user ban of evil?[31mname") {
		t.Fatalf("bans lift of a lifted ban: %v", res)
	}
	if res := cli("bans", "list"); res.code != 0 || res.stdout != "no active bans\n" {
		t.Fatalf("bans list after lifting: %v", res)
	}
	for _, args := range [][]string{{"bans"}, {"bans", "lift"}, {"bans", "list", "x"}, {"bans", "lift", " "}, {"bans", "nope"}} {
		if res := cli(args...); res.code != 2 {
			t.Errorf("authgate %s: exit %d, want 2 (usage)", strings.Join(args, " "), res.code)
		}
	}
}

// While the server runs, the commands go through its control socket: the
// admin sees the ban the failed logins started and lifts it, and the
// user can sign in again at once.
func TestBansCommandsWhileRunning(t *testing.T) {
	dir := shortTempDir(t)
	srv := startServer(t, dir, testConfig{Upstream: upstream(t).URL, Extra: "regulation:\n  max_failures: 3\n"})
	cli := func(args ...string) cliResult {
		t.Helper()
		return runCLI(t, "", append(args, "--config", srv.config)...)
	}
	if r := runCLI(t, "bob-password-1\n", "user", "add", "bob", "--password-stdin", "--config", srv.config); r.code != 0 {
		t.Fatalf("user add: %v", r)
	}
	for i := range 3 {
		// The third failure starts the ban and says so at once.
		want := http.StatusUnauthorized
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if code, _ := newBrowser().login(t, srv.origin, "bob", "wrong-password"); code != want {
			t.Fatalf("wrong login %d: %d, want %d", i+1, code, want)
		}
	}
	// Banned: even the right password gets 429.
	if code, _ := newBrowser().login(t, srv.origin, "bob", "bob-password-1"); code != http.StatusTooManyRequests {
		t.Fatalf("login during the ban: %d, want 429", code)
	}
	res := cli("bans", "list")
	if res.code != 0 || !regexp.MustCompile(`(?m)^user\s+bob\s+3\s`).MatchString(res.stdout) ||
		!regexp.MustCompile(`(?m)^ip\s+127\.0\.0\.1\s+3\s`).MatchString(res.stdout) {
		t.Fatalf("bans list through the socket: %v", res)
	}
	if res := cli("bans", "lift", "bob", "127.0.0.1"); res.code != 0 || strings.Count(res.stdout, "lifted the") != 2 {
		t.Fatalf("bans lift through the socket: %v", res)
	}
	if code, loc := newBrowser().login(t, srv.origin, "bob", "bob-password-1"); code != http.StatusSeeOther {
		t.Fatalf("login after the lift: %d %q", code, loc)
	}
	res = cli("audit", "--all", "--since", "1h")
	for _, re := range []string{`(?m)\s+ban_started\s+bob\s+127\.0\.0\.1\s+user banned for 15m0s after 3 failed attempts`, `(?m)\s+cli\s+ban_lifted\s+bob\s`} {
		if !regexp.MustCompile(re).MatchString(res.stdout) {
			t.Errorf("audit does not match %s:\n%s", re, res.stdout)
		}
	}
}
