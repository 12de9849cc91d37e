package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeAdminCommandsWhileRunning: the 2fa, sessions and audit
// commands reach the running server through its control socket, and what
// they do is felt at once by a signed-in browser.
func TestServeAdminCommandsWhileRunning(t *testing.T) {
	dir := shortTempDir(t)
	up := upstream(t)
	srv := startServer(t, dir, testConfig{Upstream: up.URL})
	cli := func(args ...string) cliResult {
		t.Helper()
		return runCLI(t, "", append(args, "--config", srv.config)...)
	}
	mustRun := func(want string, args ...string) cliResult {
		t.Helper()
		r := cli(args...)
		if r.code != 0 || !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Fatalf("authgate %s: want stdout matching %s, got %v", strings.Join(args, " "), want, r)
		}
		return r
	}
	if r := runCLI(t, "bob-password-1\n", "user", "add", "bob", "--password-stdin", "--config", srv.config); r.code != 0 {
		t.Fatalf("user add: %v", r)
	}
	b := newBrowser()
	signIn := func() {
		t.Helper()
		if code, loc := b.login(t, srv.origin, "bob", "bob-password-1"); code != http.StatusSeeOther {
			t.Fatalf("login: %d %q", code, loc)
		}
		if code, _, body := b.get(t, srv.origin+"/"); code != http.StatusOK || body != "legacy panel for bob" {
			t.Fatalf("GET / after login: %d %q", code, body)
		}
	}
	signedOut := func(after string) {
		t.Helper()
		if code, loc, _ := b.get(t, srv.origin+"/"); code != http.StatusFound || !strings.HasPrefix(loc, "/.authgate/login") {
			t.Fatalf("GET / after %s: want 302 to the login page, got %d %q", after, code, loc)
		}
	}

	signIn()
	mustRun(`(?m)^[0-9a-f]{12}\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+127\.0\.0\.1\s+no\s+Go-http-client/1\.1$`,
		"sessions", "list", "bob")
	mustRun(`(?m)^active sessions:\s+1$`, "2fa", "status", "bob")
	mustRun(`(?m)^2FA mode: off \(two_factor.mode in the config file, `, "2fa", "status")

	// A lost phone: the admin disables bob's 2FA; his session dies at once.
	mustRun(`(?m)^bob had no 2FA set up; their sessions were ended$`, "2fa", "disable", "bob")
	signedOut("2fa disable")
	if r := cli("2fa", "disable", "bob", "nobody"); r.code != 1 || !strings.Contains(r.stderr, `no user "nobody"; nothing changed`) {
		t.Fatalf("2fa disable with an unknown name through the socket: %v", r)
	}

	signIn()
	mustRun(`^ended 1 session\(s\) of bob\n$`, "sessions", "revoke", "bob")
	signedOut("sessions revoke")
	if r := cli("sessions", "list", "nobody"); r.code != 1 || !strings.Contains(r.stderr, `no user "nobody"`) {
		t.Fatalf("sessions list of an unknown user through the socket: %v", r)
	}

	// Mode required: the server picks it up within seconds and sends bob
	// to enrolment after his password.
	mustRun(`^2FA mode set to required`, "2fa", "mode", "required")
	mustRun(`(?m)^2FA mode: required \(set on the admin Settings page or with `+"`authgate 2fa mode`"+`; it wins `, "2fa", "status")
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, loc := newBrowser().login(t, srv.origin, "bob", "bob-password-1")
		if code == http.StatusSeeOther && strings.HasPrefix(loc, "/.authgate/enroll") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("login with mode required: want 303 to enrolment, got %d %q", code, loc)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mustRun(`^issuer set to "Acme"`, "2fa", "issuer", "Acme")

	r := mustRun(`^TIME\s+ACTOR\s+ACTION\s+TARGET\s+IP\s+DETAIL\n`, "audit", "--since", "1h")
	for _, re := range []string{
		`(?m)^\S+ \S+\s+cli\s+setting_changed\s+two_factor\.issuer\s+-\s+two_factor\.issuer=Acme`,
		`(?m)^\S+ \S+\s+cli\s+setting_changed\s+two_factor\.mode\s+-\s+two_factor\.mode=required \(was "off"\)$`,
		`(?m)^\S+ \S+\s+cli\s+sessions_revoked\s+bob\s+-\s+1 session\(s\) revoked$`,
		`(?m)^\S+ \S+\s+cli\s+totp_disabled\s+bob\s+-\s+2FA was not set up; 1 session\(s\) revoked$`,
		`(?m)^\S+ \S+\s+cli\s+user_added\s+bob\s+-\s+role=user$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("audit output does not match %s:\n%s", re, r.stdout)
		}
	}
	if i, j := strings.Index(r.stdout, "two_factor.issuer"), strings.Index(r.stdout, "user_added"); i < 0 || j < 0 || i > j {
		t.Errorf("audit is not newest first:\n%s", r.stdout)
	}
	if r := mustRun(`^TIME.*\n[^\n]+\n$`, "audit", "--limit", "1"); !strings.Contains(r.stdout, "two_factor.issuer") {
		t.Errorf("audit --limit 1 is not the newest event: %v", r)
	}
}
