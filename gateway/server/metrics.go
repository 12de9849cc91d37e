package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/signin"
)

// openMetrics builds the metrics and opens their listener when
// metrics.listen is set, and wraps the store so its operations are
// measured. With metrics off it does nothing: no listener, no wrapper.
func (s *Server) openMetrics() error {
	addr := s.cfg.Metrics.Listen
	if addr == "" {
		return nil
	}
	names := make([]string, 0, len(s.cfg.Routes))
	for _, r := range s.cfg.Routes {
		names = append(names, r.Name)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	s.metrics = metrics.New(metrics.Options{Routes: names, Logger: s.log})
	s.metricsLn = ln
	s.store = s.metrics.Store(s.store)
	return nil
}

// MetricsAddr is the metrics listener's address, nil when metrics are off.
func (s *Server) MetricsAddr() net.Addr {
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// loginMetrics is signin's hook: nil (no calls at all) when metrics are off.
func (s *Server) loginMetrics() signin.LoginMetrics {
	if s.metrics == nil {
		return nil
	}
	return s.metrics
}

// proxyObserver is the proxy's hook: nil when metrics are off.
func (s *Server) proxyObserver() proxy.Observer {
	if s.metrics == nil {
		return nil
	}
	return s.metrics
}

// driftObserver counts drift evidence on its way to obs.
func (s *Server) driftObserver(obs factor.Observer) factor.Observer {
	if s.metrics == nil {
		return obs
	}
	return s.metrics.DriftObserver(obs)
}

// serveMetrics serves /metrics on the metrics listener (only that path:
// no gateway page, no session, no auth decision) until stop is called.
// stop may be called more than once.
func (s *Server) serveMetrics() (stop func()) {
	if s.metricsLn == nil {
		return func() {}
	}
	srv := &http.Server{
		Handler:           s.metrics.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(s.metricsLn)
	}()
	s.log.Info().Str("addr", s.metricsLn.Addr().String()).Msg("metrics listening at /metrics")
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
			<-done
		})
	}
}

// closeMetrics releases the metrics listener of a server never served.
func (s *Server) closeMetrics() {
	if s.metricsLn != nil {
		_ = s.metricsLn.Close()
	}
}
