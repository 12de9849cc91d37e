package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/clock"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/control"
	"github.com/authgate/authgate/gateway/drift"
	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/secretbox"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
	"github.com/authgate/authgate/gateway/stream"
	"github.com/authgate/authgate/gateway/users"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
)

// maxFormBytes bounds every body sent to the gateway's own pages.
const maxFormBytes = 64 << 10

// Server is a configured, ready-to-serve gateway.
type Server struct {
	cfg     *config.Config
	log     zerolog.Logger
	store   store.Store
	handler http.Handler
	ctlPath string
	now     func() time.Time
	// admin serves both the admin web UI and the control socket.
	admin *users.Service
	// snapshot copies the embedded store for `authgate backup` over the
	// control socket (nil for Redis).
	snapshot control.Snapshotter
	// loadedAt is when the config was loaded (shown on the admin page).
	loadedAt time.Time
	// live is the part built from the reloadable keys (proxy, sign-in
	// gate, admin area); assemble builds one from a config and Reload
	// swaps it (reload.go).
	live     atomic.Pointer[routing]
	assemble func(cfg *config.Config, loadedAt time.Time) (*routing, error)
	reload   reloadState
	// readHeaderTimeout is Serve's header deadline.
	readHeaderTimeout time.Duration
	// bodyReadTimeout is the body deadline of requests to /.authgate/.
	bodyReadTimeout time.Duration
	// clock checks the server clock against NTP (time.ntp_servers).
	clock *clock.Monitor
	// driftRec stores drift evidence from failed codes off the request
	// path; stopped before the store closes.
	driftRec *drift.Recorder
	// streams tracks the forwarded requests running with a session; its
	// watcher (stopWatch stops it) ends those whose session no longer
	// passes (streams.go).
	streams   *stream.Tracker
	stopWatch func()
	// metrics and their own listener (metrics.listen); nil when off.
	metrics   *metrics.Metrics
	metricsLn net.Listener
	// tls serves HTTPS on listen and the port-80 listener; nil when
	// tls.mode is off (tls.go).
	tls *tlsState
}

// Options are optional knobs for tests and the demo.
type Options struct {
	// Now replaces the clock (tests).
	Now func() time.Time
	// NoControlSocket skips the local control socket (tests that run
	// several servers on one data dir).
	NoControlSocket bool
	// ReadHeaderTimeout replaces DefaultReadHeaderTimeout (tests of slow
	// clients).
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout replaces DefaultBodyReadTimeout (tests of slow
	// clients).
	BodyReadTimeout time.Duration
	// SetLogLevel applies log.level when Reload changes it (nil: the
	// level stays what it was at start).
	SetLogLevel func(zerolog.Level)
}

// Limits of Serve's HTTP server.
const (
	// DefaultReadHeaderTimeout is how long a client may take to send the
	// request line and headers (slow-header clients are cut off).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyReadTimeout is how long a client may take to send the
	// body of a request to the gateway's own pages (/.authgate/: forms of
	// at most 64 KiB), counted once the headers are in; a client that
	// stalls or trickles it is cut off. Requests to the panel have no
	// body deadline (slow uploads must work).
	DefaultBodyReadTimeout = 10 * time.Second
	// MaxHeaderBytes bounds the request line plus headers; larger gets 431.
	MaxHeaderBytes = 64 << 10
)

// New builds a Server from a validated config.
func New(ctx context.Context, cfg *config.Config, log zerolog.Logger, o Options) (*Server, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	mon := newClockMonitor(cfg.Time, log, now)
	if err := checkClockAtStart(ctx, mon, cfg.Time, log); err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg, now)
	if err != nil {
		return nil, err
	}
	warnIfRedisCanLoseData(ctx, st, log)
	s := &Server{cfg: cfg, log: log, store: st, now: now, loadedAt: now(), clock: mon, readHeaderTimeout: o.ReadHeaderTimeout, bodyReadTimeout: o.BodyReadTimeout}
	s.reload.setLevel = o.SetLogLevel
	if s.readHeaderTimeout <= 0 {
		s.readHeaderTimeout = DefaultReadHeaderTimeout
	}
	if s.bodyReadTimeout <= 0 {
		s.bodyReadTimeout = DefaultBodyReadTimeout
	}
	if err := s.openMetrics(); err != nil {
		_ = st.Close()
		return nil, err
	}
	if err := s.openTLS(st); err != nil {
		s.closeMetrics()
		_ = st.Close()
		return nil, err
	}
	s.wrapCache(st)
	if err := s.build(ctx); err != nil {
		s.stopStreams()
		s.stopDrift()
		s.closeMetrics()
		s.closeTLS()
		_ = s.store.Close() // the cache's Close stops its feed, then closes st
		return nil, err
	}
	if cfg.Store.Driver == "embedded" && !o.NoControlSocket {
		s.ctlPath = ControlSocketPath(cfg)
	}
	if e, ok := st.(*embedded.Store); ok {
		s.snapshot = e.Snapshot
	}
	return s, nil
}

