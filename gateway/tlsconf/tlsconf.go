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
	"strconv"
	"strings"
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

// manualCheckEvery bounds how often the manual certificate files are
// stat'ed (on handshakes).
const manualCheckEvery = time.Second

// Manager holds the TLS configuration of one gateway.
type Manager struct {
	mode   string
	tlsCfg *tls.Config
	hosts  []string
	log    zerolog.Logger

	// acme only
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
}

// New builds the TLS configuration for cfg.TLS. hosts are the names to
// obtain certificates for in acme mode (the route hosts). now is the
// clock the manual-mode file check uses. It returns ErrOff when TLS is
// off. Call Manage (acme) once the listeners accept connections, and
// Close when done.
func New(cfg *config.Config, hosts []string, now func() time.Time, log zerolog.Logger) (*Manager, error) {
	t := cfg.TLS
	m := &Manager{mode: t.Mode, hosts: hosts, log: log}
	switch t.Mode {
	case config.TLSOff, "":
		return nil, ErrOff
	case config.TLSManual:
		fc, err := newFileCert(t.CertFile, t.KeyFile, now, manualCheckEvery, func(err error) {
			if err != nil {
				log.Error().Err(err).Msg("tls certificate files changed but cannot be loaded; keeping the previous certificate")
				return
			}
			log.Info().Str("cert_file", t.CertFile).Msg("tls certificate reloaded")
		})
		if err != nil {
			return nil, err
		}
		m.tlsCfg = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: fc.GetCertificate,
			NextProtos:     []string{"h2", "http/1.1"},
		}
		return m, nil
	case config.TLSACME:
		if err := m.acme(cfg); err != nil {
			return nil, err
		}
		return m, nil
	default:
		return nil, fmt.Errorf("tlsconf: unknown tls.mode %q", t.Mode)
	}
}

func (m *Manager) acme(cfg *config.Config) error {
	a := cfg.TLS.ACME
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
	storage := a.Storage
	if storage == "" {
		storage = cfg.DataDir + "/acme"
	}
	zl := zapLogger(m.log)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		Logger:           zl,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: storage},
		Logger:  zl,
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
	// port-80 handler (HTTP-01) and the TLS listener (TLS-ALPN-01).
	// Pointing certmagic at those ports makes it find them busy and rely
	// on them instead of binding its own.
	if h, p, ok := splitPort(cfg.TLS.HTTPListen); ok {
		tmpl.AltHTTPPort, tmpl.ListenHost = p, h
	} else {
		tmpl.DisableHTTPChallenge = true
	}
	if h, p, ok := splitPort(cfg.Listen); ok {
		tmpl.AltTLSALPNPort = p
		if tmpl.ListenHost == "" {
			tmpl.ListenHost = h
		}
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, tmpl)
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	tc := m.magic.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	tc.NextProtos = []string{"h2", "http/1.1", "acme-tls/1"}
	m.tlsCfg = tc
	return nil
}

// splitPort returns the host and the numeric, non-zero port of addr.
func splitPort(addr string) (string, int, bool) {
	if addr == "" {
		return "", 0, false
	}
	h, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	p, err := strconv.Atoi(ps)
	if err != nil || p == 0 {
		return "", 0, false
	}
	return h, p, true
}

// SetListenPorts tells the ACME issuer on which ports the gateway's
// listeners really are (when listen or http_listen used port 0). Call it
// before Manage. httpPort 0 leaves the HTTP-01 setting unchanged.
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

// Manage obtains (or loads from storage) a certificate for every host and
// keeps them renewed in the background until Close. It returns once every
// host has a certificate or one could not be obtained. A no-op outside
// acme mode.
func (m *Manager) Manage(ctx context.Context) error {
	if m.magic == nil || len(m.hosts) == 0 {
		return nil
	}
	if err := m.magic.ManageSync(ctx, m.hosts); err != nil {
		return fmt.Errorf("tlsconf: obtain certificates for %s: %w", strings.Join(m.hosts, ", "), err)
	}
	m.log.Info().Strs("hosts", m.hosts).Msg("tls certificates ready")
	return nil
}

// HTTPHandler is the plain-HTTP (port 80) handler: it answers ACME HTTP-01
// challenges (acme mode) and redirects everything else to the same URL
// over https (301 for GET/HEAD, 308 otherwise). httpsPort is the public HTTPS port ("" or "443" for the default).
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

// Close stops certificate maintenance.
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
