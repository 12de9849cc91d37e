package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Path is where the metrics listener serves the exposition.
const Path = "/metrics"

// Login factors (the "factor" label of authgate_login_attempts_total).
const (
	FactorPassword     = "password"
	FactorTOTP         = "totp"
	FactorRecoveryCode = "recovery_code"
	FactorEnroll       = "enroll"
	// FactorPasskey: a passkey or security key, as second factor or
	// (passwordless) alone.
	FactorPasskey = "passkey"
)

// Login results (the "result" label).
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
	ResultBanned  = "banned"
	ResultBusy    = "busy"
	// ResultError: the attempt could not be decided (the store or the
	// code check failed; the user saw "unavailable").
	ResultError = "error"
)

var (
	factors = []string{FactorPassword, FactorTOTP, FactorRecoveryCode, FactorEnroll, FactorPasskey}
	results = []string{ResultSuccess, ResultFailure, ResultBanned, ResultBusy, ResultError}
)

// Sources are read at scrape (see ReadAtScrape). Every source is
// optional: without it the series it feeds is registered but has no
// sample.
type Sources struct {
	// Sessions is read to count live sessions (a store.Store).
	Sessions SessionSource
	// Drift is read for the drift estimate (a *drift.Service).
	Drift DriftSource
	// Clock is read for the server clock's offset (a *clock.Monitor).
	Clock ClockSource
	// Certificates is read for the served certificates' expiry (a
	// *tlsconf.Manager; nil while the gateway serves no TLS itself).
	Certificates CertificateSource
}

// Options configure New.
type Options struct {
	// Routes pre-creates the per-route upstream error counters at 0, so
	// rate() works before the first error.
	Routes []string
	// CacheFor bounds how often the store is read for a scrape (sessions,
	// drift); scrapes in between get the cached values. Default 15s.
	CacheFor time.Duration
	// ScrapeTimeout bounds those store reads. Default 5s.
	ScrapeTimeout time.Duration
	// Logger reports scrape-time read failures.
	Logger zerolog.Logger
}

// Default Options values.
const (
	DefaultCacheFor      = 15 * time.Second
	DefaultScrapeTimeout = 5 * time.Second
)

// Metrics holds the registry and every metric. Its methods are safe for
// concurrent use and on a nil *Metrics (no-ops).
type Metrics struct {
	reg *prometheus.Registry

	loginAttempts  *prometheus.CounterVec
	factorChecks   *prometheus.CounterVec
	bansStarted    *prometheus.CounterVec
	replays        prometheus.Counter
	driftEvidence  prometheus.Counter
	proxyRequests  *prometheus.CounterVec
	proxyDuration  *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	storeDuration  *prometheus.HistogramVec
	storeErrors    *prometheus.CounterVec
	streamsClosed  *prometheus.CounterVec
	scrape         *scrapeCollector
}

