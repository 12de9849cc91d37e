package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/redisstore"
	"github.com/authgate/authgate/gateway/tlsconf"
)

// tlsState is HTTPS on listen (tls.mode manual or acme) and the optional
// plain-HTTP listener (tls.http_listen).
type tlsState struct {
	m      *tlsconf.Manager
	httpLn net.Listener
}

// openTLS builds the TLS configuration and opens tls.http_listen; nothing
// when tls.mode is off. st is the store as opened (before any metrics
// wrapper): on Redis, ACME accounts, certificates and locks are kept in
// it, so every instance sharing it shares the certificates.
func (s *Server) openTLS(st store.Store) error {
	o := tlsconf.Options{Now: s.now, Logger: s.log}
	rs, shared := st.(*redisstore.Store)
	if shared && s.cfg.TLS.Mode == config.TLSACME {
		o.Storage = tlsconf.NewSharedStorage(rs.CertBlobs())
		s.log.Info().Msg("tls: ACME account and certificates are kept in Redis, shared by every instance")
	}
	m, err := tlsconf.New(s.cfg.TLS, s.cfg.Listen, routeHosts(s.cfg.Routes), o)
	if errors.Is(err, tlsconf.ErrOff) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	ts := &tlsState{m: m}
	if addr := s.cfg.TLS.HTTPListen; addr != "" {
		if ts.httpLn, err = net.Listen("tcp", addr); err != nil {
			m.Close()
			return fmt.Errorf("tls.http_listen %s: %w", addr, err)
		}
	}
	s.tls = ts
	return nil
}

// certSource is what the metrics read for the certificate expiry gauge:
// nil (no samples) when the gateway serves no TLS itself.
func (s *Server) certSource() metrics.CertificateSource {
	if s.tls == nil {
		return nil
	}
	return s.tls.m
}

// reloadTLSFiles applies a reloaded config's tls.cert_file/key_file
// (manual mode): new paths are loaded now, and a pair that cannot be
// loaded rejects the reload; the same paths are re-read if they changed.
// Called before the new routing is swapped in.
func (s *Server) reloadTLSFiles(cfg *config.Config) error {
	if s.tls == nil {
		return nil
	}
	if err := s.tls.m.SetFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
		return fmt.Errorf("tls.cert_file/tls.key_file: %w", err)
	}
	return nil
}

// reloadTLSHosts manages certificates for the reloaded routes' hosts
// (acme mode): added hosts get one, removed hosts stop being managed.
// Called after the new routing is swapped in.
func (s *Server) reloadTLSHosts(cfg *config.Config) {
	if s.tls == nil {
		return
	}
	s.tls.m.SetHosts(routeHosts(cfg.Routes))
}

// routeHosts returns the distinct route hosts, in config order.
func routeHosts(routes []config.Route) []string {
	seen := make(map[string]bool)
	var hosts []string
	for _, r := range routes {
		h := strings.ToLower(strings.TrimSuffix(r.Host, "."))
		if h != "" && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// HTTPAddr is the tls.http_listen listener's address, nil when none.
func (s *Server) HTTPAddr() net.Addr {
	if s.tls == nil || s.tls.httpLn == nil {
		return nil
	}
	return s.tls.httpLn.Addr()
}

// serveTLS wraps ln in TLS, starts the plain-HTTP listener and, in acme
// mode, starts managing the certificates (obtained in the background,
// handshakes for a host fail until its certificate is there). Without TLS
// it returns ln and a no-op.
func (s *Server) serveTLS(ctx context.Context, ln net.Listener) (net.Listener, func()) {
	if s.tls == nil {
		return ln, func() {}
	}
	st := s.tls
	tlsPort := portOf(ln.Addr())
	var httpSrv *http.Server
	done := make(chan struct{})
	if st.httpLn != nil {
		st.m.SetListenPorts(portOf(st.httpLn.Addr()), tlsPort)
		httpSrv = &http.Server{
			Handler:           st.m.HTTPHandler(publicHTTPSPort(s.cfg.PublicURL, tlsPort)),
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       30 * time.Second,
			MaxHeaderBytes:    16 << 10,
		}
		go func() {
			defer close(done)
			_ = httpSrv.Serve(st.httpLn)
		}()
		s.log.Info().Str("addr", st.httpLn.Addr().String()).Msg("http listener: redirects to https and answers ACME challenges")
	} else {
		st.m.SetListenPorts(0, tlsPort)
		close(done)
	}
	mctx, cancel := context.WithCancel(ctx)
	if err := st.m.Manage(mctx); err != nil {
		s.log.Error().Err(err).Msg("tls: certificate management did not start")
	}
	var once sync.Once
	return tls.NewListener(ln, st.m.TLSConfig()), func() {
		once.Do(func() {
			cancel()
			if httpSrv != nil {
				sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
				defer c()
				if err := httpSrv.Shutdown(sctx); err != nil {
					_ = httpSrv.Close()
				}
			}
			<-done
			st.m.Close()
		})
	}
}

// closeTLS releases what openTLS opened, for a server never served.
func (s *Server) closeTLS() {
	if s.tls == nil {
		return
	}
	if s.tls.httpLn != nil {
		_ = s.tls.httpLn.Close()
	}
	s.tls.m.Close()
}

func portOf(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}

// publicHTTPSPort is the port redirects send browsers to: the port of
// public_url when it is an https URL with one, else the listen port
// (443 gives the default).
func publicHTTPSPort(publicURL string, listenPort int) string {
	if rest, ok := strings.CutPrefix(publicURL, "https://"); ok {
		host, _, _ := strings.Cut(rest, "/")
		if _, p, err := net.SplitHostPort(host); err == nil {
			return p
		}
		return "443"
	}
	return strconv.Itoa(listenPort)
}
