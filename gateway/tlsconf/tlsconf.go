package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/rs/zerolog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/authgate/authgate/gateway/config"
)

// ErrOff is returned by New when tls.mode is "off".
var ErrOff = errors.New("tlsconf: tls.mode is off")

// ErrBadCARoot is returned when tls.acme.ca_root holds no certificate.
var ErrBadCARoot = errors.New("tlsconf: tls.acme.ca_root holds no PEM certificate")

// ErrManaging is returned by a second call to Manage.
var ErrManaging = errors.New("tlsconf: certificates are already managed")

// manualCheckEvery bounds how often the manual certificate files are
// stat'ed (on handshakes and metric scrapes).
const manualCheckEvery = time.Second

// Options are what New uses besides the tls section of the config.
type Options struct {
	// Now is the clock of the manual-mode file check (default time.Now).
	Now func() time.Time
	// Logger receives the TLS log lines, certmagic's included.
	Logger zerolog.Logger
	// Storage keeps the ACME account, the certificates and the locks
	// (acme mode). nil: a certmagic.FileStorage in tls.acme.storage
	// (config's default: <data_dir>/acme). Gateways given the same Storage share
	// their certificates: one obtains or renews under the storage's lock,
	// the others load the result instead of asking the CA.
	Storage certmagic.Storage
	// RenewCheckInterval is how often the managed certificates are
	// checked for renewal (acme mode); 0: certmagic's default (10
	// minutes). Tests with short-lived certificates make it short.
	RenewCheckInterval time.Duration
}

// Manager holds the TLS configuration of one gateway: the certificate
// files of manual mode, or the certmagic cache and config (our own, never
// certmagic's package defaults) of acme mode.
type Manager struct {
	mode   string
	tlsCfg *tls.Config
	log    zerolog.Logger
	now    func() time.Time

	// manual only: the files in service (replaced by SetFiles).
	files atomic.Pointer[fileCert]

	// acme only
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer

	mu sync.Mutex
	// hosts are the names certificates are managed for, each with the
	// func that cancels its management (nil before Manage).
	hosts map[string]context.CancelFunc
	// ctx is Manage's context; nil before Manage.
	ctx context.Context
}

// New builds the TLS configuration of the tls section t for a gateway
// listening on listen (the TLS-ALPN-01 port). hosts are the names to
// manage certificates for in acme mode (the route hosts; SetHosts changes
// them). It returns ErrOff when TLS is off. In acme mode call
// SetListenPorts and then Manage once the listeners are open, and Close
// when done.
func New(t config.TLS, listen string, hosts []string, o Options) (*Manager, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Manager{mode: t.Mode, log: o.Logger, now: o.Now, hosts: map[string]context.CancelFunc{}}
	for _, h := range hosts {
		m.hosts[normalHost(h)] = nil
	}
	switch t.Mode {
	case config.TLSOff, "":
		return nil, ErrOff
	case config.TLSManual:
		fc, err := m.newFiles(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		m.files.Store(fc)
		m.tlsCfg = &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
				return m.files.Load().current(), nil
			},
			NextProtos: []string{"h2", "http/1.1"},
		}
		return m, nil
	case config.TLSACME:
		if err := m.acme(t, listen, o.Storage, o.RenewCheckInterval); err != nil {
			return nil, err
		}
		return m, nil
	default:
		return nil, fmt.Errorf("tlsconf: unknown tls.mode %q", t.Mode)
	}
}

func (m *Manager) newFiles(certFile, keyFile string) (*fileCert, error) {
	log := m.log
	return newFileCert(certFile, keyFile, m.now, manualCheckEvery, func(err error) {
		if err != nil {
			log.Error().Err(err).Msg("tls certificate files changed but cannot be loaded; keeping the previous certificate")
			return
		}
		log.Info().Str("cert_file", certFile).Msg("tls certificate reloaded")
	})
}

