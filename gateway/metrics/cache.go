package metrics

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/store/cache"
)

// CacheSource is the session and user cache in front of the store (a
// *cache.Cache), read at every scrape (its Stats are in-memory counters).
type CacheSource interface {
	Stats() cache.Stats
}

var (
	cacheHitsDesc = prometheus.NewDesc("authgate_cache_hits_total",
		"Reads answered from the session cache's memory, by kind (session, user).", []string{"kind"}, nil)
	cacheMissesDesc = prometheus.NewDesc("authgate_cache_misses_total",
		"Reads the session cache passed to the store (not cached, too old, or the invalidation feed down), by kind.", []string{"kind"}, nil)
	cacheEntriesDesc = prometheus.NewDesc("authgate_cache_entries",
		"Entries the session cache holds, by kind.", []string{"kind"}, nil)
	cacheResetsDesc = prometheus.NewDesc("authgate_cache_resets_total",
		"Times the cache dropped everything, by cause: its invalidation feed (Redis pub/sub) subscribed again (subscribed), failed (error), went unanswered for 2 s (silent) or announced a flush (flush).", []string{"cause"}, nil)
	cacheStallsDesc = prometheus.NewDesc("authgate_cache_stalls_total",
		"Times the cache paused serving from memory, keeping its entries, because its invalidation feed's answer was overdue (a busy CPU or a busy Redis).", nil, nil)
)

// ReadCache exports src's counters (authgate_cache_*). It does nothing on
// a nil *Metrics; call it once.
func (m *Metrics) ReadCache(src CacheSource) {
	if m == nil || src == nil {
		return
	}
	m.reg.MustRegister(cacheCollector{src})
}

type cacheCollector struct{ src CacheSource }

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheHitsDesc, cacheMissesDesc, cacheEntriesDesc, cacheResetsDesc, cacheStallsDesc} {
		ch <- d
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(cacheHitsDesc, prometheus.CounterValue, float64(st.SessionHits), "session")
	ch <- prometheus.MustNewConstMetric(cacheHitsDesc, prometheus.CounterValue, float64(st.UserHits), "user")
	ch <- prometheus.MustNewConstMetric(cacheMissesDesc, prometheus.CounterValue, float64(st.SessionMisses), "session")
	ch <- prometheus.MustNewConstMetric(cacheMissesDesc, prometheus.CounterValue, float64(st.UserMisses), "user")
	ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(st.Sessions), "session")
	ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(st.Users), "user")
	// The causes seen so far (the first reset, "subscribed", comes when
	// the feed first subscribes).
	for _, cause := range slices.Sorted(maps.Keys(st.ResetCauses)) {
		ch <- prometheus.MustNewConstMetric(cacheResetsDesc, prometheus.CounterValue, float64(st.ResetCauses[cause]), cause)
	}
	ch <- prometheus.MustNewConstMetric(cacheStallsDesc, prometheus.CounterValue, float64(st.Stalls))
}
