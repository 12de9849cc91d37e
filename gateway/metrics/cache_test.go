package metrics_test

import (
	"context"
	"errors"
	"maps"
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
	if f := family(t, m, "authgate_cache_resets_total"); f != nil && len(f.GetMetric()) != 0 {
		t.Errorf("resets of a sole writer's cache: %v", f)
	}
	// A nil *Metrics (metrics off) ignores it.
	var off *metrics.Metrics
	off.ReadCache(c)
}

// Resets are exported by cause, stalls counted apart.
func TestCacheResetCauses(t *testing.T) {
	clk := testkit.NewClock(time.Now())
	handlers := make(chan cache.Handler, 1)
	c := cache.New(openEmbedded(t, clk), cache.Options{Feed: func(ctx context.Context, h cache.Handler) {
		h.FeedReset(true, "subscribed", nil)
		handlers <- h
		<-ctx.Done()
	}}, clk.Now)
	t.Cleanup(func() { _ = c.Close() })
	h := <-handlers
	h.FeedStalled(true)
	h.FeedStalled(false)
	h.FeedStalled(true)
	h.FeedReset(false, "silent", errors.New("no answer"))
	h.FeedReset(true, "subscribed", nil)
	m := metrics.New(metrics.Options{})
	m.ReadCache(c)
	got := map[string]float64{}
	for _, mt := range family(t, m, "authgate_cache_resets_total").GetMetric() {
		got[labels(mt)["cause"]] = mt.GetCounter().GetValue()
	}
	if want := map[string]float64{"subscribed": 2, "silent": 1}; !maps.Equal(got, want) {
		t.Errorf("resets by cause %v, want %v", got, want)
	}
	if v := counterValue(t, m, "authgate_cache_stalls_total"); v != 2 {
		t.Errorf("stalls = %v, want 2", v)
	}
}
