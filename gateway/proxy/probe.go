package proxy

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	// DefaultProbeInterval is StartProbes' interval when given none.
	DefaultProbeInterval = 30 * time.Second
	// ProbeTimeout bounds one probe of one route, body read included.
	ProbeTimeout = 5 * time.Second
	// probeUserAgent lets upstream logs tell probes from users.
	probeUserAgent = "authgate-health-probe"
	// probeReadLimit is how much of the answer's body a probe reads
	// before it closes the connection: a small page is read whole, so
	// the upstream sees an ordinary close rather than a reset.
	probeReadLimit = 4 << 10
)

// StartProbes probes every route's upstream now and then every interval
// (DefaultProbeInterval if interval <= 0) until ctx ends, in a background
// goroutine. Each probe is a GET of the route's upstream path (the
// upstream's base path, or "/") on the upstream host. Its result is the
// route's Probe in Health: the status, or the transport error, and the
// latency to the response headers; proxied request counts are left alone.
// A probe carries no identity headers or cookies, follows no redirects
// and gives up after ProbeTimeout. Routes are probed in parallel; a round
// finishes before the next starts.
//
// Why GET, on connections of its own. A probe should see what a browser
// sees, and panels answer HEAD differently (400 where every GET gets 404)
// or wrongly: Cockpit and Netdata send a body after their HEAD response
// headers. On a pooled keep-alive connection that body arrives while the
// connection sits idle, and net/http writes "Unsolicited response
// received on idle HTTP channel" to the standard logger, once per probe.
// So a probe sends GET, reads at most probeReadLimit bytes of the body
// and closes the connection: it goes through a clone of the route's
// transport (same TLS trust, server name and timeouts) with keep-alives
// disabled, so no probe connection is ever pooled, whatever the upstream
// sends after its answer, and proxied requests never reuse a connection
// a probe left in an unknown state. One connection per route per
// interval is the whole cost.
//
// Call it once per Proxy, and end ctx before Close.
func (p *Proxy) StartProbes(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultProbeInterval
	}
	transports := make([]*http.Transport, len(p.routes))
	for i := range p.routes {
		transports[i] = probeTransport(p.routes[i].transport)
	}
	p.probes.Go(func() {
		defer func() {
			for _, t := range transports {
				t.CloseIdleConnections() // none are kept; belt and braces
			}
		}()
		t := time.NewTicker(interval)
		defer t.Stop()
		for ctx.Err() == nil {
			p.probeAll(ctx, transports)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	})
}

// probeTransport is route's transport without keep-alives.
func probeTransport(route *http.Transport) *http.Transport {
	t := route.Clone()
	t.DisableKeepAlives = true
	return t
}

// probeAll probes every route once, in parallel.
func (p *Proxy) probeAll(ctx context.Context, transports []*http.Transport) {
	var wg sync.WaitGroup
	for i := range p.routes {
		wg.Go(func() { p.probe(ctx, &p.routes[i], transports[i]) })
	}
	wg.Wait()
}

// probe probes one route and records the outcome, unless ctx ended
// meanwhile (shutdown is not an upstream failure). The latency is the
// time to the response headers; the body is read after, up to
// probeReadLimit, and its errors are ignored.
func (p *Proxy) probe(ctx context.Context, rp *routeProxy, t http.RoundTripper) {
	pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	start := p.now()
	res, err := sendProbe(pctx, &rp.route, t)
	end := p.now()
	status := 0
	if err == nil {
		status = res.StatusCode
		_, _ = io.CopyN(io.Discard, res.Body, probeReadLimit)
		_ = res.Body.Close()
	}
	if ctx.Err() != nil {
		return
	}
	rp.stats.probed(newResult(end, end.Sub(start), status, err))
}

// sendProbe sends one probe and returns the response, body unread.
func sendProbe(ctx context.Context, r *Route, t http.RoundTripper) (*http.Response, error) {
	target := &url.URL{Scheme: r.Upstream.Scheme, Host: r.Upstream.Host, Path: r.Upstream.Path}
	if target.Path == "" {
		target.Path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", probeUserAgent)
	return t.RoundTrip(req)
}
