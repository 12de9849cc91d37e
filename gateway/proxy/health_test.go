package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/testkit"
)

// newFakeClock is an injected clock the test moves by hand.
func newFakeClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func newTLSUpstream(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.EnableHTTP2 = true
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func statusHandler(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
	})
}

func healthOf(t *testing.T, p *Proxy, name string) RouteHealth {
	t.Helper()
	for _, h := range p.Health() {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no health for route %q", name)
	return RouteHealth{}
}

// Passive health: one proxied request per case, through a real gateway
// to a real upstream (or a real failure to reach one). What is recorded
// is the measurement (status or transport error, counted by class), not
// a verdict on it.
func TestHealthPassive(t *testing.T) {
	tlsUp := newTLSUpstream(t, statusHandler(http.StatusOK))
	ca := writeCA(t, tlsUp)
	plain := newUpstream(t, statusHandler(http.StatusOK))
	hang := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	s2, s3, s4, s5 := Counts{Requests: 1, Status2xx: 1}, Counts{Requests: 1, Status3xx: 1},
		Counts{Requests: 1, Status4xx: 1}, Counts{Requests: 1, Status5xx: 1}
	te := Counts{Requests: 1, TransportErrors: 1}

	tests := []struct {
		name    string
		route   Route
		opts    Options
		status  int // what the client gets
		last    int
		lastErr string
		counts  Counts
	}{
		{name: "200", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(200)).URL)},
			status: 200, last: 200, counts: s2},
		{name: "redirect", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(302)).URL)},
			status: 302, last: 302, counts: s3},
		{name: "404", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(404)).URL)},
			status: 404, last: 404, counts: s4},
		{name: "400", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(400)).URL)},
			status: 400, last: 400, counts: s4},
		{name: "503", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(503)).URL)},
			status: 503, last: 503, counts: s5},
		{name: "500", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(500)).URL)},
			status: 500, last: 500, counts: s5},
		{name: "dead", route: Route{Upstream: mustURL(t, "http://"+deadAddr(t))},
			status: 502, lastErr: "connection refused", counts: te},
		{name: "tls untrusted", route: Route{Upstream: mustURL(t, tlsUp.URL)},
			status: 502, lastErr: "TLS: certificate signed by unknown authority", counts: te},
		{name: "tls wrong name", route: Route{Upstream: mustURL(t, tlsUp.URL), CAFile: ca, ServerName: "wrong.example"},
			status: 502, lastErr: "TLS: certificate is not valid for wrong.example", counts: te},
		{name: "tls trusted", route: Route{Upstream: mustURL(t, tlsUp.URL), CAFile: ca},
			status: 200, last: 200, counts: s2},
		{name: "https to plain", route: Route{Upstream: mustURL(t, strings.Replace(plain.URL, "http:", "https:", 1))},
			status: 502, lastErr: "TLS: upstream did not answer with TLS", counts: te},
		{name: "header timeout", route: Route{Upstream: mustURL(t, hang.URL)},
			opts:   Options{ResponseHeaderTimeout: 50 * time.Millisecond},
			status: 502, lastErr: "timeout", counts: te},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			tt.route.Name = "r"
			o.Routes = []Route{tt.route}
			g := newGateway(t, o)
			if h := healthOf(t, g.p, "r"); h != (RouteHealth{Name: "r"}) {
				t.Fatalf("before any request: %+v", h)
			}
			before := time.Now()
			res := g.do(t, http.MethodGet, "/x", nil)
			_, _ = io.Copy(io.Discard, res.Body)
			after := time.Now()
			if res.StatusCode != tt.status {
				t.Fatalf("client status %d; want %d", res.StatusCode, tt.status)
			}
			h := healthOf(t, g.p, "r")
			if l := h.LastRequest; l.Status != tt.last || l.Error != tt.lastErr {
				t.Fatalf("last request %+v; want status=%d error=%q", l, tt.last, tt.lastErr)
			}
			if h.Window != tt.counts {
				t.Fatalf("counts %+v; want %+v", h.Window, tt.counts)
			}
			if l := h.LastRequest; l.Latency <= 0 || l.Latency > after.Sub(before) {
				t.Fatalf("latency %v outside (0, %v]", l.Latency, after.Sub(before))
			}
			if at := h.LastRequest.At; at.Before(before) || at.After(after) {
				t.Fatalf("At %v outside [%v, %v]", at, before, after)
			}
			if h.Probe != (Result{}) {
				t.Fatalf("a proxied request recorded as a probe: %+v", h.Probe)
			}
		})
	}
}

