package proxy

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	// DefaultProbeInterval is StartProbes' interval when given none.
	DefaultProbeInterval = 30 * time.Second
	// ProbeTimeout bounds one probe of one route, fallback GET included.
	ProbeTimeout = 5 * time.Second
	// probeUserAgent lets upstream logs tell probes from users.
	probeUserAgent = "authgate-health-probe"
)

// StartProbes probes every route's upstream now and then every interval
// (DefaultProbeInterval if interval <= 0) until ctx ends, in a background
// goroutine. Each probe is a HEAD of the route's upstream path (the
// upstream's base path, or "/") on the upstream host, sent through the
// route's own transport so its TLS settings apply; an upstream answering
// HEAD with 405 or 501 gets a GET whose body is not read. A probe carries
// no identity headers or cookies, follows no redirects (a redirect to a
// login page is healthy) and gives up after ProbeTimeout. Its result
// updates the route's Last* fields, Healthy and LastCheck but not
// Requests or Errors. Routes are probed in parallel; a round finishes
// before the next starts.
//
// Call it once per Proxy, and end ctx before Close.
func (p *Proxy) StartProbes(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultProbeInterval
	}
	p.probes.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for ctx.Err() == nil {
			p.probeAll(ctx)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	})
}

// probeAll probes every route once, in parallel.
func (p *Proxy) probeAll(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range p.routes {
		wg.Go(func() { p.probe(ctx, &p.routes[i]) })
	}
	wg.Wait()
}

// probe probes one route and records the outcome, unless ctx ended
// meanwhile (shutdown is not an upstream failure).
func (p *Proxy) probe(ctx context.Context, rp *routeProxy) {
	pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	start := p.now()
	status, err := p.probeOnce(pctx, rp, http.MethodHead)
	if err == nil && (status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented) {
		start = p.now()
		status, err = p.probeOnce(pctx, rp, http.MethodGet)
	}
	if ctx.Err() != nil {
		return
	}
	now := p.now()
	rp.stats.observe(newObservation(now, now.Sub(start), status, err))
}

// probeOnce sends one probe request and returns the response status.
func (p *Proxy) probeOnce(ctx context.Context, rp *routeProxy, method string) (int, error) {
	up := rp.route.Upstream
	target := &url.URL{Scheme: up.Scheme, Host: up.Host, Path: up.Path}
	if target.Path == "" {
		target.Path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", probeUserAgent)
	res, err := rp.transport.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	// Only the headers matter; closing an unread body drops the
	// connection rather than downloading a page.
	_ = res.Body.Close()
	return res.StatusCode, nil
}
