package metrics_test

import (
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/metrics"
)

// certSource is a settable certificate source (what the TLS manager
// reports).
type certSource struct {
	mu  sync.Mutex
	exp map[string]time.Time
}

func (c *certSource) set(exp map[string]time.Time) {
	c.mu.Lock()
	c.exp = exp
	c.mu.Unlock()
}

func (c *certSource) CertificateExpiries() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exp
}

func expiries(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	if f := family(t, m, "authgate_tls_certificate_expiry_timestamp_seconds"); f != nil {
		for _, mt := range f.GetMetric() {
			out[labels(mt)["name"]] = mt.GetGauge().GetValue()
		}
	}
	return out
}

// The expiry gauge is read from the source at every scrape, not cached
// with the store readings: a renewal or a removed host shows at once.
func TestCertificateExpiryReadAtScrape(t *testing.T) {
	m := metrics.New(metrics.Options{CacheFor: time.Hour})
	if got := expiries(t, m); len(got) != 0 {
		t.Fatalf("samples without a source: %v", got)
	}
	a := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	b := a.Add(90 * 24 * time.Hour)
	src := &certSource{}
	src.set(map[string]time.Time{"a.example.com": a})
	m.ReadAtScrape(metrics.Sources{Certificates: src})
	if got := expiries(t, m); len(got) != 1 || got["a.example.com"] != float64(a.Unix()) {
		t.Fatalf("expiries = %v, want a.example.com=%d", got, a.Unix())
	}
	src.set(map[string]time.Time{"b.example.com": b})
	if got := expiries(t, m); len(got) != 1 || got["b.example.com"] != float64(b.Unix()) {
		t.Fatalf("after the change: %v, want only b.example.com=%d", got, b.Unix())
	}
}