// New builds the metrics on a fresh private registry, together with the
// Go runtime and process collectors.
func New(o Options) *Metrics {
	if o.CacheFor <= 0 {
		o.CacheFor = DefaultCacheFor
	}
	if o.ScrapeTimeout <= 0 {
		o.ScrapeTimeout = DefaultScrapeTimeout
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		loginAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_login_attempts_total",
			Help: "Sign-in steps submitted, by factor (password, totp, recovery_code, enroll) and result (success, failure, banned, busy, error).",
		}, []string{"factor", "result"}),
		factorChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_factor_checks_total",
			Help: "Proofs of a factor actually checked (a password hashed, a TOTP or recovery code compared), anywhere: sign-in, step-up, account pages; by factor (password, totp, recovery_code). Attempts refused before their check are not counted.",
		}, []string{"factor"}),
		bansStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_bans_started_total",
			Help: "Bans started after too many failed sign-in attempts, by kind (user, ip).",
		}, []string{"kind"}),
		replays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authgate_totp_replays_refused_total",
			Help: "Valid TOTP codes refused because their time step was already used.",
		}),
		driftEvidence: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "authgate_totp_drift_evidence_total",
			Help: "Refused codes that matched the user's secret at a clock offset outside the accepted window.",
		}),
		proxyRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_proxy_requests_total",
			Help: "Requests forwarded upstream, by route and status class of the answer (1xx..5xx; aborted: the client left before any answer).",
		}, []string{"route", "status_class"}),
		proxyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authgate_proxy_request_duration_seconds",
			Help:    "Time from forwarding a request until its response headers were sent to the client (bodies, streams and WebSockets excluded), by route.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_proxy_upstream_errors_total",
			Help: "Forwarded requests whose upstream could not be reached or did not answer in time (the client got 502/504), by route.",
		}, []string{"route"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authgate_store_operation_duration_seconds",
			Help:    "Latency of store operations, by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authgate_store_errors_total",
			Help: "Store operations that failed (not-found, already-exists and callers' own update errors are answers, not failures), by operation.",
		}, []string{"op"}),
	}
	m.streamsClosed = newStreamsClosed()
	m.scrape = newScrapeCollector(o)
	for _, f := range factors {
		for _, r := range results {
			m.loginAttempts.WithLabelValues(f, r)
		}
	}
	for _, k := range []string{"user", "ip"} {
		m.bansStarted.WithLabelValues(k)
	}
	for _, f := range []string{FactorPassword, FactorTOTP, FactorRecoveryCode} {
		m.factorChecks.WithLabelValues(f)
	}
	for _, r := range o.Routes {
		m.upstreamErrors.WithLabelValues(r)
	}
	m.reg.MustRegister(
		m.loginAttempts, m.factorChecks, m.bansStarted, m.replays, m.driftEvidence,
		m.proxyRequests, m.proxyDuration, m.upstreamErrors,
		m.storeDuration, m.storeErrors,
		m.streamsClosed,
		m.scrape,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ReadAtScrape sets the sources read when scraped (call it once the
// gateway is built; later calls replace them).
func (m *Metrics) ReadAtScrape(src Sources) {
	if m == nil {
		return
	}
	m.scrape.mu.Lock()
	defer m.scrape.mu.Unlock()
	m.scrape.src = src
	m.scrape.at = time.Time{}
}

// Registry is the private registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the text exposition of the registry. It is mounted only
// on the metrics listener, at Path.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A failing scrape-time reading drops its series, not the scrape.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	}))
	return mux
}

// LoginAttempt counts one submitted sign-in step.
func (m *Metrics) LoginAttempt(factor, result string) {
	if m == nil {
		return
	}
	m.loginAttempts.WithLabelValues(factor, result).Inc()
}

// ProofChecked counts one proof of factor that was really checked
// (regulation.Observer); the outcomes are in
// authgate_login_attempts_total.
func (m *Metrics) ProofChecked(factor string) {
	if m == nil {
		return
	}
	m.factorChecks.WithLabelValues(factor).Inc()
}

// BanStarted counts one ban of kind (store.BanKindUser or BanKindIP).
func (m *Metrics) BanStarted(kind string) {
	if m == nil {
		return
	}
	m.bansStarted.WithLabelValues(kind).Inc()
}

// ReplayRefused counts one refused replay of a used TOTP step.
func (m *Metrics) ReplayRefused() {
	if m == nil {
		return
	}
	m.replays.Inc()
}

// DriftEvidence counts one observation of drift evidence.
func (m *Metrics) DriftEvidence() {
	if m == nil {
		return
	}
	m.driftEvidence.Inc()
}

// ProxyResponse records one forwarded request of route answered with
// status (0: the client left before any answer) after took.
func (m *Metrics) ProxyResponse(route string, status int, took time.Duration) {
	if m == nil {
		return
	}
	m.proxyRequests.WithLabelValues(route, statusClass(status)).Inc()
	if status != 0 {
		m.proxyDuration.WithLabelValues(route).Observe(took.Seconds())
	}
}

// UpstreamError counts one failure to get an answer from route's
// upstream.
func (m *Metrics) UpstreamError(route string) {
	if m == nil {
		return
	}
	m.upstreamErrors.WithLabelValues(route).Inc()
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "aborted"
	}
	return strconv.Itoa(status/100) + "xx"
}
