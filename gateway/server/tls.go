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
	"github.com/authgate/authgate/gateway/tlsconf"
)

// tlsState is HTTPS on listen (tls.mode manual or acme) and the optional
// plain-HTTP listener (tls.http_listen).
type tlsState struct {
	m      *tlsconf.Manager
	httpLn net.Listener
}

// openTLS builds the TLS configuration and opens tls.http_listen; nothing
// when tls.mode is off.
func (s *Server) openTLS() error {
	m, err := tlsconf.New(s.cfg, routeHosts(s.cfg.Routes), s.now, s.log)
	if errors.Is(err, tlsconf.ErrOff) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	st := &tlsState{m: m}
	if addr := s.cfg.TLS.HTTPListen; addr != "" {
		if st.httpLn, err = net.Listen("tcp", addr); err != nil {
			m.Close()
			return fmt.Errorf("tls.http_listen %s: %w", addr, err)
		}
	}
	s.tls = st
	return nil
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
// mode, obtains the certificates in the background. Without TLS it
// returns ln and a no-op.
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
	managed := make(chan struct{})
	go func() {
		defer close(managed)
		if err := st.m.Manage(mctx); err != nil && mctx.Err() == nil {
			s.log.Error().Err(err).Msg("tls: certificates could not be obtained; HTTPS handshakes for those hosts fail until they are")
		}
	}()
	var once sync.Once
	return tls.NewListener(ln, st.m.TLSConfig()), func() {
		once.Do(func() {
			cancel()
			<-managed
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
