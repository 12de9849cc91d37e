package metrics

import (
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
		"Times the cache dropped everything because its invalidation feed (Redis pub/sub) was lost or re-established.", nil, nil)
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
	for _, d := range []*prometheus.Desc{cacheHitsDesc, cacheMissesDesc, cacheEntriesDesc, cacheResetsDesc} {
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
	ch <- prometheus.MustNewConstMetric(cacheResetsDesc, prometheus.CounterValue, float64(st.Resets))
}