// Regression: a panel whose HEAD probe got 400 while every real request
// got 404 was shown as "healthy". Health now reports what was measured:
// the probe's status and the real requests by status class, with the
// last real status; nothing in it says "healthy".
func TestHealthReportsMeasurements(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodHead:
			w.WriteHeader(http.StatusBadRequest)
		case r.URL.Path == "/":
			w.WriteHeader(http.StatusNotFound) // the panel's root, as probed
		case r.URL.Path == "/ok":
		default:
			http.NotFound(w, r)
		}
	}))
	g := newGateway(t, Options{Routes: []Route{{Name: "r", Upstream: mustURL(t, up.URL)}}})
	for _, path := range []string{"/ok", "/a", "/b", "/c"} {
		res := g.do(t, http.MethodGet, path, nil)
		_, _ = io.Copy(io.Discard, res.Body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.p.StartProbes(ctx, time.Hour)
	waitFor(t, 5*time.Second, "the probe", func() bool { return !healthOf(t, g.p, "r").Probe.At.IsZero() })
	cancel()
	g.p.probes.Wait()

	h := healthOf(t, g.p, "r")
	if h.Probe.Status != http.StatusNotFound || h.Probe.Error != "" || h.Probe.Latency <= 0 {
		t.Errorf("probe %+v; want the 404 a GET of / gets", h.Probe)
	}
	if h.LastRequest.Status != http.StatusNotFound {
		t.Errorf("last request %+v; want 404", h.LastRequest)
	}
	if want := (Counts{Requests: 4, Status2xx: 1, Status4xx: 3}); h.Window != want {
		t.Errorf("counts %+v; want %+v", h.Window, want)
	}
}

// Counts cover the last five minutes in 10-second buckets; the last
// results stay. Latency and At come from the injected clock.
func TestHealthCountsAgeOut(t *testing.T) {
	clock := newFakeClock()
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/slow":
			clock.Advance(250 * time.Millisecond)
		}
	}))
	g := newGateway(t, Options{Routes: []Route{
		{Name: "r", Upstream: mustURL(t, up.URL)},
		{Name: "idle", PathPrefix: "/idle", Upstream: mustURL(t, up.URL)},
	}, Now: clock.Now})
	get := func(path string) {
		res := g.do(t, http.MethodGet, path, nil)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	t0 := clock.Now()
	for _, path := range []string{"/ok", "/fail", "/ok", "/fail", "/slow"} {
		get(path)
	}
	want := Result{At: t0.Add(250 * time.Millisecond), Latency: 250 * time.Millisecond, Status: 200}
	if h := healthOf(t, g.p, "r"); h.LastRequest != want {
		t.Fatalf("after /slow: %+v; want %+v", h.LastRequest, want)
	}
	clock.Advance(2 * time.Minute) // t0+2m00.25
	get("/fail")

	steps := []struct {
		at       time.Duration // since t0
		ok, errs int
	}{
		{2*time.Minute + time.Second, 3, 3},
		{4*time.Minute + 59*time.Second, 3, 3}, // t0's bucket is 290-300 s old
		{5 * time.Minute, 0, 1},                // t0's bucket has aged out
		{6*time.Minute + 59*time.Second, 0, 1},
		{7 * time.Minute, 0, 0}, // so has t0+2m's
		{20 * time.Minute, 0, 0},
	}
	for _, s := range steps {
		clock.Advance(t0.Add(s.at).Sub(clock.Now()))
		h := healthOf(t, g.p, "r")
		if want := (Counts{Requests: s.ok + s.errs, Status2xx: s.ok, Status5xx: s.errs}); h.Window != want {
			t.Fatalf("at t0+%v: counts %+v; want %+v", s.at, h.Window, want)
		}
		if h.LastRequest.Status != 500 || !h.LastRequest.At.Equal(t0.Add(2*time.Minute+250*time.Millisecond)) {
			t.Fatalf("at t0+%v: last request lost: %+v", s.at, h.LastRequest)
		}
	}
	if h := healthOf(t, g.p, "idle"); h != (RouteHealth{Name: "idle"}) {
		t.Fatalf("idle route: %+v", h)
	}
	// A bucket slot reused 30 buckets later starts from zero.
	get("/ok")
	if h := healthOf(t, g.p, "r"); h.Window != (Counts{Requests: 1, Status2xx: 1}) || h.LastRequest.Status != 200 {
		t.Fatalf("after reuse: %+v", h)
	}
}

// The ring on its own: a bucket reused for a later slot starts from
// zero, and buckets from a later slot than the one asked about (an
// injected clock that went back) are left out.
func TestHealthRing(t *testing.T) {
	var s routeStats
	window := func(slot int64) Counts {
		_, _, c := s.health(slot)
		return c
	}
	one := Counts{Requests: 1, Status2xx: 1}
	s.countRequest(3, one, nil)
	s.countRequest(3, one, nil)
	s.countRequest(3+int64(healthBuckets), one, nil) // same bucket, next lap
	if got := window(3 + int64(healthBuckets)); got != one {
		t.Fatalf("reused bucket: %+v; want %+v", got, one)
	}
	s.countRequest(10, Counts{Requests: 1, TransportErrors: 1}, nil)
	if got := window(5); got != (Counts{}) {
		t.Fatalf("window ending before every bucket: %+v", got)
	}
	if got := window(10 + int64(healthBuckets) - 1); got != (Counts{Requests: 2, Status2xx: 1, TransportErrors: 1}) {
		t.Fatalf("window: %+v", got)
	}
}

