package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fixedResult is the latency of one candidate at a fixed request rate.
type fixedResult struct {
	name                  string
	rate                  int
	sent                  int
	p50, p99, p999, worst time.Duration
	errors                int64
	maxLag                time.Duration // how late the generator itself sent
}

// fixedRate measures latency at -rate requests per second, below
// saturation. wrk keeps a fixed number of requests in flight instead, so
// this is an open-loop generator: request i is due at start + i/rate
// whatever happened to the earlier ones, and its latency counts from
// when it was due (no coordinated omission: a stall delays the
// measurement of every request scheduled during it).
func (b *bench) fixedRate(ctx context.Context, c *candidate) (fixedResult, error) {
	r := fixedResult{name: c.name, rate: b.o.rate}
	if err := verify(c, b.up.body); err != nil {
		return r, err
	}
	b.logf("%s: %d req/s for %v (open loop)", c.name, r.rate, b.o.extraDuration)
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1024, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// One second at the same rate opens the connections; not recorded.
	if _, _, _, err := b.openLoop(ctx, client, c, r.rate, time.Second); err != nil {
		return r, err
	}
	lat, errs, lag, err := b.openLoop(ctx, client, c, r.rate, b.o.extraDuration)
	if err != nil {
		return r, err
	}
	r.sent, r.errors, r.maxLag = len(lat), errs, lag
	slices.Sort(lat)
	r.p50, r.p99, r.p999 = percentile(lat, 50), percentile(lat, 99), percentile(lat, 99.9)
	r.worst = lat[len(lat)-1]
	return r, nil
}

// openLoop sends rate requests per second for d and returns every
// latency (failed requests count with their time too), the number of
// answers that were not the upstream's, and the generator's worst lag.
func (b *bench) openLoop(ctx context.Context, client *http.Client, c *candidate, rate int, d time.Duration) ([]time.Duration, int64, time.Duration, error) {
	n := int(d.Seconds() * float64(rate))
	if n < 1 {
		return nil, 0, 0, fmt.Errorf("-rate %d for %v sends nothing", rate, d)
	}
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	var wg sync.WaitGroup
	var lag time.Duration
	url := c.url("/")
	start := time.Now().Add(10 * time.Millisecond)
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		if ctx.Err() != nil {
			wg.Wait()
			return nil, 0, 0, ctx.Err()
		}
		lag = max(lag, time.Since(due))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !b.fetchOnce(ctx, client, url, c.cookie) {
				errs.Add(1)
			}
			lat[i] = time.Since(due)
		}()
	}
	wg.Wait()
	return lat, errs.Load(), lag, nil
}

// fetchOnce GETs url with the cookie and reports whether the answer was
// the upstream's.
func (b *bench) fetchOnce(ctx context.Context, client *http.Client, url, cookie string) bool {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return false
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	res, err := client.Do(req)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, int64(len(b.up.body))+1))
	return err == nil && res.StatusCode == http.StatusOK && bytes.Equal(body, b.up.body)
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