// httpErrorLog routes net/http's server error lines to zerolog.
type httpErrorLog struct{ log zerolog.Logger }

func (h httpErrorLog) Write(p []byte) (int, error) {
	h.log.Debug().Str("component", "http").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// DurabilityReader is a store that can say whether its server keeps data
// across restarts and memory pressure (*redisstore.Store).
type DurabilityReader interface {
	Durability(ctx context.Context) (redisstore.Durability, error)
}

// warnIfRedisCanLoseData logs, at start, each way the Redis server could
// lose users and secrets (no AOF, an evicting maxmemory-policy).
func warnIfRedisCanLoseData(ctx context.Context, st store.Store, log zerolog.Logger) {
	r, ok := st.(DurabilityReader)
	if !ok {
		return
	}
	d, err := r.Durability(ctx)
	if err != nil {
		log.Info().Err(err).Msg("could not read Redis persistence settings; make sure it keeps its data (appendonly yes, maxmemory-policy noeviction)")
		return
	}
	for _, p := range d.Problems() {
		log.Warn().Str("component", "store").Msg(p)
	}
}

// ControlSocketPath is where a server on the embedded store listens for
// the CLI's user commands.
func ControlSocketPath(cfg *config.Config) string {
	return filepath.Join(cfg.DataDir, "authgate.sock")
}

// OpenStore opens the configured backend.
func OpenStore(ctx context.Context, cfg *config.Config, now func() time.Time) (store.Store, error) {
	switch cfg.Store.Driver {
	case "redis":
		tlsCfg, err := redisTLS(cfg.Store.Redis.TLS)
		if err != nil {
			return nil, err
		}
		rc := cfg.Store.Redis
		client := redisstore.NewClient(redisstore.ClientOptions{
			Addrs: rc.Addrs, Username: rc.Username, Password: rc.Password,
			DB: rc.DB, MasterName: rc.MasterName, TLS: tlsCfg,
			SentinelUsername: rc.SentinelUsername, SentinelPassword: rc.SentinelPassword,
			PoolSize: rc.PoolSize,
		})
		st := redisstore.New(client, redisstore.Options{KeyPrefix: rc.KeyPrefix})
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := st.Ping(pctx); err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("store: redis at %s unreachable: %w", strings.Join(rc.Addrs, ","), err)
		}
		return st, nil
	case "embedded", "":
		if err := os.MkdirAll(filepath.Dir(cfg.Store.Path), 0o700); err != nil {
			return nil, fmt.Errorf("store: create directory for %s: %w", cfg.Store.Path, err)
		}
		st, err := embedded.Open(cfg.Store.Path, embedded.Options{Now: now})
		if errors.Is(err, embedded.ErrLocked) {
			return nil, fmt.Errorf("store: %w (another authgate, or an `authgate user` command, has it open)", err)
		}
		if err != nil {
			return nil, fmt.Errorf("store: %w: the file is damaged or not an authgate database; restore it from a backup, or move it aside to start with an empty store", err)
		}
		return st, nil
	default:
		return nil, fmt.Errorf("store: unknown driver %q", cfg.Store.Driver)
	}
}