func (m *Manager) acme(t config.TLS, listen string, storage certmagic.Storage, renewCheck time.Duration) error {
	a := t.ACME
	var roots *x509.CertPool
	if a.CARoot != "" {
		pem, err := os.ReadFile(a.CARoot)
		if err != nil {
			return fmt.Errorf("tlsconf: read tls.acme.ca_root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%w: %s", ErrBadCARoot, a.CARoot)
		}
	}
	if storage == nil {
		if a.Storage == "" {
			return errors.New("tlsconf: tls.acme.storage is empty and no other storage was given")
		}
		storage = &certmagic.FileStorage{Path: a.Storage}
	}
	zl := zapLogger(m.log)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		RenewCheckInterval: renewCheck,
		Logger:             zl,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage: storage,
		Logger:  zl,
		OnEvent: m.onEvent,
	})
	tmpl := certmagic.ACMEIssuer{
		CA:           a.CA,
		TestCA:       a.CA,
		Email:        a.Email,
		Agreed:       true,
		TrustedRoots: roots,
		Logger:       zl,
	}
	// The challenges are answered by the gateway's own listeners: the
	// tls.http_listen handler (HTTP-01, see HTTPHandler) and the TLS
	// listener (TLS-ALPN-01, through TLSConfig). Pointing certmagic at
	// those ports makes it find them busy and rely on them instead of
	// binding its own. Ports given as 0 are set by SetListenPorts.
	if hl := t.HTTPListen; hl != "" {
		tmpl.ListenHost, tmpl.AltHTTPPort = splitPort(hl)
	} else {
		tmpl.DisableHTTPChallenge = true
	}
	h, p := splitPort(listen)
	tmpl.AltTLSALPNPort = p
	if t.HTTPListen == "" {
		tmpl.ListenHost = h
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, tmpl)
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	tc := m.magic.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	tc.NextProtos = []string{"h2", "http/1.1", "acme-tls/1"}
	m.tlsCfg = tc
	return nil
}

// splitPort returns the host and numeric port of addr (port 0 when it is
// not a number).
func splitPort(addr string) (string, int) {
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	p, err := strconv.Atoi(ps)
	if err != nil {
		return h, 0
	}
	return h, p
}

// normalHost lowercases h and drops a final dot.
func normalHost(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }

// SetListenPorts tells the ACME issuer on which ports the gateway's
// listeners really are (when listen or http_listen used port 0). Call it
// before Manage. A port of 0 leaves that setting unchanged.
func (m *Manager) SetListenPorts(httpPort, tlsPort int) {
	if m.issuer == nil {
		return
	}
	if httpPort != 0 {
		m.issuer.AltHTTPPort = httpPort
	}
	if tlsPort != 0 {
		m.issuer.AltTLSALPNPort = tlsPort
	}
}

// TLSConfig returns the server TLS configuration (shared; do not modify).
func (m *Manager) TLSConfig() *tls.Config { return m.tlsCfg }

// Manage starts managing a certificate for every host until ctx ends: one
// found in storage is loaded (and renewed if due), a missing one is
// obtained from the CA, each in the background with certmagic's retries
// (exponential backoff up to a day, for about 30 days) so that a host
// whose DNS is not ready yet does not hold up the others. Renewals run
// until Close. A no-op outside acme mode.
func (m *Manager) Manage(ctx context.Context) error {
	if m.magic == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx != nil {
		return ErrManaging
	}
	m.ctx = ctx
	hosts := m.hostsLocked()
	for _, h := range hosts {
		m.manageLocked(h)
	}
	m.log.Info().Strs("hosts", hosts).Msg("tls: managing certificates")
	return nil
}

// SetHosts replaces the hosts certificates are managed for (a config
// reload changed the routes). New hosts are managed as in Manage. Removed
// hosts stop being managed: their certificate leaves the cache (no more
// renewals, handshakes for the name fail), an obtain still running for
// them is cancelled, and the files stay in storage (a host added back
// reuses them). A no-op outside acme mode: a manual certificate covers
// the names it covers.
func (m *Manager) SetHosts(hosts []string) {
	if m.magic == nil {
		return
	}
	next := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		next[normalHost(h)] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var added, removed []string
	for h := range m.hosts {
		if !next[h] {
			removed = append(removed, h)
		}
	}
	for h := range next {
		if _, ok := m.hosts[h]; !ok {
			added = append(added, h)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	for _, h := range removed {
		if cancel := m.hosts[h]; cancel != nil {
			cancel()
		}
		delete(m.hosts, h)
		m.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: h}})
	}
	for _, h := range added {
		m.hosts[h] = nil
		if m.ctx != nil {
			m.manageLocked(h)
		}
	}
	if len(added)+len(removed) > 0 {
		m.log.Info().Strs("added", added).Strs("removed", removed).Msg("tls: certificate hosts changed")
	}
}

