package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Proxied requests are counted over HealthWindow in buckets of
// healthBucket.
const (
	HealthWindow  = 5 * time.Minute
	healthBucket  = 10 * time.Second
	healthBuckets = int(HealthWindow / healthBucket)
)

// RouteHealth is what was measured of one route's upstream: the last
// active probe (see StartProbes), the last proxied request and the
// proxied requests of the last HealthWindow by outcome. It holds no
// verdict: a 404 or a 400 may be exactly what a panel answers at its
// root, and only the operator knows what the panel should answer.
type RouteHealth struct {
	Name string
	// Probe is the last probe's result; Probe.At is zero before the
	// first one.
	Probe Result
	// LastRequest is the result of the last proxied request the
	// upstream answered or failed (not one whose client left first);
	// LastRequest.At is zero before the first one.
	LastRequest Result
	// Window counts the proxied requests of the last HealthWindow.
	// Probes are not counted.
	Window Counts
}

// Result is the outcome of one request to an upstream.
type Result struct {
	// At is when it ended (response headers or failure); zero: none.
	At time.Time
	// Latency is the time from sending the request to the response
	// headers (or to the failure).
	Latency time.Duration
	// Status is the upstream's status code; 0 after a transport error.
	Status int
	// Error describes a transport error (no response at all), short and
	// free of addresses and secrets, e.g. "connection refused",
	// "timeout" or "TLS: certificate signed by unknown authority"; empty
	// when the upstream answered, whatever the status.
	Error string
}

// Counts are proxied requests by outcome. Requests is the sum of the
// others.
type Counts struct {
	Requests int
	// Status1xx to Status5xx count responses by status class (1xx is a
	// protocol switch: WebSockets).
	Status1xx, Status2xx, Status3xx, Status4xx, Status5xx int
	// TransportErrors are requests the upstream did not answer: refused,
	// timed out, TLS failure, connection closed.
	TransportErrors int
	// ClientGone are requests whose client left before the upstream
	// answered; they say nothing about the upstream.
	ClientGone int
}

func (c *Counts) add(o Counts) {
	c.Requests += o.Requests
	c.Status1xx += o.Status1xx
	c.Status2xx += o.Status2xx
	c.Status3xx += o.Status3xx
	c.Status4xx += o.Status4xx
	c.Status5xx += o.Status5xx
	c.TransportErrors += o.TransportErrors
	c.ClientGone += o.ClientGone
}

// countStatus is one request answered with status.
func countStatus(status int) Counts {
	c := Counts{Requests: 1}
	switch {
	case status < 200:
		c.Status1xx = 1
	case status < 300:
		c.Status2xx = 1
	case status < 400:
		c.Status3xx = 1
	case status < 500:
		c.Status4xx = 1
	default:
		c.Status5xx = 1
	}
	return c
}

// bucket holds the counts of one healthBucket-long slot.
type bucket struct {
	slot   int64 // the slot these counts belong to
	counts Counts
}

// routeStats is one route's health record. One mutex guards it all: it
// is held for a few additions per proxied request.
type routeStats struct {
	mu          sync.Mutex
	buckets     [healthBuckets]bucket // a ring: slot s lives at s % healthBuckets
	lastProbe   Result
	lastRequest Result
}

// countRequest adds c to slot's bucket, first emptying the bucket if it
// still holds an older slot's counts, and keeps last (unless nil) as the
// last request.
func (s *routeStats) countRequest(slot int64, c Counts, last *Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.buckets[slot%int64(healthBuckets)]
	if b.slot != slot {
		*b = bucket{slot: slot}
	}
	b.counts.add(c)
	if last != nil {
		keepLatest(&s.lastRequest, *last)
	}
}

// probed keeps r as the last probe.
func (s *routeStats) probed(r Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keepLatest(&s.lastProbe, r)
}

// keepLatest stores r in *last unless *last ended later (a slow request
// finishing after a newer one does not replace it).
func keepLatest(last *Result, r Result) {
	if !last.At.After(r.At) {
		*last = r
	}
}

