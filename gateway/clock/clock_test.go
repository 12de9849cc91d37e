package clock_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/clock"
	"github.com/authgate/authgate/gateway/clock/sntptest"
	"github.com/authgate/authgate/gateway/internal/testkit"
)

// tolerance is how close a measurement on loopback must be to the truth.
const tolerance = 50 * time.Millisecond

func near(got, want time.Duration) bool { return (got - want).Abs() <= tolerance }

func TestMeasureOffset(t *testing.T) {
	tests := []struct {
		name string
		// server is how far the NTP server's time is ahead of the real
		// clock; skew how far the clock under test is ahead of it.
		server, skew time.Duration
		want         time.Duration
		warning      bool
	}{
		{name: "in sync", want: 0},
		{name: "server clock 7s behind", server: 7 * time.Second, want: 7 * time.Second, warning: true},
		{name: "server clock 7s ahead", server: -7 * time.Second, want: -7 * time.Second, warning: true},
		{name: "just under the threshold", server: 4 * time.Second, want: 4 * time.Second},
		{name: "20 minutes behind", server: 20 * time.Minute, want: 20 * time.Minute, warning: true},
		// The injected clock is the one measured: a clock 90s fast
		// against a correct NTP server is 90s ahead.
		{name: "injected clock 90s fast", skew: 90 * time.Second, want: -90 * time.Second, warning: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sntptest.New(t, sntptest.Behaviour{Offset: tt.server})
			m := clock.NewMonitor(clock.Options{
				Servers: []string{srv.Addr()}, WarnOver: 5 * time.Second,
				Now: func() time.Time { return time.Now().Add(tt.skew) },
			})
			before := time.Now().Add(tt.skew)
			res, err := m.Measure(context.Background())
			if err != nil {
				t.Fatalf("Measure: %v", err)
			}
			if !near(res.Offset, tt.want) {
				t.Errorf("offset %v, want %v ± %v", res.Offset, tt.want, tolerance)
			}
			if res.Server != srv.Addr() || res.RTT < 0 || res.RTT > tolerance || res.At.Before(before) {
				t.Errorf("result %+v: want server %s, a small RTT and At after %v", res, srv.Addr(), before)
			}
			st := m.Status()
			if !st.Configured || st.Last != res || st.LastErr != "" || st.Warning != tt.warning || st.WarnOver != 5*time.Second {
				t.Errorf("status %+v after %+v (want warning %v)", st, res, tt.warning)
			}
			if tt.warning != (st.Fix != "") {
				t.Errorf("Fix %q with warning %v", st.Fix, st.Warning)
			}
		})
	}
}

func TestMeasureRefusesBadAnswers(t *testing.T) {
	tests := []struct {
		name    string
		b       sntptest.Behaviour
		want    error
		wantMsg string
	}{
		{name: "kiss-of-death", b: sntptest.Behaviour{KissCode: "RATE"}, want: clock.ErrKissOfDeath, wantMsg: "code RATE"},
		{name: "unsynchronised", b: sntptest.Behaviour{Leap: 3}, want: clock.ErrUnsynchronised},
		{name: "wrong mode", b: sntptest.Behaviour{Mode: 3}, want: clock.ErrBadAnswer, wantMsg: "mode"},
		{name: "broadcast mode", b: sntptest.Behaviour{Mode: 5}, want: clock.ErrBadAnswer},
		{name: "originate not echoed", b: sntptest.Behaviour{WrongOrigin: true}, want: clock.ErrBadAnswer},
		{name: "stratum 16", b: sntptest.Behaviour{Stratum: 16}, want: clock.ErrBadAnswer, wantMsg: "stratum"},
		{name: "no reply", b: sntptest.Behaviour{Silent: true}, want: clock.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sntptest.New(t, tt.b)
			m := clock.NewMonitor(clock.Options{Servers: []string{srv.Addr()}, Timeout: 300 * time.Millisecond})
			start := time.Now()
			_, err := m.Measure(context.Background())
			if !errors.Is(err, clock.ErrNoAnswer) || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v wrapped in %v", err, tt.want, clock.ErrNoAnswer)
			}
			if !strings.Contains(err.Error(), srv.Addr()+": ") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q should name the server and %q", err, tt.wantMsg)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v with a 300ms timeout", d)
			}
			if srv.Queries() != 1 {
				t.Errorf("server got %d queries, want 1", srv.Queries())
			}
			st := m.Status()
			if st.LastErr != err.Error() || st.Warning || !st.Last.At.IsZero() || st.LastAttempt.IsZero() {
				t.Errorf("status after a failure: %+v", st)
			}
		})
	}
}

