package clock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for Options.
const (
	DefaultInterval = 5 * time.Minute
	DefaultWarnOver = 5 * time.Second
	DefaultTimeout  = 2 * time.Second
)

// Options configure a Monitor.
type Options struct {
	// Servers are asked in order ("host" or "host:port", default port
	// 123); the first good answer wins. Empty: the check is off.
	Servers []string
	// Interval between measurements (default 5m).
	Interval time.Duration
	// WarnOver: an |offset| above this is a warning (default 5s).
	WarnOver time.Duration
	// Timeout for one server's answer (default 2s), further bounded by
	// the context's deadline.
	Timeout time.Duration
	// Now is the clock under test (default time.Now): the clock the
	// gateway checks codes with.
	Now func() time.Time
	// Dial opens the UDP connections (default a net.Dialer).
	Dial Dialer
	// Logger receives the measurements (default: none).
	Logger zerolog.Logger
}

// Status is what the Monitor knows now.
type Status struct {
	// Configured is false when no NTP server is configured.
	Configured bool
	Servers    []string
	WarnOver   time.Duration
	// Last is the last good measurement; Last.At is zero before the
	// first.
	Last Result
	// LastErr is the error of the last attempt, "" if it succeeded.
	LastErr string
	// LastAttempt is when the last measurement was tried.
	LastAttempt time.Time
	// Warning: the last good measurement is off by more than WarnOver.
	Warning bool
	// Fix is the fix when Warning (see Fix).
	Fix string
}

// Monitor measures the server clock's offset from NTP.
type Monitor struct {
	o   Options
	now func() time.Time
	log zerolog.Logger

	mu sync.Mutex
	st Status
}

// NewMonitor returns a Monitor; with no servers it only reports "not
// configured".
func NewMonitor(o Options) *Monitor {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.WarnOver <= 0 {
		o.WarnOver = DefaultWarnOver
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	o.Servers = slices.Clone(o.Servers)
	return &Monitor{
		o: o, now: o.Now, log: o.Logger,
		st: Status{Configured: len(o.Servers) > 0, Servers: o.Servers, WarnOver: o.WarnOver},
	}
}

// Configured reports whether there are servers to ask.
func (m *Monitor) Configured() bool { return len(m.o.Servers) > 0 }

// WarnOver is the warning threshold.
func (m *Monitor) WarnOver() time.Duration { return m.o.WarnOver }

// Status returns a copy of the current status.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	st.Servers = slices.Clone(st.Servers)
	return st
}

// Measure asks the servers in order and returns the first good answer,
// or ErrNoAnswer wrapping every server's error (ErrNotConfigured without
// servers). The outcome becomes the Status. Measure does not log.
func (m *Monitor) Measure(ctx context.Context) (Result, error) {
	if !m.Configured() {
		return Result{}, ErrNotConfigured
	}
	started := m.now()
	var errs serverErrors
	for _, s := range m.o.Servers {
		res, err := query(ctx, s, m.o.Timeout, m.now, m.o.Dial)
		if err == nil {
			m.record(started, res, nil)
			return res, nil
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			// Shutting down: not a finding about the clock.
			return Result{}, ctx.Err()
		}
		errs = append(errs, fmt.Errorf("%s: %w", s, err))
		if ctx.Err() != nil {
			break
		}
	}
	err := fmt.Errorf("%w: %w", ErrNoAnswer, errs)
	m.record(started, Result{}, err)
	return Result{}, err
}

func (m *Monitor) record(at time.Time, res Result, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.LastAttempt = at
	if err != nil {
		m.st.LastErr = err.Error()
		return
	}
	m.st.LastErr = ""
	m.st.Last = res
	m.st.Warning = res.Offset.Abs() > m.o.WarnOver
	m.st.Fix = ""
	if m.st.Warning {
		m.st.Fix = Fix()
	}
}

// Check measures and logs the outcome: a warning with the offset and the
// fix when the clock is off by more than WarnOver, info otherwise, and a
// warning when no server answered.
func (m *Monitor) Check(ctx context.Context) (Result, error) {
	res, err := m.Measure(ctx)
	switch {
	case errors.Is(err, ErrNotConfigured), errors.Is(err, context.Canceled):
	case err != nil:
		m.log.Warn().Err(err).Strs("ntp_servers", m.o.Servers).Str("fix", UnreachableHint).
			Msg("server clock: could not measure the offset from NTP")
	case res.Offset.Abs() > m.o.WarnOver:
		m.log.Warn().Int64("offset_ms", res.Offset.Round(time.Millisecond).Milliseconds()).Str("ntp_server", res.Server).
			Int64("rtt_ms", res.RTT.Milliseconds()).Dur("warn_over", m.o.WarnOver).Str("fix", Fix()).
			Msgf("server clock is %s NTP time: users' codes fail until it is fixed", Describe(res.Offset))
	default:
		m.log.Info().Int64("offset_ms", res.Offset.Round(time.Millisecond).Milliseconds()).Str("ntp_server", res.Server).
			Int64("rtt_ms", res.RTT.Milliseconds()).Msg("server clock checked against NTP")
	}
	return res, err
}

// Run checks the clock now (unless the last attempt is less than an
// Interval old) and then every Interval, until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	if !m.Configured() {
		return
	}
	wait := time.Duration(0)
	if last := m.Status().LastAttempt; !last.IsZero() {
		wait = min(max(m.o.Interval-m.now().Sub(last), 0), m.o.Interval)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, _ = m.Check(ctx)
		t.Reset(m.o.Interval)
	}
}

// Start runs Run in a goroutine; stop ends it and waits for it to
// return.
func (m *Monitor) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