// health is the record as of slot: the last results and the counts of
// the healthBuckets slots ending with slot. Buckets from later slots (an
// injected clock that went back) are left out.
func (s *routeStats) health(slot int64) (probe, request Result, window Counts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.buckets {
		if age := slot - b.slot; age >= 0 && age < int64(healthBuckets) {
			window.add(b.counts)
		}
	}
	return s.lastProbe, s.lastRequest, window
}

// newResult describes a response status (err nil) or a transport error.
func newResult(at time.Time, latency time.Duration, status int, err error) Result {
	if err != nil {
		return Result{At: at, Latency: latency, Error: describeError(err)}
	}
	return Result{At: at, Latency: latency, Status: status}
}

// slot is the index of t's bucket-long slot since the Proxy was built.
// Durations from the injected clock keep Go's monotonic reading, so wall
// clock jumps do not move requests between buckets. (An unused bucket
// reads as slot 0 with nothing counted, so it adds nothing.)
func (p *Proxy) slot(t time.Time) int64 {
	d := t.Sub(p.start)
	if d < 0 {
		d = 0
	}
	return int64(d / healthBucket)
}

// Health returns every route's health, in route order.
func (p *Proxy) Health() []RouteHealth {
	slot := p.slot(p.now())
	out := make([]RouteHealth, len(p.routes))
	for i := range p.routes {
		rp := &p.routes[i]
		h := RouteHealth{Name: rp.route.Name}
		h.Probe, h.LastRequest, h.Window = rp.stats.health(slot)
		out[i] = h
	}
	return out
}

// recordResponse records the upstream's response headers for a proxied
// request. It runs in ModifyResponse, once per request.
func (p *Proxy) recordResponse(rp *routeProxy, res *http.Response) {
	if res.Request == nil {
		return
	}
	st, _ := res.Request.Context().Value(forwardKey{}).(*forwardState)
	if st == nil || st.recorded {
		return
	}
	st.recorded = true
	now := p.now()
	last := newResult(now, now.Sub(st.start), res.StatusCode, nil)
	rp.stats.countRequest(p.slot(now), countStatus(res.StatusCode), &last)
}

// recordFailure records a proxied request that got no usable response.
// A request whose client went away first is counted but is not held
// against the upstream.
func (p *Proxy) recordFailure(rp *routeProxy, st *forwardState, err error) {
	if st.recorded {
		return // the response was recorded; this failure came later
	}
	st.recorded = true
	now := p.now()
	if st.in.Context().Err() != nil {
		rp.stats.countRequest(p.slot(now), Counts{Requests: 1, ClientGone: 1}, nil)
		return
	}
	last := newResult(now, now.Sub(st.start), 0, err)
	rp.stats.countRequest(p.slot(now), Counts{Requests: 1, TransportErrors: 1}, &last)
}

// describeError turns a transport error into a short text for operators:
// no URLs, addresses, certificate contents or upstream bytes beyond a
// short excerpt.
func describeError(err error) string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		recordErr tls.RecordHeaderError
		dnsErr    *net.DNSError
		opErr     *net.OpError
		netErr    net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &unknownCA):
		return "TLS: certificate signed by unknown authority"
	case errors.As(err, &hostErr):
		return "TLS: certificate is not valid for " + clip(hostErr.Host, 64)
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "TLS: certificate expired or not yet valid"
		}
		return "TLS: invalid certificate"
	case errors.As(err, &recordErr):
		return "TLS: upstream did not answer with TLS"
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert from the upstream, e.g. "tls: bad certificate".
		return "TLS: remote error: " + clip(strings.TrimPrefix(opErr.Err.Error(), "tls: "), 64)
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return "DNS: no such host"
		case dnsErr.IsTimeout:
			return "DNS: timeout"
		}
		return "DNS: lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by upstream"
	case errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by upstream"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, syscall.ETIMEDOUT), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	}
	// Unknown: the innermost cause, which for transport errors carries no
	// URL or address (those live in the wrapping url.Error / net.OpError).
	inner := err
	for u := errors.Unwrap(inner); u != nil; u = errors.Unwrap(inner) {
		inner = u
	}
	return clip(inner.Error(), 80)
}

// clip makes s printable on one line and at most n bytes long.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