// manageLocked starts managing h under its own context. Called with mu
// held after Manage.
func (m *Manager) manageLocked(h string) {
	ctx, cancel := context.WithCancel(m.ctx)
	m.hosts[h] = cancel
	// ManageAsync only returns errors that happen before any ACME
	// operation; failures after are logged by certmagic and retried.
	if err := m.magic.ManageAsync(ctx, []string{h}); err != nil {
		m.log.Error().Err(err).Str("host", h).Msg("tls: certificate management could not start")
	}
}

func (m *Manager) hostsLocked() []string {
	hosts := make([]string, 0, len(m.hosts))
	for h := range m.hosts {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	return hosts
}

// onEvent drops a managed certificate cached for a name that is no longer
// a host: an obtain that finished after SetHosts removed its host.
// certmagic emits events outside its cache lock and never synchronously
// from the calls made under mu, so taking mu here cannot deadlock.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	if event != "cached_managed_cert" {
		return nil
	}
	sans, _ := data["sans"].([]string)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range sans {
		if _, ok := m.hosts[normalHost(s)]; !ok {
			m.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: s}})
			m.log.Info().Str("host", s).Msg("tls: dropped a certificate obtained for a host no longer routed")
		}
	}
	return nil
}

// SetFiles switches manual mode to the certificate and key at certFile
// and keyFile (a config reload). The same paths are re-read at once if
// they changed on disk. New paths that cannot be loaded are refused with
// ErrNoCertificate and the running certificate stays. A no-op outside
// manual mode.
func (m *Manager) SetFiles(certFile, keyFile string) error {
	cur := m.files.Load()
	if cur == nil {
		return nil
	}
	if cur.certFile == certFile && cur.keyFile == keyFile {
		cur.check(true)
		return nil
	}
	fc, err := m.newFiles(certFile, keyFile)
	if err != nil {
		return err
	}
	m.files.Store(fc)
	m.log.Info().Str("cert_file", certFile).Str("key_file", keyFile).Msg("tls certificate files replaced")
	return nil
}

// CertificateExpiries returns when each certificate in service expires,
// by name: in acme mode each host's certificate as held in certmagic's
// cache (so renewals, also by another instance, and removed hosts show
// at once; a host still waiting for its certificate has none); in manual
// mode the files' certificate under its first DNS name (else its common
// name), the files checked for changes first.
func (m *Manager) CertificateExpiries() map[string]time.Time {
	out := map[string]time.Time{}
	if fc := m.files.Load(); fc != nil {
		if c := fc.current(); c != nil && c.Leaf != nil {
			out[certName(c.Leaf, fc.certFile)] = c.Leaf.NotAfter
		}
		return out
	}
	if m.cache == nil {
		return out
	}
	m.mu.Lock()
	hosts := m.hostsLocked()
	m.mu.Unlock()
	for _, h := range hosts {
		for _, c := range m.cache.AllMatchingCertificates(h) {
			if c.Leaf != nil && c.Leaf.NotAfter.After(out[h]) {
				out[h] = c.Leaf.NotAfter
			}
		}
	}
	return out
}

func certName(leaf *x509.Certificate, file string) string {
	switch {
	case len(leaf.DNSNames) > 0:
		return leaf.DNSNames[0]
	case leaf.Subject.CommonName != "":
		return leaf.Subject.CommonName
	default:
		return file
	}
}

// HTTPHandler is the plain-HTTP (port 80) handler: it answers ACME HTTP-01
// challenges (acme mode) and redirects everything else to the same URL
// over https (301 for GET/HEAD, 308 otherwise). httpsPort is the public
// HTTPS port ("" or "443" for the default).
func (m *Manager) HTTPHandler(httpsPort string) http.Handler {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		if host == "" {
			http.Error(w, "missing host", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if httpsPort != "" && httpsPort != "443" {
			host += ":" + httpsPort
		}
		w.Header().Set("Connection", "close")
		code := http.StatusMovedPermanently
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			code = http.StatusPermanentRedirect
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), code)
	})
	if m.issuer != nil {
		h = m.issuer.HTTPChallengeHandler(h)
	}
	return h
}

// Close stops certificate maintenance (renewals); cancel Manage's context
// first to stop obtains in progress.
func (m *Manager) Close() {
	if m.cache != nil {
		m.cache.Stop()
	}
}

// zapLogger forwards certmagic's log lines (info and above) to zerolog.
func zapLogger(log zerolog.Logger) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = ""
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(zerologWriter{log}), zapcore.InfoLevel)
	return zap.New(core).Named("certmagic")
}

type zerologWriter struct{ log zerolog.Logger }

func (z zerologWriter) Write(p []byte) (int, error) {
	z.log.Info().Str("component", "certmagic").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
