package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
)

// The session cache's hits, misses and entries are exported as read at
// scrape.
func TestCacheMetrics(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(time.Now())
	c := cache.New(openEmbedded(t, clk), cache.Options{SoleWriter: true}, clk.Now)
	m := metrics.New(metrics.Options{})
	m.ReadCache(c)
	if err := c.CreateUser(ctx, store.User{Name: "alice", Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.GetUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]map[string]float64{
		"authgate_cache_hits_total":   {"user": 2, "session": 0},
		"authgate_cache_misses_total": {"user": 1, "session": 0},
		"authgate_cache_entries":      {"user": 1, "session": 0},
	}
	for name, byKind := range want {
		f := family(t, m, name)
		if f == nil {
			t.Fatalf("no %s", name)
		}
		for _, mt := range f.GetMetric() {
			v := mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
			if k := labels(mt)["kind"]; v != byKind[k] {
				t.Errorf("%s{kind=%q} = %v, want %v", name, k, v, byKind[k])
			}
		}
	}
	if v := counterValue(t, m, "authgate_cache_resets_total"); v != 0 {
		t.Errorf("resets = %v", v)
	}
	// A nil *Metrics (metrics off) ignores it.
	var off *metrics.Metrics
	off.ReadCache(c)
}