// A client that gives up before the upstream answers is counted as a
// request whose client left, not as an upstream failure, and leaves the
// last request as it was.
func TestHealthClientGoneIsNotUpstreamError(t *testing.T) {
	arrived := make(chan struct{})
	var once sync.Once
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(arrived) })
		<-r.Context().Done()
	}))
	p := mustNew(t, Options{Routes: []Route{{Name: "r", Upstream: mustURL(t, up.URL)}}})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	p.Forward(httptest.NewRecorder(), req, &p.Routes()[0], nil)
	h := healthOf(t, p, "r")
	if h.Window != (Counts{Requests: 1, ClientGone: 1}) || !h.LastRequest.At.IsZero() {
		t.Fatalf("health %+v; want 1 request whose client left, no last request", h)
	}
}

// Concurrent proxied requests, probes and Health readers (run with -race):
// every request is counted exactly once, in its class.
func TestHealthConcurrent(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	g := newGateway(t, Options{Routes: []Route{{Name: "r", Upstream: mustURL(t, up.URL)}}})
	ctx, cancel := context.WithCancel(context.Background())
	g.p.StartProbes(ctx, 5*time.Millisecond)
	defer func() { cancel(); g.p.probes.Wait() }()

	const workers, each = 8, 25
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = g.p.Health()
			}
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				path := "/ok"
				if (w+i)%2 == 0 {
					path = "/fail"
				}
				res, err := http.Get(g.srv.URL + path)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	h := healthOf(t, g.p, "r")
	want := Counts{Requests: workers * each, Status2xx: workers * each / 2, Status5xx: workers * each / 2}
	if h.Window != want {
		t.Fatalf("counts %+v; want %+v", h.Window, want)
	}
}

func TestDescribeError(t *testing.T) {
	dial := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	tests := []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("probe: %w", context.DeadlineExceeded), "timeout"},
		{dial(syscall.ECONNREFUSED), "connection refused"},
		{dial(syscall.ECONNRESET), "connection reset by upstream"},
		{dial(syscall.EHOSTUNREACH), "host unreachable"},
		{dial(syscall.ENETUNREACH), "network unreachable"},
		{dial(syscall.ETIMEDOUT), "timeout"},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}, "DNS: no such host"},
		{&net.DNSError{Err: "i/o timeout", IsTimeout: true}, "DNS: timeout"},
		{&net.DNSError{Err: "server misbehaving"}, "DNS: lookup failed"},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, "TLS: certificate signed by unknown authority"},
		{&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, "TLS: certificate expired or not yet valid"},
		{x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}, "TLS: invalid certificate"},
		{x509.HostnameError{Host: "panel.internal"}, "TLS: certificate is not valid for panel.internal"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "TLS: upstream did not answer with TLS"},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}, "TLS: remote error: bad certificate"},
		{io.EOF, "connection closed by upstream"},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), "connection closed by upstream"},
		{fmt.Errorf("wrapped http://u/?token=s3cret: %w", errors.New("malformed HTTP response \"\\x00\"")), `malformed HTTP response "\x00"`},
		{errors.New("line1\nline2\x00" + strings.Repeat("é", 60)), "line1 line2 " + strings.Repeat("é", 32) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := describeError(tt.err)
			if got != tt.want {
				t.Fatalf("describeError(%v) = %q; want %q", tt.err, got, tt.want)
			}
			if len(got) > 80 {
				t.Fatalf("%d bytes; want at most 80", len(got))
			}
		})
	}
}

// An upstream that answers an upgrade with the wrong protocol reaches the
// ErrorHandler after ModifyResponse: the request is still counted once.
func TestHealthUpgradeMismatchCountedOnce(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
	}))
	g := newGateway(t, Options{Routes: []Route{{Name: "r", Upstream: mustURL(t, up.URL)}}})
	res := g.do(t, http.MethodGet, "/", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}})
	if res.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d; want 502", res.StatusCode)
	}
	if h := healthOf(t, g.p, "r"); h.Window != (Counts{Requests: 1, Status1xx: 1}) || h.LastRequest.Status != http.StatusSwitchingProtocols {
		t.Fatalf("health %+v; want one request, last status 101", h)
	}
}

// A slow request finishing after a newer one does not replace it.
func TestKeepLatest(t *testing.T) {
	var s routeStats
	t0 := time.Now()
	s.countRequest(0, Counts{Requests: 1, Status2xx: 1}, &Result{At: t0.Add(time.Second), Status: 200})
	s.countRequest(0, Counts{Requests: 1, TransportErrors: 1}, &Result{At: t0, Error: "timeout"})
	if _, r, c := s.health(0); r.Status != 200 || r.Error != "" || c.Requests != 2 {
		t.Fatalf("older result won: %+v (counts %+v)", r, c)
	}
}
