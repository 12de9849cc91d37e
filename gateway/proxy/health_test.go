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
// to a real upstream (or a real failure to reach one).
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

	tests := []struct {
		name     string
		route    Route
		opts     Options
		status   int // what the client gets
		healthy  bool
		last     int
		lastErr  string
		errCount int
	}{
		{name: "200", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(200)).URL)},
			status: 200, healthy: true, last: 200},
		{name: "redirect", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(302)).URL)},
			status: 302, healthy: true, last: 302},
		{name: "404", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(404)).URL)},
			status: 404, healthy: true, last: 404},
		{name: "503", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(503)).URL)},
			status: 503, last: 503, lastErr: "HTTP 503", errCount: 1},
		{name: "500", route: Route{Upstream: mustURL(t, newUpstream(t, statusHandler(500)).URL)},
			status: 500, last: 500, lastErr: "HTTP 500", errCount: 1},
		{name: "dead", route: Route{Upstream: mustURL(t, "http://"+deadAddr(t))},
			status: 502, lastErr: "connection refused", errCount: 1},
		{name: "tls untrusted", route: Route{Upstream: mustURL(t, tlsUp.URL)},
			status: 502, lastErr: "TLS: certificate signed by unknown authority", errCount: 1},
		{name: "tls wrong name", route: Route{Upstream: mustURL(t, tlsUp.URL), CAFile: ca, ServerName: "wrong.example"},
			status: 502, lastErr: "TLS: certificate is not valid for wrong.example", errCount: 1},
		{name: "tls trusted", route: Route{Upstream: mustURL(t, tlsUp.URL), CAFile: ca},
			status: 200, healthy: true, last: 200},
		{name: "https to plain", route: Route{Upstream: mustURL(t, strings.Replace(plain.URL, "http:", "https:", 1))},
			status: 502, lastErr: "TLS: upstream did not answer with TLS", errCount: 1},
		{name: "header timeout", route: Route{Upstream: mustURL(t, hang.URL)},
			opts:   Options{ResponseHeaderTimeout: 50 * time.Millisecond},
			status: 502, lastErr: "timeout", errCount: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			tt.route.Name = "r"
			o.Routes = []Route{tt.route}
			g := newGateway(t, o)
			if h := healthOf(t, g.p, "r"); h.Observed || h.Requests != 0 {
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
			if !h.Observed || h.Healthy != tt.healthy || h.LastStatus != tt.last || h.LastError != tt.lastErr {
				t.Fatalf("health %+v; want healthy=%v status=%d error=%q", h, tt.healthy, tt.last, tt.lastErr)
			}
			if h.Requests != 1 || h.Errors != tt.errCount {
				t.Fatalf("counts %d/%d; want 1/%d", h.Requests, h.Errors, tt.errCount)
			}
			if h.LastLatency <= 0 || h.LastLatency > after.Sub(before) {
				t.Fatalf("latency %v outside (0, %v]", h.LastLatency, after.Sub(before))
			}
			if h.LastCheck.Before(before) || h.LastCheck.After(after) {
				t.Fatalf("LastCheck %v outside [%v, %v]", h.LastCheck, before, after)
			}
		})
	}
}

// Counts cover the last five minutes in 10-second buckets; the last
// observation stays. Latency and LastCheck come from the injected clock.
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
	h := healthOf(t, g.p, "r")
	if !h.Healthy || h.LastLatency != 250*time.Millisecond || !h.LastCheck.Equal(t0.Add(250*time.Millisecond)) {
		t.Fatalf("after /slow: %+v; want healthy, latency 250ms, LastCheck t0+250ms", h)
	}
	clock.Advance(2 * time.Minute) // t0+2m00.25
	get("/fail")

	steps := []struct {
		at             time.Duration // since t0
		requests, errs int
	}{
		{2*time.Minute + time.Second, 6, 3},
		{4*time.Minute + 59*time.Second, 6, 3}, // t0's bucket is 290-300 s old
		{5 * time.Minute, 1, 1},                // t0's bucket has aged out
		{6*time.Minute + 59*time.Second, 1, 1},
		{7 * time.Minute, 0, 0}, // so has t0+2m's
		{20 * time.Minute, 0, 0},
	}
	for _, s := range steps {
		clock.Advance(t0.Add(s.at).Sub(clock.Now()))
		h := healthOf(t, g.p, "r")
		if h.Requests != s.requests || h.Errors != s.errs {
			t.Fatalf("at t0+%v: counts %d/%d; want %d/%d", s.at, h.Requests, h.Errors, s.requests, s.errs)
		}
		if !h.Observed || h.Healthy || h.LastError != "HTTP 500" {
			t.Fatalf("at t0+%v: last observation lost: %+v", s.at, h)
		}
	}
	if h := healthOf(t, g.p, "idle"); h.Observed || h.Requests != 0 {
		t.Fatalf("idle route: %+v", h)
	}
	// A bucket slot reused 30 buckets later starts from zero.
	get("/ok")
	if h := healthOf(t, g.p, "r"); h.Requests != 1 || h.Errors != 0 || !h.Healthy {
		t.Fatalf("after reuse: %+v", h)
	}
}

// A client that gives up before the upstream answers is counted as a
// request, not as an upstream error, and leaves the health as it was.
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
	if h := healthOf(t, p, "r"); h.Requests != 1 || h.Errors != 0 || h.Observed {
		t.Fatalf("health %+v; want 1 request, 0 errors, not observed", h)
	}
}

// Concurrent proxied requests, probes and Health readers (run with -race):
// every request is counted exactly once.
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
	if h.Requests != workers*each || h.Errors != workers*each/2 {
		t.Fatalf("counts %d/%d; want %d/%d", h.Requests, h.Errors, workers*each, workers*each/2)
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

func TestBucketPacking(t *testing.T) {
	var s routeStats
	// Saturation: a bucket never overflows into its neighbour field.
	s.buckets[0].Store(packBucket(0, countMax, countMax))
	s.count(0, true)
	if r, e := s.totals(0); r != countMax || e != countMax {
		t.Fatalf("saturated bucket = %d/%d", r, e)
	}
	// Epochs wrap modulo 2^24 without losing the window.
	s = routeStats{}
	big := uint64(epochMask) + 5
	s.count(big, false)
	if r, e := s.totals(big + 1); r != 1 || e != 0 {
		t.Fatalf("after wrap = %d/%d", r, e)
	}
	// A bucket from the future (clock went back) is ignored.
	if r, _ := s.totals(big - 1); r != 0 {
		t.Fatalf("future bucket counted: %d", r)
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
	if h := healthOf(t, g.p, "r"); h.Requests != 1 || h.LastStatus != http.StatusSwitchingProtocols {
		t.Fatalf("health %+v; want one request, last status 101", h)
	}
}

// A slow observation finishing after a newer one does not replace it.
func TestObserveKeepsLatest(t *testing.T) {
	var s routeStats
	t0 := time.Now()
	s.observe(&observation{at: t0.Add(time.Second), status: 200})
	s.observe(&observation{at: t0, errText: "timeout"})
	if o := s.last.Load(); o.status != 200 || !o.healthy() {
		t.Fatalf("older observation won: %+v", o)
	}
}
