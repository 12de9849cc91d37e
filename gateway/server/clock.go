package server

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/clock"
	"github.com/authgate/authgate/gateway/config"
)

// clockStartTimeout bounds the measurement at start: an unreachable NTP
// server delays the start by at most this.
const clockStartTimeout = 3 * time.Second

// newClockMonitor builds the server clock check from the time section;
// with no NTP servers it only reports "not configured".
func newClockMonitor(t config.Time, log zerolog.Logger, now func() time.Time) *clock.Monitor {
	return clock.NewMonitor(clock.Options{
		Servers:  t.NTPServers,
		Interval: t.CheckInterval,
		WarnOver: t.WarnOver,
		Now:      now,
		Logger:   log,
	})
}

// checkClockAtStart measures the clock once (when configured). A clock
// off by more than time.refuse_start_over (when set) is an error naming
// the offset and the fix; otherwise a clock that is off, or that cannot
// be measured, is logged loudly and the gateway starts anyway.
func checkClockAtStart(ctx context.Context, m *clock.Monitor, t config.Time, log zerolog.Logger) error {
	if !m.Configured() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, clockStartTimeout)
	defer cancel()
	res, err := m.Check(ctx) // logs the outcome
	if err != nil {
		return nil
	}
	off := res.Offset.Abs()
	if t.RefuseStartOver > 0 && off > t.RefuseStartOver {
		return fmt.Errorf("%w: it is %s NTP time (measured against %s), more than time.refuse_start_over (%v): %s",
			clock.ErrClockOff, clock.Describe(res.Offset), res.Server, t.RefuseStartOver, clock.Fix())
	}
	if off > m.WarnOver() {
		log.Warn().Int64("offset_ms", res.Offset.Round(time.Millisecond).Milliseconds()).
			Msg("starting anyway with a server clock that is off (time.refuse_start_over is not exceeded): fix the clock before users' codes fail")
	}
	return nil
}
