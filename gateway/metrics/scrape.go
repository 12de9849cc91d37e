package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/clock"
	"github.com/authgate/authgate/gateway/drift"
	"github.com/authgate/authgate/gateway/store"
)

// SessionSource lists users and their live sessions (a store.Store).
type SessionSource interface {
	ListUsers(ctx context.Context, opts store.ListOptions) ([]store.User, error)
	ListUserSessions(ctx context.Context, user string) ([]store.Session, error)
}

// DriftSource analyses the users' drift evidence (a *drift.Service).
type DriftSource interface {
	Report(ctx context.Context) (drift.Report, error)
}

// ClockSource reports the server clock check (a *clock.Monitor).
type ClockSource interface {
	Status() clock.Status
}

// CertificateSource reports when each certificate the gateway serves
// expires, by name (a *tlsconf.Manager). It is read at every scrape, so
// it must be cheap (an in-memory read).
type CertificateSource interface {
	CertificateExpiries() map[string]time.Time
}

// usersPage is how many users one ListUsers call reads while counting.
const usersPage = 500

var (
	sessionsDesc = prometheus.NewDesc("authgate_sessions_active",
		"Live sessions in the store (shared by every instance), by stage: full (signed in) or pending (second factor owed). Read from the store at scrape, cached for a few seconds.",
		[]string{"stage"}, nil)
	driftEstimateDesc = prometheus.NewDesc("authgate_totp_drift_estimate_seconds",
		"The server clock's error estimated from users' drift evidence (positive: ahead of true time); 0 while the evidence does not point at the server clock.",
		nil, nil)
	driftUsersDesc = prometheus.NewDesc("authgate_totp_drift_users",
		"Users with drift evidence in the analysis window.",
		nil, nil)
	clockOffsetDesc = prometheus.NewDesc("authgate_clock_offset_seconds",
		"NTP time minus the server clock at the last good measurement (positive: the server clock is behind). No sample before the first measurement or without time.ntp_servers.",
		nil, nil)
	clockMeasuredDesc = prometheus.NewDesc("authgate_clock_last_measurement_timestamp_seconds",
		"When the server clock was last measured successfully (Unix time).",
		nil, nil)
	certExpiryDesc = prometheus.NewDesc("authgate_tls_certificate_expiry_timestamp_seconds",
		"When each served TLS certificate expires (Unix time), by name: the route host in tls.mode acme (no sample until its certificate is obtained), the certificate's first DNS name in manual. No samples while the gateway serves no TLS itself. Read at scrape.",
		[]string{"name"}, nil)
)

// scrapeCollector reads its values when scraped. Store reads are cached
// for CacheFor so frequent or concurrent scrapes cost one read.
type scrapeCollector struct {
	o   Options
	log zerolog.Logger

	mu      sync.Mutex
	src     Sources
	at      time.Time // when the cached values were read; zero: never
	reading cached
}

type cached struct {
	sessionsOK      bool
	full, pending   int
	driftOK         bool
	estimate, users int
}

func newScrapeCollector(o Options) *scrapeCollector {
	return &scrapeCollector{o: o, log: o.Logger}
}

// Describe sends the descriptors of the series this collector may emit.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sessionsDesc, driftEstimateDesc, driftUsersDesc, clockOffsetDesc, clockMeasuredDesc, certExpiryDesc} {
		ch <- d
	}
}

// Collect reads (or reuses) the values and sends them.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	v, clk, certs := c.values()
	if v.sessionsOK {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(v.full), store.StageFull)
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(v.pending), store.StagePending)
	}
	if v.driftOK {
		ch <- prometheus.MustNewConstMetric(driftEstimateDesc, prometheus.GaugeValue, float64(v.estimate))
		ch <- prometheus.MustNewConstMetric(driftUsersDesc, prometheus.GaugeValue, float64(v.users))
	}
	if clk != nil {
		st := clk.Status()
		if st.Configured && !st.Last.At.IsZero() {
			ch <- prometheus.MustNewConstMetric(clockOffsetDesc, prometheus.GaugeValue, st.Last.Offset.Seconds())
			ch <- prometheus.MustNewConstMetric(clockMeasuredDesc, prometheus.GaugeValue, float64(st.Last.At.UnixMilli())/1e3)
		}
	}
	if certs != nil {
		for name, notAfter := range certs.CertificateExpiries() {
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(notAfter.Unix()), name)
		}
	}
}

// values returns the cached store readings, reading them again when
// older than CacheFor, and the in-memory sources (clock, certificates).
// Concurrent scrapes wait for one read.
func (c *scrapeCollector) values() (cached, ClockSource, CertificateSource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.o.CacheFor {
		return c.reading, c.src.Clock, c.src.Certificates
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.ScrapeTimeout)
	defer cancel()
	var v cached
	if c.src.Sessions != nil {
		full, pending, err := countSessions(ctx, c.src.Sessions)
		if err != nil {
			c.log.Warn().Err(err).Msg("metrics: sessions not counted")
		} else {
			v.sessionsOK, v.full, v.pending = true, full, pending
		}
	}
	if c.src.Drift != nil {
		rep, err := c.src.Drift.Report(ctx)
		if err != nil {
			c.log.Warn().Err(err).Msg("metrics: drift evidence not analysed")
		} else {
			v.driftOK, v.users = true, rep.Users
			if rep.ServerLikely {
				v.estimate = rep.EstimateSeconds
			}
		}
	}
	c.reading, c.at = v, time.Now()
	return v, c.src.Clock, c.src.Certificates
}

// countSessions counts every user's live sessions by stage: one
// ListUsers per usersPage users and one ListUserSessions per user. The
// store has no global session index, and a count kept in memory would
// miss expiries and other instances' logins.
func countSessions(ctx context.Context, src SessionSource) (full, pending int, err error) {
	after := ""
	for {
		users, err := src.ListUsers(ctx, store.ListOptions{After: after, Limit: usersPage})
		if err != nil {
			return 0, 0, fmt.Errorf("metrics: list users: %w", err)
		}
		for _, u := range users {
			ss, err := src.ListUserSessions(ctx, u.Name)
			if err != nil {
				return 0, 0, fmt.Errorf("metrics: list sessions of %q: %w", u.Name, err)
			}
			for _, s := range ss {
				if s.Stage == store.StageFull {
					full++
				} else {
					pending++
				}
			}
		}
		if len(users) < usersPage {
			return full, pending, nil
		}
		after = users[len(users)-1].Name
	}
}
