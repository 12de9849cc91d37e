package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// probeLog records what a probed upstream received.
type probeLog struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (l *probeLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, r.Clone(context.Background()))
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *probeLog) all() []*http.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*http.Request(nil), l.reqs...)
}

func TestProbes(t *testing.T) {
	var logs probeLog
	var status atomic.Int32
	status.Store(http.StatusOK)
	toggling := newUpstream(t, logs.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	})))
	noHead := newUpstream(t, logs.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		_, _ = io.WriteString(w, strings.Repeat("page ", 1<<16)) // never read by the probe
	})))
	tlsUp := newTLSUpstream(t, logs.wrap(statusHandler(http.StatusFound)))
	ca := writeCA(t, tlsUp)

	// Baseline after the upstreams' own goroutines exist.
	baseline := runtime.NumGoroutine()

	p := mustNew(t, Options{
		Routes: []Route{
			{Name: "toggling", Upstream: mustURL(t, toggling.URL+"/base"), PathPrefix: "/app", PreserveHost: true},
			{Name: "nohead", PathPrefix: "/nohead", Upstream: mustURL(t, noHead.URL)},
			{Name: "tls", PathPrefix: "/tls", Upstream: mustURL(t, tlsUp.URL), CAFile: ca},
			{Name: "tls-untrusted", PathPrefix: "/tls2", Upstream: mustURL(t, tlsUp.URL)},
			{Name: "dead", PathPrefix: "/dead", Upstream: mustURL(t, "http://"+deadAddr(t))},
		},
		StripCookies: []string{"authgate_session"},
	})
	for _, h := range p.Health() {
		if h.Observed {
			t.Fatalf("observed before probing: %+v", h)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := time.Now()
	p.StartProbes(ctx, 20*time.Millisecond)
	waitFor(t, 5*time.Second, "every route probed", func() bool {
		for _, h := range p.Health() {
			if !h.Observed {
				return false
			}
		}
		return true
	})

	want := map[string]struct {
		healthy bool
		status  int
		err     string
	}{
		"toggling":      {true, 200, ""},
		"nohead":        {true, 200, ""},
		"tls":           {true, 302, ""},
		"tls-untrusted": {false, 0, "TLS: certificate signed by unknown authority"},
		"dead":          {false, 0, "connection refused"},
	}
	health := p.Health()
	for i, h := range health {
		if h.Name != p.Routes()[i].Name {
			t.Fatalf("Health()[%d] = %q; want route order", i, h.Name)
		}
		w := want[h.Name]
		if h.Healthy != w.healthy || h.LastStatus != w.status || h.LastError != w.err {
			t.Errorf("%s: %+v; want healthy=%v status=%d error=%q", h.Name, h, w.healthy, w.status, w.err)
		}
		if h.Requests != 0 || h.Errors != 0 {
			t.Errorf("%s: probes counted as proxied requests: %d/%d", h.Name, h.Requests, h.Errors)
		}
		if h.LastCheck.Before(before) || (h.Healthy && h.LastLatency <= 0) {
			t.Errorf("%s: LastCheck %v latency %v", h.Name, h.LastCheck, h.LastLatency)
		}
	}

	// What the upstreams saw: the upstream host, the route's upstream
	// path, HEAD (GET after a 405), and nothing about any user.
	upHost := mustURL(t, toggling.URL).Host
	sawGET := false
	for _, r := range logs.all() {
		if ua := r.Header.Get("User-Agent"); ua != probeUserAgent {
			t.Errorf("User-Agent %q", ua)
		}
		for k := range r.Header {
			if _, identity := p.strip[normalizeHeaderName(k)]; identity || strings.EqualFold(k, "Cookie") || strings.HasPrefix(k, "X-Forwarded") {
				t.Errorf("probe sent %s", k)
			}
		}
		switch r.Method {
		case http.MethodHead:
		case http.MethodGet:
			sawGET = true
			if r.Host != mustURL(t, noHead.URL).Host {
				t.Errorf("GET probe to %s; only the HEAD-refusing upstream gets one", r.Host)
			}
		default:
			t.Errorf("probe method %s", r.Method)
		}
		if r.Host == upHost && r.URL.Path != "/base" {
			t.Errorf("probe path %q; want the upstream base path", r.URL.Path)
		}
		if r.Host != upHost && r.URL.Path != "/" {
			t.Errorf("probe path %q; want /", r.URL.Path)
		}
	}
	if !sawGET {
		t.Error("no GET fallback after 405")
	}

	// Health follows the upstream without any proxied traffic.
	status.Store(http.StatusServiceUnavailable)
	waitFor(t, 5*time.Second, "probe to see the 503", func() bool {
		return healthOf(t, p, "toggling").LastStatus == 503
	})
	if h := healthOf(t, p, "toggling"); h.Healthy || h.LastError != "HTTP 503" || h.Errors != 0 {
		t.Fatalf("after 503: %+v", h)
	}
	status.Store(http.StatusOK)
	waitFor(t, 5*time.Second, "probe to see recovery", func() bool {
		return healthOf(t, p, "toggling").Healthy
	})

	// Cancel: the loop ends, no more probes, no goroutines left.
	cancel()
	done := make(chan struct{})
	go func() { p.probes.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("probe loop still running after cancel")
	}
	// A probe sent just before cancel may still reach its handler; let
	// those land, then expect silence over five intervals.
	time.Sleep(50 * time.Millisecond)
	n := len(logs.all())
	time.Sleep(100 * time.Millisecond)
	if got := len(logs.all()); got != n {
		t.Fatalf("%d probes after cancel", got-n)
	}
	p.Close()
	waitFor(t, 5*time.Second, fmt.Sprintf("goroutines back to %d", baseline), func() bool {
		return runtime.NumGoroutine() <= baseline
	})
}

// A context that has already ended starts no probe.
func TestProbesCancelledContext(t *testing.T) {
	var hits atomic.Int32
	up := newUpstream(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	p := mustNew(t, Options{Routes: []Route{{Name: "r", Upstream: mustURL(t, up.URL)}}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.StartProbes(ctx, 0)
	p.probes.Wait()
	if hits.Load() != 0 || healthOf(t, p, "r").Observed {
		t.Fatalf("probed with a cancelled context: %d hits", hits.Load())
	}
}

// A probe stuck on a silent upstream gives up after ProbeTimeout; ending
// the context cuts it short and records nothing.
func TestProbeCancelMidRequest(t *testing.T) {
	arrived := make(chan struct{}, 1)
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	p := mustNew(t, Options{Routes: []Route{{Name: "r", Upstream: mustURL(t, up.URL)}}})
	ctx, cancel := context.WithCancel(context.Background())
	p.StartProbes(ctx, time.Hour)
	<-arrived
	cancel()
	p.probes.Wait()
	if h := healthOf(t, p, "r"); h.Observed {
		t.Fatalf("shutdown recorded as an observation: %+v", h)
	}
}
