package admin

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	ntpclock "github.com/authgate/authgate/gateway/clock"
	"github.com/authgate/authgate/gateway/clock/sntptest"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

var _ Clock = (*ntpclock.Monitor)(nil)

// withClock serves the env's admin area again with c as its Clock and
// returns an env whose agents talk to that server.
func withClock(t *testing.T, e *env, c Clock) *env {
	t.Helper()
	pages, err := templates.ParsePages()
	if err != nil {
		t.Fatal(err)
	}
	rd, err := web.NewRenderer(pages)
	if err != nil {
		t.Fatal(err)
	}
	h := New(Deps{Users: e.svc, Upstreams: e.proxy, Hasher: e.hasher, Pages: rd, Now: e.clk.Now, Clock: c},
		Options{ConfigPath: configPath, ConfigLoadedAt: e.loadedAt})
	srv := httptest.NewServer(middleware.Logger(zerolog.New(e.logs))(withCSRF(requireUser(e.st)(h.Handler()))))
	t.Cleanup(srv.Close)
	e2 := *e
	e2.srv = srv
	return &e2
}

// The Settings page shows the server clock measured against a fake SNTP
// server: the warning with the fixes when it is off, the offset when it
// is fine, and how to turn the check on when it is not configured.
func TestSettingsServerClock(t *testing.T) {
	ntp := sntptest.New(t, sntptest.Behaviour{Offset: 7 * time.Second})
	mon := ntpclock.NewMonitor(ntpclock.Options{Servers: []string{ntp.Addr()}, WarnOver: 5 * time.Second, Timeout: 300 * time.Millisecond})
	e := withClock(t, newEnv(t, openEmbedded), mon)
	a := e.admin(t, "root")
	measure := func(b sntptest.Behaviour) {
		t.Helper()
		ntp.Set(b)
		_, _ = mon.Measure(context.Background())
	}

	measure(sntptest.Behaviour{Offset: 7 * time.Second})
	page := a.get(t, SettingsPath)
	for _, want := range []string{
		`<h2 id="clock-heading">Server clock</h2>`,
		`<span class="badge warn">clock off</span>`,
		`id="clock-warning"`, "Users' codes fail while the server clock is off",
		"<code>sudo timedatectl set-ntp true</code>", "chronyc makestep", "<code>sudo ntpdate -u pool.ntp.org</code>",
		"measured against " + ntp.Addr(), "warning above 5s",
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("warning: page lacks %q", want)
		}
	}
	if !strings.Contains(page.body, "<strong>7s behind</strong>") && !strings.Contains(page.body, "<strong>6.99s behind</strong>") &&
		!strings.Contains(page.body, "<strong>7.01s behind</strong>") {
		t.Errorf("warning: page lacks the offset (7s behind):\n%s", page.body)
	}

	// Fixed: the badge says so and the fixes are gone.
	measure(sntptest.Behaviour{})
	page = a.get(t, SettingsPath)
	if !strings.Contains(page.body, `<span class="badge on">in sync</span>`) || strings.Contains(page.body, "clock-warning") ||
		strings.Contains(page.body, "timedatectl set-ntp") {
		t.Errorf("in sync: page\n%s", page.body)
	}

	// The NTP server stops answering: the last offset stays, with the
	// failure and what to check.
	measure(sntptest.Behaviour{Silent: true})
	page = a.get(t, SettingsPath)
	for _, want := range []string{`<span class="badge on">in sync</span>`, "last check failed", "no answer in time", "UDP port 123"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("failure: page lacks %q", want)
		}
	}

	// Not configured (no Clock, or a Monitor without servers).
	for name, c := range map[string]Clock{"nil": nil, "no servers": ntpclock.NewMonitor(ntpclock.Options{})} {
		e2 := withClock(t, e, c)
		page := e2.login(t, "root", e.clk.Now()).get(t, SettingsPath)
		if !strings.Contains(page.body, `<span class="badge off">not checked</span>`) || !strings.Contains(page.body, "<code>time.ntp_servers</code>") {
			t.Errorf("%s: page lacks the hint\n%s", name, page.body)
		}
	}
}

func TestClockView(t *testing.T) {
	at := time.Date(2026, 3, 14, 9, 0, 5, 0, time.UTC)
	v := clockView(ntpclock.Status{
		Configured: true, Servers: []string{"a"}, WarnOver: 5 * time.Second,
		Last:    ntpclock.Result{Server: "a", Offset: -90 * time.Second, RTT: 1234 * time.Microsecond, At: at},
		Warning: true,
	})
	if !v.Measured || v.Offset != "1m30s ahead" || v.At != "2026-03-14 09:00:05 UTC" || v.RTT != "1.2ms" ||
		v.WarnOver != "5s" || len(v.Fixes) != 3 || v.Error != "" || v.Hint != "" {
		t.Errorf("view %+v", v)
	}
	v = clockView(ntpclock.Status{Configured: true, Servers: []string{"a"}, LastErr: "a: no answer in time"})
	if v.Measured || v.Error == "" || !strings.Contains(v.Hint, "UDP port 123") || len(v.Fixes) != 0 {
		t.Errorf("view %+v", v)
	}
}
