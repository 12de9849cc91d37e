package clock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/beevik/ntp"
)

// Errors of a measurement. Measure wraps the errors of every server it
// tried in ErrNoAnswer; each server's error wraps one of the others.
var (
	ErrNotConfigured = errors.New("clock: no NTP servers configured")
	ErrNoAnswer      = errors.New("clock: no NTP server gave a usable answer")
	// ErrTimeout: the server did not answer in time (often outgoing UDP
	// port 123 is blocked).
	ErrTimeout = errors.New("no answer in time")
	// ErrKissOfDeath: the server answered with stratum 0, refusing to
	// serve this client (rate limit, access denied).
	ErrKissOfDeath = errors.New("kiss-of-death: the server refuses to serve this client")
	// ErrUnsynchronised: the server's own clock is not synchronised (leap
	// indicator 3), so its time proves nothing.
	ErrUnsynchronised = errors.New("the server's own clock is not synchronised")
	// ErrBadAnswer: the answer was malformed or not for our request
	// (wrong mode, originate timestamp not echoed, invalid times).
	ErrBadAnswer = errors.New("unusable answer")
	// ErrClockOff is wrapped by errors that refuse to start because the
	// clock is off by too much.
	ErrClockOff = errors.New("clock: the server clock is off")
)

// Result is one good measurement.
type Result struct {
	// Server is the NTP server that answered, as configured.
	Server string
	// Offset is NTP time minus this server's clock: positive means the
	// clock is behind (slow), negative that it is ahead.
	Offset time.Duration
	// RTT is the round-trip delay of the query.
	RTT time.Duration
	// At is when the measurement was taken (by the clock under test).
	At time.Time
}

// Dialer opens the UDP connection to an NTP server ("host:port").
type Dialer func(ctx context.Context, network, address string) (net.Conn, error)

// query asks one server once. now is the clock under test: it stamps the
// request's send and the answer's arrival, so the offset is the offset of
// that clock.
func query(ctx context.Context, server string, timeout time.Duration, now func() time.Time, dial Dialer) (Result, error) {
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left < timeout {
			timeout = left
		}
	}
	if timeout <= 0 {
		return Result{}, fmt.Errorf("%w (%w)", ErrTimeout, context.DeadlineExceeded)
	}
	var stop func() bool
	resp, err := ntp.QueryWithOptions(server, ntp.QueryOptions{
		Timeout:       timeout,
		GetSystemTime: now,
		Dialer: func(_, remote string) (net.Conn, error) {
			c, err := dial(ctx, "udp", remote)
			if err != nil {
				return nil, err
			}
			// A cancelled ctx ends the wait for the answer at once.
			stop = context.AfterFunc(ctx, func() { _ = c.Close() })
			return c, nil
		},
	})
	if stop != nil {
		stop()
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Result{}, fmt.Errorf("%w (%w)", ErrTimeout, ctx.Err())
		}
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return Result{}, fmt.Errorf("%w (%v)", ErrTimeout, timeout)
		}
		if isProtocolError(err) {
			return Result{}, fmt.Errorf("%w: %w", ErrBadAnswer, err)
		}
		return Result{}, err
	}
	switch {
	case resp.Stratum == 0:
		if resp.KissCode != "" {
			return Result{}, fmt.Errorf("%w (code %s)", ErrKissOfDeath, resp.KissCode)
		}
		return Result{}, ErrKissOfDeath
	case resp.Leap == ntp.LeapNotInSync:
		return Result{}, ErrUnsynchronised
	}
	if err := resp.Validate(); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	return Result{Server: server, Offset: resp.ClockOffset, RTT: resp.RTT, At: now()}, nil
}

// isProtocolError reports the parser's refusals of an answer.
func isProtocolError(err error) bool {
	for _, e := range []error{ntp.ErrInvalidMode, ntp.ErrServerResponseMismatch, ntp.ErrInvalidTransmitTime,
		ntp.ErrServerTickedBackwards, ntp.ErrInvalidTime} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// serverErrors is every server's error, in the order tried.
type serverErrors []error

func (e serverErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e serverErrors) Unwrap() []error { return e }

// Describe says in words how far off the clock is: "7.00s behind",
// "250ms ahead".
func Describe(offset time.Duration) string {
	d := offset.Abs()
	switch {
	case d >= time.Minute:
		d = d.Round(time.Second)
	case d >= time.Second:
		d = d.Round(10 * time.Millisecond)
	default:
		d = d.Round(time.Millisecond)
	}
	switch {
	case d == 0:
		return "less than 1ms off"
	case offset > 0:
		return d.String() + " behind"
	default:
		return d.String() + " ahead"
	}
}

// FixStep is one platform's way of turning on time synchronisation.
type FixStep struct {
	Platform string
	Command  string
}

// FixSteps lists the fixes for a server clock that is off, most common
// platform first.
func FixSteps() []FixStep {
	return []FixStep{
		{Platform: "systemd (systemd-timesyncd)", Command: "sudo timedatectl set-ntp true"},
		{Platform: "chrony", Command: "sudo systemctl enable --now chronyd && sudo chronyc makestep"},
		{Platform: "older systems (ntpdate)", Command: "sudo ntpdate -u pool.ntp.org"},
	}
}

// Fix is the fix for a server clock that is off, in one line for logs
// and the command line.
func Fix() string {
	var b strings.Builder
	b.WriteString("users' codes fail while the server clock is off; turn on time synchronisation: ")
	for i, s := range FixSteps() {
		if i > 0 {
			b.WriteString(", or ")
		}
		fmt.Fprintf(&b, "%s: `%s`", s.Platform, s.Command)
	}
	b.WriteString("; then check with `timedatectl status` or `chronyc tracking`")
	return b.String()
}

// UnreachableHint is the fix when no NTP server answers.
const UnreachableHint = "allow outgoing UDP port 123 to the NTP servers in time.ntp_servers, or list servers reachable from this host (e.g. your network's own NTP server)"

// NotConfiguredHint is the advice when no NTP server is configured.
const NotConfiguredHint = "set time.ntp_servers (e.g. [\"pool.ntp.org\"]) in the config file to check the server clock at start and every few minutes"