func redisTLS(t config.RedisTLS) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in by config
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("store.redis.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store.redis.tls.ca_file: no certificate in %s", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store.redis.tls.cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// LoadKey returns the secret key from AUTHGATE_SECRET_KEY or the key file
// (generated on first start).
func LoadKey(cfg *config.Config, log zerolog.Logger) (secretbox.Key, error) {
	var key secretbox.Key
	if cfg.SecretKey != "" {
		k, err := secretbox.ParseKey(cfg.SecretKey)
		if err != nil {
			return secretbox.Key{}, fmt.Errorf("AUTHGATE_SECRET_KEY: %w", err)
		}
		key = k
	} else {
		k, created, err := secretbox.LoadOrCreate(cfg.SecretKeyFile, rand.Reader)
		if err != nil {
			return secretbox.Key{}, fmt.Errorf("secret_key_file: %w", err)
		}
		if created {
			log.Warn().Str("path", cfg.SecretKeyFile).Msg("generated a new secret key for TOTP secrets; back it up: without it enrolled users must set up 2FA again")
		}
		key = k
	}
	return key, nil
}

// DefaultIssuer is the Issuer shown in authenticator apps when the admin
// set none: the host of public_url, else this machine's host name.
func DefaultIssuer(cfg *config.Config) string {
	if cfg.PublicURL != "" {
		if u, err := url.Parse(cfg.PublicURL); err == nil && u.Hostname() != "" {
			return u.Hostname()
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "authgate"
}

// publicHost is the host of public_url as a request to it would name it
// (lower case, a non-default port kept), "" without one.
func publicHost(cfg *config.Config) string {
	if u, err := url.Parse(cfg.PublicURL); cfg.PublicURL != "" && err == nil {
		if h, err := middleware.NormalizeHost(u.Host, u.Scheme); err == nil {
			return h
		}
	}
	return ""
}

func proxyRoutes(cfg *config.Config) ([]proxy.Route, []string, error) {
	var routes []proxy.Route
	var hosts []string
	for i, rc := range cfg.Routes {
		u, err := url.Parse(rc.Upstream)
		if err != nil {
			return nil, nil, fmt.Errorf("routes[%d].upstream: %w", i, err)
		}
		routes = append(routes, proxy.Route{
			Name: rc.Name, Host: rc.Host, PathPrefix: rc.PathPrefix, Upstream: u, Policy: rc.Policy,
			AllowUsers: rc.Allow.Users, AllowGroups: rc.Allow.Groups, PreserveHost: rc.PreserveHost,
			UserHeader: rc.IdentityHeaders.User, GroupsHeader: rc.IdentityHeaders.Groups,
			CAFile: rc.UpstreamTLS.CAFile, InsecureSkipVerify: rc.UpstreamTLS.InsecureSkipVerify,
			ServerName: rc.UpstreamTLS.ServerName, UpgradeProtocols: rc.UpgradeProtocols,
		})
		if rc.Host != "" {
			hosts = append(hosts, strings.ToLower(rc.Host))
		}
	}
	return routes, hosts, nil
}

// Probe endpoints. Neither authorises anything: they are answered before
// the gate, never forwarded, and never read a session.
const (
	// HealthPath is the liveness check: 200 whenever the process serves
	// HTTP. It does not touch the store, so an orchestrator does not
	// restart a healthy gateway because Redis is briefly away.
	HealthPath = "/.authgate/healthz"
	// ReadyPath is the readiness check: 200 when the store answers, else
	// 503 (take the instance out of the load balancer).
	ReadyPath = "/.authgate/readyz"
)

// health answers liveness probes.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	probeHeaders(w)
	_, _ = w.Write([]byte("ok\n"))
}

// ready answers readiness probes: 200 when the store answers, else 503.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	probeHeaders(w)
	if err := s.store.Ping(ctx); err != nil {
		zerolog.Ctx(r.Context()).Error().Err(err).Msg("readiness: store unreachable")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("store unavailable\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func probeHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// upstreamError is the public error for a failed upstream request: 504
// when the upstream did not answer in time, else 502. The cause only goes
// to the log.
func upstreamError(err error) *web.Error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return web.Errorf(http.StatusGatewayTimeout, "The application behind this gateway took too long to answer. Please try again in a moment.", err)
	}
	return web.Errorf(http.StatusBadGateway, "The application behind this gateway is not responding. Please try again in a moment.", err)
}

// Handler is the whole gateway as an http.Handler (tests mount it on
// httptest servers).
func (s *Server) Handler() http.Handler { return s.handler }

// Store exposes the opened store (the demo seeds its admin through it).
func (s *Server) Store() store.Store { return s.store }

// Serve runs the gateway on ln until ctx ends, then shuts down
// gracefully: it stops accepting, closes WebSockets, gives in-flight
// requests up to server.shutdown_timeout, then closes the store. While it
// serves, a config read from a file is watched and reloaded on change
// (see Reload).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var reqs requestTracker
	// Upgraded connections (WebSockets) are not waited for by Shutdown:
	// they are closed when it starts, so their clients reconnect.
	upgrades, closeUpgrades := context.WithCancel(context.Background())
	defer closeUpgrades()
	srv := &http.Server{
		Handler: reqs.track(upgrades, s.handler),
		// No ReadTimeout: it would cut slow uploads to the panel (backups,
		// packages) mid-body. Headers must arrive within 10 s, and bodies
		// for the gateway's own pages are size-limited and get a read
		// deadline of their own (bodyReadTimeout, set per request).
		ReadHeaderTimeout: s.readHeaderTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
		// net/http's own complaints (failed TLS handshakes from scanners
		// or for hosts still waiting for a certificate, broken clients)
		// go to the structured log at debug level, not raw to stderr.
		ErrorLog: stdlog.New(httpErrorLog{s.log}, "", 0),
	}
	srv.RegisterOnShutdown(closeUpgrades)
	// Metrics are served on their own listener while the gateway serves,
	// and stop before the store closes.
	stopMetrics := s.serveMetrics()
	defer stopMetrics()
	var wg sync.WaitGroup
	var ctl *http.Server
	if s.ctlPath != "" {
		cln, err := control.ListenSocket(s.ctlPath)
		if err != nil {
			s.stopStreams()
			s.stopDrift()
			_ = s.store.Close() // Serve owns the store: release it on every return
			return fmt.Errorf("control socket: %w", err)
		}
		var opts []control.SocketOption
		if s.snapshot != nil {
			opts = append(opts, control.WithBackup(s.snapshot))
		}
		ctl = &http.Server{Handler: control.NewSocketHandler(s.admin, s.log, opts...), ReadHeaderTimeout: 5 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = ctl.Serve(cln)
		}()
		s.log.Info().Str("path", s.ctlPath).Msg("control socket listening for `authgate user` commands")
	}
	// Health probes of the upstreams and the config file watcher run
	// while the server serves; the proxies' connections close after.
	stopServing := s.startServing(ctx)
	defer stopServing()
	// The clock check runs every time.check_interval while serving.
	stopClock := s.clock.Start(ctx)
	defer stopClock()
	// HTTPS on ln and the port-80 listener (tls.mode manual/acme).
	ln, stopTLS := s.serveTLS(ctx, ln)
	defer stopTLS()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("authgate listening")
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		timeout := s.live.Load().cfg.Server.ShutdownTimeout
		s.log.Info().Dur("timeout", timeout).Int64("in_flight", reqs.running()).Msg("shutting down: finishing in-flight requests")
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err = srv.Shutdown(sctx)
		if ctl != nil {
			_ = ctl.Shutdown(sctx)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// Cut the stragglers: closing their connections ends their
			// contexts, so they return before the store closes.
			s.log.Warn().Int64("in_flight", reqs.running()).Msg("shutdown timeout: closing the connections of requests still running")
			_ = srv.Close()
			err = nil
		}
	}
	if ctl != nil {
		_ = ctl.Close()
		_ = os.Remove(s.ctlPath)
	}
	wg.Wait()
	if !reqs.wait(handlerExitGrace) {
		s.log.Warn().Int64("in_flight", reqs.running()).Msg("handlers still running after their connections closed; closing the store anyway")
	}
	stopMetrics()
	stopTLS()
	s.stopStreams()
	s.stopDrift()
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Close releases the store (for servers built but never served).
func (s *Server) Close() error {
	s.closeMetrics()
	s.closeTLS()
	s.stopStreams()
	s.stopDrift()
	return s.store.Close()
}

// stopDrift writes the queued drift evidence and stops its recorder.
func (s *Server) stopDrift() {
	if s.driftRec != nil {
		_ = s.driftRec.Close()
	}
}
