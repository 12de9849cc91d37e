package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/clock/sntptest"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/store"
)

// timeConfig is the time section checking the clock against addr.
func timeConfig(addr string) string {
	return fmt.Sprintf("time:\n  ntp_servers: [%q]\n  warn_over: 5s\n", addr)
}

var clockLineRE = regexp.MustCompile(`(?m)^\[(ok|fail)\] *server clock: ([0-9.]+)(ms|s) (behind|ahead) NTP time \(measured against (\S+), round trip [^)]+\)`)

// clockLine reads the doctor's server clock line: the signed offset
// (positive: behind) and the server.
func clockLine(t *testing.T, r cliResult) (sev string, offset time.Duration, server string) {
	t.Helper()
	m := clockLineRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no server clock line: %v", r)
	}
	v, _ := strconv.ParseFloat(m[2], 64)
	unit := time.Second
	if m[3] == "ms" {
		unit = time.Millisecond
	}
	offset = time.Duration(v * float64(unit))
	if m[4] == "ahead" {
		offset = -offset
	}
	return m[1], offset, m[5]
}

func wantLines(t *testing.T, r cliResult, want ...string) {
	t.Helper()
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(r.stdout) {
			t.Errorf("stdout lacks %s: %v", w, r)
		}
	}
}

// addDriftUser creates a user whose recent failed codes matched steps
// time steps away.
func addDriftUser(t *testing.T, st store.Store, name string, steps ...int) {
	t.Helper()
	now := time.Now().UTC()
	u := store.User{Name: name, PasswordHash: "x", Role: store.RoleUser, CreatedAt: now, UpdatedAt: now,
		TOTPSecret: []byte("sealed"), TOTPEnrolledAt: now.Add(-48 * time.Hour)}
	for i, s := range steps {
		u.DriftSeen = append(u.DriftSeen, store.DriftObservation{At: now.Add(-time.Duration(len(steps)-i) * time.Hour), Steps: s})
	}
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

func openTestStore(t *testing.T, cfgPath string) store.Store {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := server.OpenStore(context.Background(), cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestDoctorServerClock(t *testing.T) {
	tests := []struct {
		name     string
		b        sntptest.Behaviour
		wantSev  string
		want     time.Duration
		wantCode int
		wantFix  []string
	}{
		{name: "7s behind", b: sntptest.Behaviour{Offset: 7 * time.Second}, wantSev: "fail", want: 7 * time.Second, wantCode: 1,
			wantFix: []string{`(?m)^       fix: users' codes fail while the server clock is off; .*` + "`sudo timedatectl set-ntp true`" +
				".*chronyc makestep.*`sudo ntpdate -u pool.ntp.org`"}},
		{name: "7s ahead", b: sntptest.Behaviour{Offset: -7 * time.Second}, wantSev: "fail", want: -7 * time.Second, wantCode: 1,
			wantFix: []string{`more than time.warn_over \(5s\)`, `timedatectl set-ntp true`}},
		{name: "in sync", b: sntptest.Behaviour{Offset: 20 * time.Millisecond}, wantSev: "ok", want: 20 * time.Millisecond,
			wantFix: []string{`(?m)^no problems found$`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ntp := sntptest.New(t, tt.b)
			dir := t.TempDir()
			cfg := writeConfig(t, dir, testConfig{Extra: timeConfig(ntp.Addr())})
			r := runCLI(t, "", "doctor", "--config", cfg)
			if r.code != tt.wantCode {
				t.Fatalf("want exit %d, got %v", tt.wantCode, r)
			}
			sev, off, srv := clockLine(t, r)
			if sev != tt.wantSev || srv != ntp.Addr() || (off-tt.want).Abs() > 50*time.Millisecond {
				t.Errorf("server clock line: %s %v %s, want %s %v ± 50ms %s\n%v", sev, off, srv, tt.wantSev, tt.want, ntp.Addr(), r)
			}
			wantLines(t, r, tt.wantFix...)
			// No store yet: said, not a problem.
			wantLines(t, r, `(?m)^\[info\] store: embedded `+regexp.QuoteMeta(filepath.Join(dir, "authgate.db"))+` does not exist yet$`,
				`(?m)^\[ok\] +config: valid, no warnings$`)
			if _, err := os.Stat(filepath.Join(dir, "authgate.db")); err == nil {
				t.Error("doctor created the store")
			}
		})
	}

	t.Run("no answer", func(t *testing.T) {
		ntp := sntptest.New(t, sntptest.Behaviour{Silent: true})
		cfg := writeConfig(t, t.TempDir(), testConfig{Extra: timeConfig(ntp.Addr())})
		r := runCLI(t, "", "doctor", "--config", cfg)
		if r.code != 1 {
			t.Fatalf("want exit 1, got %v", r)
		}
		wantLines(t, r, `(?m)^\[fail\] server clock: could not be measured: clock: no NTP server gave a usable answer: `+
			regexp.QuoteMeta(ntp.Addr())+`: no answer in time`, `(?m)^       fix: allow outgoing UDP port 123`, `(?m)^1 problem\(s\) found$`)
	})
	t.Run("kiss-of-death", func(t *testing.T) {
		ntp := sntptest.New(t, sntptest.Behaviour{KissCode: "RATE"})
		cfg := writeConfig(t, t.TempDir(), testConfig{Extra: timeConfig(ntp.Addr())})
		r := runCLI(t, "", "doctor", "--config", cfg)
		if r.code != 1 {
			t.Fatalf("want exit 1, got %v", r)
		}
		wantLines(t, r, `(?m)^\[fail\] server clock: could not be measured: .*kiss-of-death.*code RATE`)
	})
	t.Run("not configured", func(t *testing.T) {
		cfg := writeConfig(t, t.TempDir(), testConfig{})
		r := runCLI(t, "", "doctor", "--config", cfg)
		if r.code != 0 {
			t.Fatalf("want exit 0, got %v", r)
		}
		wantLines(t, r, `(?m)^\[info\] server clock: not checked: time.ntp_servers is empty$`,
			`(?m)^       fix: set time.ntp_servers`)
	})
}

func TestDoctorConfig(t *testing.T) {
	dir := t.TempDir()
	t.Run("warnings are problems with a fix", func(t *testing.T) {
		cfg := writeFile(t, dir, "warn.yaml", fmt.Sprintf(`data_dir: %q
public_url: "http://panel.example.com"
routes:
  - name: open
    upstream: http://127.0.0.1:9
    policy: bypass
`, dir))
		r := runCLI(t, "", "doctor", "--config", cfg)
		if r.code != 1 {
			t.Fatalf("want exit 1, got %v", r)
		}
		wantLines(t, r,
			`(?m)^\[warn\] config: public_url \(line 2\): uses http: .*\n       fix: serve the gateway over HTTPS`,
			`(?m)^\[warn\] config: routes\[0\].policy \(line 6\): is bypass: .*\n       fix: set policy: password or two_factor`,
			`(?m)^2 problem\(s\) found$`)
	})
	t.Run("invalid config stops there", func(t *testing.T) {
		cfg := writeFile(t, dir, "bad.yaml", "bogus: 1\nroutes: []\n")
		r := runCLI(t, "", "doctor", "--config", cfg)
		if r.code != 1 {
			t.Fatalf("want exit 1, got %v", r)
		}
		wantLines(t, r, `(?m)^\[fail\] config: bogus \(line 1\): unknown key\n       fix: correct it in `)
		if strings.Contains(r.stdout, "server clock") || strings.Contains(r.stdout, "store") {
			t.Errorf("checks ran on an invalid config: %v", r)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		r := runCLI(t, "", "doctor", "--config", filepath.Join(dir, "nope.yaml"))
		if r.code != 1 || !strings.Contains(r.stdout, "no such file") {
			t.Fatalf("want exit 1 naming the missing file, got %v", r)
		}
	})
	t.Run("usage", func(t *testing.T) {
		if r := runCLI(t, "", "doctor", "extra"); r.code != 2 || !strings.Contains(r.stderr, `takes no argument "extra"`) {
			t.Fatalf("want exit 2, got %v", r)
		}
	})
}

// The drift the failed codes show: two users off by the same ~90 s point
// at the server clock; a third user far off alone is that user's phone.
func TestDoctorStoreAndDrift(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, testConfig{})
	st := openTestStore(t, cfg)
	addDriftUser(t, st, "alice", 3, 3)
	addDriftUser(t, st, "bob", 3)
	addDriftUser(t, st, "carol", -10)
	addDriftUser(t, st, "dave") // no evidence
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "", "doctor", "--config", cfg)
	if r.code != 1 {
		t.Fatalf("want exit 1, got %v", r)
	}
	wantLines(t, r,
		`(?m)^\[ok\] +store: embedded `+regexp.QuoteMeta(filepath.Join(dir, "authgate.db"))+` reachable, round trip .+$`,
		`(?m)^\[fail\] code drift: failed codes of 2 users agree: the server clock is likely ~90 s behind \(from the last 24 h\)\n       fix: users' codes fail`,
		`(?m)^\[warn\] code drift: user carol: phone clock ~5 min behind: enable automatic time on the phone\n       fix: `,
		`(?m)^2 problem\(s\) found$`)
	if strings.Contains(r.stdout, "alice:") || strings.Contains(r.stdout, "dave") {
		t.Errorf("users explained by the server clock, or without evidence, are listed: %v", r)
	}

	// Without evidence the drift line is OK.
	cfg2 := writeConfig(t, t.TempDir(), testConfig{})
	st2 := openTestStore(t, cfg2)
	addDriftUser(t, st2, "erin")
	_ = st2.Close()
	r = runCLI(t, "", "doctor", "--config", cfg2)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %v", r)
	}
	wantLines(t, r, `(?m)^\[ok\] +code drift: no failed code in the last 24 h matched a clock offset$`, `(?m)^no problems found$`)
}

// With "authgate serve" running, the embedded store is the server's: the
// doctor reaches it through the control socket and still measures the
// clock; the server itself warned about the clock at start.
func TestDoctorWhileServing(t *testing.T) {
	ntp := sntptest.New(t, sntptest.Behaviour{Offset: 7 * time.Second})
	dir := shortTempDir(t)
	srv := startServer(t, dir, testConfig{Extra: timeConfig(ntp.Addr())})
	r := runCLI(t, "", "doctor", "--config", srv.config)
	if r.code != 1 {
		t.Fatalf("want exit 1 (clock), got %v", r)
	}
	if sev, off, _ := clockLine(t, r); sev != "fail" || (off-7*time.Second).Abs() > 50*time.Millisecond {
		t.Errorf("clock line %s %v: %v", sev, off, r)
	}
	wantLines(t, r,
		`(?m)^\[ok\] +store: embedded \S+ is held by the running server; its control socket answered in \S+$`,
		`(?m)^\[info\] code drift: not analysed here: the running server holds the store\n       fix: see the admin area's Settings page`,
		`(?m)^\[ok\] +2fa mode: off, from two_factor.mode in the config file \(nothing set on the Settings page`,
		`(?m)^1 problem\(s\) found$`)
	if !strings.Contains(srv.stderr.String(), "server clock is 7") || !strings.Contains(srv.stderr.String(), "timedatectl set-ntp true") {
		t.Errorf("serve did not warn about the clock at start:\n%s", srv.stderr.String())
	}

	// The file is edited while the server runs: two_factor.mode changes
	// only at restart, so the server still enforces what it loaded.
	writeConfig(t, dir, testConfig{Listen: strings.TrimPrefix(srv.origin, "http://"), Mode: "on", Extra: timeConfig(ntp.Addr())})
	r = runCLI(t, "", "doctor", "--config", srv.config)
	wantLines(t, r,
		`(?m)^\[warn\] 2fa mode: the running server enforces off from the config file it loaded, but the file now says on\n       fix: restart the server`,
		`(?m)^2 problem\(s\) found$`)

	// Set through the control socket, the stored mode wins.
	if r := runCLI(t, "", "2fa", "mode", "required", "--config", srv.config); r.code != 0 {
		t.Fatalf("2fa mode required: %v", r)
	}
	r = runCLI(t, "", "doctor", "--config", srv.config)
	wantLines(t, r,
		`(?m)^\[info\] 2fa mode: required, set on the Settings page or with `+"`authgate 2fa mode`"+`; it wins over two_factor.mode on in the config file$`,
		`(?m)^1 problem\(s\) found$`)
}

func TestDoctorRedis(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // closed again: nothing listens
		cfg := writeConfig(t, t.TempDir(), testConfig{Extra: fmt.Sprintf("store:\n  driver: redis\n  redis:\n    addrs: [%q]\n", addr)})
		start := time.Now()
		r := runCLI(t, "", "doctor", "--config", cfg)
		if r.code != 1 || time.Since(start) > 15*time.Second {
			t.Fatalf("want exit 1 soon, got %v after %v", r, time.Since(start))
		}
		wantLines(t, r, `(?m)^\[fail\] store: store: redis at `+regexp.QuoteMeta(addr)+` unreachable: .*\n       fix: check that Redis runs`,
			`(?m)^\[info\] code drift: not analysed: the store cannot be read`)
	})
	t.Run("reachable", func(t *testing.T) {
		addr := startRedis(t, "--appendonly", "yes")
		cfg := writeConfig(t, t.TempDir(), testConfig{Extra: fmt.Sprintf("store:\n  driver: redis\n  redis:\n    addrs: [%q]\n    key_prefix: doctortest\n", addr)})
		r := runCLI(t, "", "doctor", "--config", cfg)
		if r.code != 0 {
			t.Fatalf("want exit 0, got %v", r)
		}
		wantLines(t, r, `(?m)^\[ok\] +store: redis at `+regexp.QuoteMeta(addr)+` reachable, round trip .+$`,
			`(?m)^\[ok\] +redis persistence: append-only file on, no eviction$`,
			`(?m)^\[ok\] +2fa mode: off, from two_factor.mode in the config file `,
			`(?m)^\[ok\] +code drift: no failed code in the last 24 h matched a clock offset$`)
		// Set with the command line, the stored mode wins over the file:
		// doctor says so, and that editing the file would change nothing.
		if r := runCLI(t, "", "2fa", "mode", "required", "--config", cfg); r.code != 0 {
			t.Fatalf("2fa mode required: %v", r)
		}
		r = runCLI(t, "", "doctor", "--config", cfg)
		wantLines(t, r, `(?m)^\[info\] 2fa mode: required, set on the Settings page or with `+"`authgate 2fa mode`"+`; it wins over two_factor.mode off in the config file\n +fix: change it on the admin Settings page`)
	})
	// Redis holds the only copy of users and secrets: a server that
	// would lose them on a restart is a problem.
	t.Run("reachable without persistence", func(t *testing.T) {
		addr := startRedis(t)
		cfg := writeConfig(t, t.TempDir(), testConfig{Extra: fmt.Sprintf("store:\n  driver: redis\n  redis:\n    addrs: [%q]\n    key_prefix: doctortest\n", addr)})
		r := runCLI(t, "", "doctor", "--config", cfg)
		if r.code != 1 {
			t.Fatalf("want exit 1, got %v", r)
		}
		wantLines(t, r, `(?m)^\[warn\] redis persistence: Redis runs without the append-only file .*Set appendonly yes\.$`)
	})
}

// startRedis runs a throw-away redis-server on a free port (never the
// machine's own Redis) and returns its address.
func startRedis(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	for attempt := 1; attempt <= 5; attempt++ {
		port := freePort(t)
		base := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(),
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""}
		cmd := exec.Command(bin, append(base, args...)...) // later arguments win
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "Ready to accept connections") {
					ready <- true
					for sc.Scan() {
					}
					return
				}
			}
			ready <- false
		}()
		select {
		case ok := <-ready:
			if ok {
				t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				return fmt.Sprintf("127.0.0.1:%d", port)
			}
		case <-time.After(10 * time.Second):
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Fatal("redis-server did not start")
	return ""
}
