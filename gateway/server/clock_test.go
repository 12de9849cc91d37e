package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	ntpclock "github.com/authgate/authgate/gateway/clock"
	"github.com/authgate/authgate/gateway/clock/sntptest"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/server"
)

var offsetRE = regexp.MustCompile(`"offset_ms":(-?\d+)`)

// loggedOffset is the last offset_ms in the log.
func loggedOffset(t *testing.T, log string) time.Duration {
	t.Helper()
	m := offsetRE.FindAllStringSubmatch(log, -1)
	if m == nil {
		t.Fatalf("no offset in the log:\n%s", log)
	}
	ms, _ := strconv.Atoi(m[len(m)-1][1])
	return time.Duration(ms) * time.Millisecond
}

// A gateway whose clock is 7 s behind its NTP server starts (refusing is
// off by default), says so loudly in the log, and shows the warning with
// the fix on the admin Settings page.
func TestClockWarningAtStartAndOnAdminPage(t *testing.T) {
	ntp := sntptest.New(t, sntptest.Behaviour{Offset: 7 * time.Second})
	logs := &testkit.SyncBuffer{}
	g := startGatewayWith(t, gwOpts{mode: "off", logw: logs}, func(c *config.Config) {
		c.Time.NTPServers = []string{ntp.Addr()}
	})
	out := logs.String()
	if off := loggedOffset(t, out); (off - 7*time.Second).Abs() > 50*time.Millisecond {
		t.Errorf("logged offset %v, want 7s ± 50ms", off)
	}
	for _, want := range []string{`"level":"warn"`, "server clock is 7", "behind NTP time", "timedatectl set-ntp true", "starting anyway"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}

	g.addAdmin(t, "root", "root password 1")
	b := g.browser(t)
	login(t, b, "root", "root password 1")
	page := b.get("/.authgate/admin/settings")
	mustStatus(t, page, http.StatusOK, "settings page")
	for _, want := range []string{`<span class="badge warn">clock off</span>`, `id="clock-warning"`, "behind</strong> NTP time",
		"<code>sudo timedatectl set-ntp true</code>", "chronyc makestep", "ntpdate -u pool.ntp.org", "measured against " + ntp.Addr()} {
		if !strings.Contains(page.body, want) {
			t.Errorf("settings page lacks %q", want)
		}
	}
}

// clockConfig is a valid config on a fresh data dir checking the clock
// against server.
func clockConfig(t *testing.T, ntpServer string) *config.Config {
	t.Helper()
	cfg := config.Defaults()
	dir := t.TempDir()
	cfg.DataDir = dir
	cfg.SecretKeyFile = filepath.Join(dir, "secret.key")
	cfg.Store.Path = filepath.Join(dir, "authgate.db")
	cfg.Password.Argon2 = config.Argon2{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}
	cfg.Routes = []config.Route{{Name: "panel", PathPrefix: "/", Upstream: "http://127.0.0.1:9", Policy: config.PolicyPassword}}
	cfg.Time.NTPServers = []string{ntpServer}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return &cfg
}

func TestClockRefuseStartOver(t *testing.T) {
	tests := []struct {
		name      string
		b         sntptest.Behaviour
		refuse    time.Duration
		wantStart bool
		wantLog   string
	}{
		{name: "over the limit", b: sntptest.Behaviour{Offset: -7 * time.Second}, refuse: 5 * time.Second},
		{name: "refusing off (default)", b: sntptest.Behaviour{Offset: -7 * time.Second}, wantStart: true, wantLog: "starting anyway"},
		{name: "within the limit", b: sntptest.Behaviour{Offset: 2 * time.Second}, refuse: 5 * time.Second, wantStart: true,
			wantLog: "server clock checked against NTP"},
		// Not knowing is not a reason to refuse: the gateway starts and
		// says the clock could not be measured.
		{name: "no answer", b: sntptest.Behaviour{Silent: true}, refuse: 5 * time.Second, wantStart: true,
			wantLog: "could not measure the offset from NTP"},
		{name: "kiss-of-death", b: sntptest.Behaviour{KissCode: "RATE"}, refuse: time.Second, wantStart: true,
			wantLog: "kiss-of-death"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ntp := sntptest.New(t, tt.b)
			cfg := clockConfig(t, ntp.Addr())
			cfg.Time.RefuseStartOver = tt.refuse
			logs := &testkit.SyncBuffer{}
			start := time.Now()
			srv, err := server.New(context.Background(), cfg, zerolog.New(logs), server.Options{NoControlSocket: true})
			if time.Since(start) > 10*time.Second {
				t.Errorf("start took %v", time.Since(start))
			}
			if !tt.wantStart {
				if err == nil {
					_ = srv.Close()
					t.Fatal("started with a clock 7s ahead and refuse_start_over 5s")
				}
				for _, want := range []string{"7s ahead", ntp.Addr(), "time.refuse_start_over (5s)", "timedatectl set-ntp true"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error lacks %q: %v", want, err)
					}
				}
				if !errors.Is(err, ntpclock.ErrClockOff) {
					t.Errorf("error %v does not match clock.ErrClockOff", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("server.New: %v", err)
			}
			_ = srv.Close()
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs.String())
			}
		})
	}
}

// Serve runs the monitor every time.check_interval and stops it on
// shutdown.
func TestClockMonitoredWhileServing(t *testing.T) {
	ntp := sntptest.New(t, sntptest.Behaviour{Offset: 7 * time.Second})
	cfg := clockConfig(t, ntp.Addr())
	// Below the config's 10s minimum, to keep the test short.
	cfg.Time.CheckInterval = 50 * time.Millisecond
	logs := &testkit.SyncBuffer{}
	srv, err := server.New(context.Background(), cfg, zerolog.New(logs), server.Options{NoControlSocket: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()

	ntp.Set(sntptest.Behaviour{}) // someone fixed the clock
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "server clock checked against NTP") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the monitor did not measure again while serving:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if off := loggedOffset(t, logs.String()); off.Abs() > 50*time.Millisecond {
		t.Errorf("logged offset %v after the fix, want 0 ± 50ms", off)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	n := ntp.Queries()
	time.Sleep(200 * time.Millisecond)
	if ntp.Queries() != n {
		t.Error("the monitor kept measuring after shutdown")
	}
}
