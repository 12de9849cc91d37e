package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
)

// Passive counts cover HealthWindow in buckets of healthBucket.
const (
	HealthWindow  = 5 * time.Minute
	healthBucket  = 10 * time.Second
	healthBuckets = int(HealthWindow / healthBucket)
)

// RouteHealth is the live health of one route's upstream, as seen by
// proxied requests (passive) and probes (active, see StartProbes).
type RouteHealth struct {
	Name string
	// Healthy: the last observation succeeded (a response with status
	// < 500, no transport error).
	Healthy bool
	// LastStatus is the last upstream status code; 0 after a transport
	// error.
	LastStatus int
	// LastLatency is the time from sending the request to the response
	// headers (or to the failure).
	LastLatency time.Duration
	// LastError is short and free of addresses and secrets, e.g.
	// "connection refused", "timeout", "TLS: certificate signed by
	// unknown authority" or "HTTP 502"; empty when Healthy.
	LastError string
	// LastCheck is when the last observation ended.
	LastCheck time.Time
	// Requests and Errors count proxied requests and their failures
	// (transport errors and 5xx from the upstream) over the last
	// HealthWindow. Probes are not counted; requests the client abandoned
	// before the upstream answered count as requests, not errors.
	Requests, Errors int
	// Observed is false until the first proxied request or probe.
	Observed bool
}

// observation is one outcome, immutable once published.
type observation struct {
	at      time.Time
	latency time.Duration
	status  int
	errText string
}

func (o *observation) healthy() bool { return o.errText == "" }

// newObservation describes a response status (err nil) or a failure.
func newObservation(at time.Time, latency time.Duration, status int, err error) *observation {
	o := &observation{at: at, latency: latency, status: status}
	switch {
	case err != nil:
		o.status = 0
		o.errText = describeError(err)
	case status >= http.StatusInternalServerError:
		o.errText = fmt.Sprintf("HTTP %d", status)
	}
	return o
}

// Each bucket is one atomic word: the low epochBits hold the bucket's
// epoch (its 10-second slot counted from Proxy start, modulo 2^24, about
// 5 years), then countBits of requests and countBits of errors. Updates
// are a compare-and-swap loop, so Forward never takes a lock and a count
// is never lost when a bucket is recycled. Counts saturate at 2^20-1 per
// 10 seconds (100k requests a second).
const (
	epochBits = 24
	countBits = 20
	epochMask = 1<<epochBits - 1
	countMax  = 1<<countBits - 1
)

func packBucket(epoch, requests, errs uint64) uint64 {
	return epoch&epochMask | requests<<epochBits | errs<<(epochBits+countBits)
}

func unpackBucket(v uint64) (epoch, requests, errs uint64) {
	return v & epochMask, v >> epochBits & countMax, v >> (epochBits + countBits) & countMax
}

// routeStats is one route's health record, safe for concurrent use.
type routeStats struct {
	buckets [healthBuckets]atomic.Uint64
	last    atomic.Pointer[observation]
}

// count adds one proxied request (and an error if failed) to epoch's
// bucket, resetting the bucket if it still holds an older epoch.
func (s *routeStats) count(epoch uint64, failed bool) {
	b := &s.buckets[epoch%uint64(healthBuckets)]
	e := epoch & epochMask
	for {
		old := b.Load()
		oe, req, errs := unpackBucket(old)
		if oe != e {
			req, errs = 0, 0
		}
		if req < countMax {
			req++
		}
		if failed && errs < countMax {
			errs++
		}
		if b.CompareAndSwap(old, packBucket(e, req, errs)) {
			return
		}
	}
}

// totals sums the buckets whose epoch lies in the window ending at epoch.
// Buckets from the future (a clock that went back) are ignored.
func (s *routeStats) totals(epoch uint64) (requests, errs int) {
	for i := range s.buckets {
		be, r, e := unpackBucket(s.buckets[i].Load())
		if (epoch-be)&epochMask < uint64(healthBuckets) {
			requests += int(r)
			errs += int(e)
		}
	}
	return requests, errs
}

// observe publishes o unless a later observation is already there.
func (s *routeStats) observe(o *observation) {
	for {
		old := s.last.Load()
		if old != nil && old.at.After(o.at) {
			return
		}
		if s.last.CompareAndSwap(old, o) {
			return
		}
	}
}

// epoch is the index of t's 10-second bucket since the Proxy was built.
// Durations from the injected clock keep Go's monotonic reading, so wall
// clock jumps do not move requests between buckets.
func (p *Proxy) epoch(t time.Time) uint64 {
	d := t.Sub(p.start)
	if d < 0 {
		d = 0
	}
	return uint64(d / healthBucket)
}

// Health returns every route's health, in route order.
func (p *Proxy) Health() []RouteHealth {
	now := p.now()
	ep := p.epoch(now)
	out := make([]RouteHealth, len(p.routes))
	for i := range p.routes {
		rp := &p.routes[i]
		h := RouteHealth{Name: rp.route.Name}
		h.Requests, h.Errors = rp.stats.totals(ep)
		if o := rp.stats.last.Load(); o != nil {
			h.Observed = true
			h.Healthy = o.healthy()
			h.LastStatus = o.status
			h.LastLatency = o.latency
			h.LastError = o.errText
			h.LastCheck = o.at
		}
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
	o := newObservation(now, now.Sub(st.start), res.StatusCode, nil)
	rp.stats.count(p.epoch(now), !o.healthy())
	rp.stats.observe(o)
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
		rp.stats.count(p.epoch(now), false)
		return
	}
	rp.stats.count(p.epoch(now), true)
	rp.stats.observe(newObservation(now, now.Sub(st.start), 0, err))
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