func TestMeasureServerOrder(t *testing.T) {
	bad := sntptest.New(t, sntptest.Behaviour{KissCode: "DENY"})
	silent := sntptest.New(t, sntptest.Behaviour{Silent: true})
	good := sntptest.New(t, sntptest.Behaviour{Offset: 3 * time.Second})
	unused := sntptest.New(t, sntptest.Behaviour{Offset: time.Hour})
	m := clock.NewMonitor(clock.Options{
		Servers: []string{bad.Addr(), silent.Addr(), good.Addr(), unused.Addr()},
		Timeout: 200 * time.Millisecond,
	})
	res, err := m.Measure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Server != good.Addr() || !near(res.Offset, 3*time.Second) {
		t.Errorf("got %+v, want the first good server's answer (+3s)", res)
	}
	if bad.Queries() != 1 || silent.Queries() != 1 || good.Queries() != 1 || unused.Queries() != 0 {
		t.Errorf("queries: bad %d, silent %d, good %d, unused %d", bad.Queries(), silent.Queries(), good.Queries(), unused.Queries())
	}

	// A later failure keeps the last good measurement and reports the
	// error beside it.
	good.Set(sntptest.Behaviour{Silent: true})
	unused.Set(sntptest.Behaviour{Leap: 3})
	if _, err := m.Measure(context.Background()); !errors.Is(err, clock.ErrTimeout) || !errors.Is(err, clock.ErrUnsynchronised) ||
		!errors.Is(err, clock.ErrKissOfDeath) {
		t.Fatalf("want every server's error, got %v", err)
	}
	if st := m.Status(); st.Last != res || st.LastErr == "" {
		t.Errorf("status %+v: want the last good result and the new error", st)
	}
}

func TestMeasureDialer(t *testing.T) {
	srv := sntptest.New(t, sntptest.Behaviour{Offset: -2 * time.Second})
	var mu sync.Mutex
	var dialed []string
	m := clock.NewMonitor(clock.Options{
		// The name does not resolve: the dialer maps it to the fake.
		Servers: []string{"ntp.invalid", "ntp2.invalid:4123"},
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, network+" "+address)
			mu.Unlock()
			if address == "ntp.invalid:123" {
				return nil, errors.New("dial refused")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, srv.Addr())
		},
	})
	res, err := m.Measure(context.Background())
	if err != nil || !near(res.Offset, -2*time.Second) || res.Server != "ntp2.invalid:4123" {
		t.Fatalf("got %+v, %v", res, err)
	}
	if got := strings.Join(dialed, ","); got != "udp ntp.invalid:123,udp ntp2.invalid:4123" {
		t.Errorf("dialed %s", got)
	}
}

func TestMeasureContext(t *testing.T) {
	srv := sntptest.New(t, sntptest.Behaviour{Silent: true})
	m := clock.NewMonitor(clock.Options{Servers: []string{srv.Addr(), srv.Addr()}, Timeout: time.Minute})

	// The context's deadline bounds the wait, and counts as a timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := m.Measure(ctx)
	if !errors.Is(err, clock.ErrTimeout) || time.Since(start) > 5*time.Second {
		t.Fatalf("deadline: got %v after %v", err, time.Since(start))
	}
	if m.Status().LastErr == "" {
		t.Error("a deadline is a finding: the status should say no server answered")
	}

	// Cancelling (shutdown) ends the wait and is not recorded.
	m2 := clock.NewMonitor(clock.Options{Servers: []string{srv.Addr()}, Timeout: time.Minute})
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	start = time.Now()
	if _, err := m2.Measure(ctx2); !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("cancel: got %v after %v", err, time.Since(start))
	}
	if st := m2.Status(); !st.LastAttempt.IsZero() || st.LastErr != "" {
		t.Errorf("a cancelled measurement was recorded: %+v", st)
	}
}

func TestNotConfigured(t *testing.T) {
	var logs bytes.Buffer
	m := clock.NewMonitor(clock.Options{Logger: zerolog.New(&logs)})
	if _, err := m.Measure(context.Background()); !errors.Is(err, clock.ErrNotConfigured) {
		t.Fatalf("got %v", err)
	}
	if _, err := m.Check(context.Background()); !errors.Is(err, clock.ErrNotConfigured) {
		t.Fatalf("got %v", err)
	}
	m.Start(context.Background())() // returns at once
	if st := m.Status(); st.Configured || st.Warning || !st.LastAttempt.IsZero() {
		t.Errorf("status %+v", st)
	}
	if logs.Len() != 0 {
		t.Errorf("logged %s", logs.String())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStartLogsAndWarns(t *testing.T) {
	srv := sntptest.New(t, sntptest.Behaviour{Offset: 100 * time.Millisecond})
	var logs testkit.SyncBuffer
	m := clock.NewMonitor(clock.Options{
		Servers: []string{srv.Addr()}, Interval: 50 * time.Millisecond, WarnOver: 5 * time.Second,
		Timeout: 200 * time.Millisecond, Logger: zerolog.New(&logs),
	})
	stop := m.Start(context.Background())
	defer stop()
	waitFor(t, "the first measurement", func() bool { return !m.Status().Last.At.IsZero() })
	if st := m.Status(); st.Warning || !strings.Contains(logs.String(), `"level":"info"`) ||
		!strings.Contains(logs.String(), `"message":"server clock checked against NTP"`) {
		t.Fatalf("in sync: status %+v, logs %s", st, logs.String())
	}

	srv.Set(sntptest.Behaviour{Offset: 7 * time.Second})
	waitFor(t, "the warning", func() bool { return m.Status().Warning })
	st := m.Status()
	if !near(st.Last.Offset, 7*time.Second) || !strings.Contains(st.Fix, "timedatectl set-ntp true") {
		t.Errorf("status %+v", st)
	}
	waitFor(t, "the warning in the log", func() bool { return strings.Contains(logs.String(), `"level":"warn"`) })
	out := logs.String()
	if m := regexp.MustCompile(`"offset_ms":(\d+)`).FindAllStringSubmatch(out, -1); len(m) < 2 {
		t.Errorf("log lacks the offsets:\n%s", out)
	} else if ms, _ := strconv.Atoi(m[len(m)-1][1]); !near(time.Duration(ms)*time.Millisecond, 7*time.Second) {
		t.Errorf("logged offset %dms, want 7000 ± 50", ms)
	}
	for _, want := range []string{"server clock is 7", "s behind NTP time: users' codes fail",
		"timedatectl set-ntp true", "chronyc makestep", "ntpdate -u pool.ntp.org", `"ntp_server":"` + srv.Addr()} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}

	srv.Set(sntptest.Behaviour{Silent: true})
	waitFor(t, "the failure", func() bool { return m.Status().LastErr != "" })
	waitFor(t, "the failure in the log", func() bool {
		return strings.Contains(logs.String(), "could not measure the offset from NTP")
	})
	if !strings.Contains(logs.String(), "UDP port 123") {
		t.Errorf("the failure's log lacks the hint:\n%s", logs.String())
	}
	stop()
	n := srv.Queries()
	time.Sleep(150 * time.Millisecond)
	if srv.Queries() != n {
		t.Error("the monitor kept measuring after stop")
	}
}

// Regression guard: a server that measured at start must not measure
// again the moment Serve starts the monitor.
func TestRunWaitsAfterRecentMeasurement(t *testing.T) {
	srv := sntptest.New(t, sntptest.Behaviour{})
	m := clock.NewMonitor(clock.Options{Servers: []string{srv.Addr()}, Interval: time.Hour})
	if _, err := m.Measure(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop := m.Start(context.Background())
	time.Sleep(200 * time.Millisecond)
	stop()
	if srv.Queries() != 1 {
		t.Errorf("%d queries, want only the first", srv.Queries())
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "less than 1ms off"},
		{400 * time.Microsecond, "less than 1ms off"},
		{12*time.Millisecond + 400*time.Microsecond, "12ms behind"},
		{-250 * time.Millisecond, "250ms ahead"},
		{7*time.Second + 3*time.Millisecond, "7s behind"},
		{-7*time.Second - 126*time.Millisecond, "7.13s ahead"},
		{3*time.Minute + 400*time.Millisecond, "3m0s behind"},
	}
	for _, tt := range tests {
		if got := clock.Describe(tt.d); got != tt.want {
			t.Errorf("Describe(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestFixNamesEveryPlatform(t *testing.T) {
	fix := clock.Fix()
	for _, want := range []string{"users' codes fail", "timedatectl set-ntp true", "systemd-timesyncd", "chronyc makestep",
		"chronyd", "ntpdate -u pool.ntp.org"} {
		if !strings.Contains(fix, want) {
			t.Errorf("Fix() lacks %q: %s", want, fix)
		}
	}
	if len(clock.FixSteps()) != 3 {
		t.Errorf("FixSteps: %v", clock.FixSteps())
	}
}
