package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/proxy"
)

// ErrConfigRejected is returned by Reload when the new config is not
// applied; the running one is kept. It wraps the cause (config.Problems
// for invalid values).
var ErrConfigRejected = errors.New("server: new config rejected, the running one is kept")

const (
	// retireGrace is how long a replaced proxy keeps its upstream
	// connections for the requests that started on it; their idle
	// connections are closed after it. Requests and WebSockets still
	// running then are not cut.
	retireGrace = time.Minute
	// watchDebounce lets a burst of file events (an editor's write,
	// rename and chmod) settle into one reload.
	watchDebounce = 250 * time.Millisecond
)

// routing is the part of the gateway built from the keys that change at
// run time: routes (upstreams, policies, allow lists, identity headers,
// upstream TLS), trusted_proxies, proxy.*, log.level,
// server.shutdown_timeout and ui.* (title and logo, the logo file read
// again). (The TLS side of a reload, manual certificate
// files and the route hosts' ACME certificates, is applied to the TLS
// manager: tls.go.) A request loads it once on arrival and is
// served by it to the end, so a reload never mixes two configs in one
// request; sessions, users and the store are shared by every routing.
type routing struct {
	cfg      *config.Config
	proxy    *proxy.Proxy
	handler  http.Handler
	loadedAt time.Time
	// redirectHosts are the hosts besides the request's an rd may name
	// in full: the routes' hosts and public_url's.
	redirectHosts []string
	// stopProbes ends the proxy's health probes (nil while none run);
	// guarded by reloadState.mu.
	stopProbes context.CancelFunc
}

// reloadState serialises reloads and owns the probes' lifetime.
type reloadState struct {
	mu sync.Mutex
	// serving is Serve's context while it runs (nil otherwise): probes of
	// a new routing start only while serving.
	serving context.Context
	// lastSum is the hash of the file content last tried, so the watcher
	// skips events that did not change it.
	lastSum  [sha256.Size]byte
	setLevel func(zerolog.Level)
}

// serveLive hands the request to the current routing.
func (s *Server) serveLive(w http.ResponseWriter, r *http.Request) {
	s.live.Load().handler.ServeHTTP(w, r)
}

// Reload reads the config file at path and applies its reloadable keys
// (see routing) atomically: requests already running, WebSockets included,
// finish on the routing they started on, new requests take the new one,
// and sessions are untouched. The health probes restart for the new
// upstreams and the admin Upstreams page shows the new load time. With
// HTTPS: in tls.mode manual new tls.cert_file/key_file paths are loaded
// (a pair that cannot be loaded rejects the reload) and the same paths
// are re-read; in tls.mode acme added route hosts get certificates and
// removed ones stop being managed.
//
// A file with any problem is rejected whole: every problem is logged and
// the running config is kept (ErrConfigRejected). Keys that only change at
// restart (listen, store, data_dir, secret key, session, two_factor,
// password, regulation, time, public_url, log.format...) keep their
// running values; a change to them is logged as needing a restart.
func (s *Server) Reload(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		s.log.Error().Err(err).Str("path", path).Msg("config reload rejected: cannot read the file; the running config is kept")
		return fmt.Errorf("%w: %w", ErrConfigRejected, err)
	}
	return s.reloadBytes(data, path)
}

func (s *Server) reloadBytes(data []byte, path string) error {
	s.reload.mu.Lock()
	defer s.reload.mu.Unlock()
	s.reload.lastSum = sha256.Sum256(data)
	next, probs, err := config.CheckBytes(data, path)
	if err != nil {
		s.log.Error().Err(err).Str("path", path).Msg("config reload rejected: the file is not valid YAML; the running config is kept")
		return fmt.Errorf("%w: %w", ErrConfigRejected, err)
	}
	if len(probs) > 0 {
		for _, p := range probs {
			s.log.Error().Str("path", path).Str("key", p.Key).Int("line", p.Line).Str("problem", p.Msg).Msg("config reload: invalid value")
		}
		s.log.Error().Str("path", path).Int("problems", len(probs)).Msg("config reload rejected; the running config is kept")
		return fmt.Errorf("%w: %w", ErrConfigRejected, probs)
	}
	cur := s.live.Load()
	eff, restart := applyReloadable(cur.cfg, next)
	if len(restart) > 0 {
		s.log.Warn().Str("path", path).Strs("keys", restart).Msg("config reload: these keys only change at restart; their running values are kept")
	}
	rt, err := s.assemble(eff, s.now())
	if err != nil {
		s.log.Error().Err(err).Str("path", path).Msg("config reload rejected; the running config is kept")
		return fmt.Errorf("%w: %w", ErrConfigRejected, err)
	}
	if err := s.reloadTLSFiles(eff); err != nil {
		s.log.Error().Err(err).Str("path", path).Msg("config reload rejected; the running config is kept")
		return fmt.Errorf("%w: %w", ErrConfigRejected, err)
	}
	for _, w := range next.Warnings() {
		s.log.Warn().Str("key", w.Key).Int("line", w.Line).Msg(w.Msg)
	}
	s.startProbes(rt)
	old := s.live.Swap(rt)
	s.retire(old)
	s.reloadTLSHosts(eff)
	if s.reload.setLevel != nil && eff.Log.Level != cur.cfg.Log.Level {
		if lvl, err := zerolog.ParseLevel(eff.Log.Level); err == nil {
			s.reload.setLevel(lvl)
		}
	}
	s.log.Info().Str("path", path).Int("routes", len(eff.Routes)).Msg("config reloaded")
	return nil
}

// applyReloadable returns the running config with next's reloadable keys,
// and the keys (yaml paths) where next differs in anything else.
func applyReloadable(cur, next *config.Config) (*config.Config, []string) {
	eff := *cur
	eff.Routes = next.Routes
	eff.TrustedProxies = next.TrustedProxies
	eff.Proxy = next.Proxy
	eff.Log.Level = next.Log.Level
	eff.Server.ShutdownTimeout = next.Server.ShutdownTimeout
	eff.UI = next.UI
	// Manual certificate files may move; the TLS mode and ACME settings
	// need a restart.
	if cur.TLS.Mode == config.TLSManual && next.TLS.Mode == config.TLSManual {
		eff.TLS.CertFile, eff.TLS.KeyFile = next.TLS.CertFile, next.TLS.KeyFile
	}
	return &eff, diffKeys(reflect.ValueOf(eff), reflect.ValueOf(*next), "")
}

// diffKeys lists the yaml keys whose values differ between a and b (same
// struct type): nested structs key by key, anything else whole. Fields
// not read from YAML are skipped. Only key names are returned, never
// values (some are secrets).
func diffKeys(a, b reflect.Value, prefix string) []string {
	var keys []string
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		av, bv := a.Field(i), b.Field(i)
		switch {
		case av.Kind() == reflect.Struct:
			keys = append(keys, diffKeys(av, bv, key)...)
		case (av.Kind() == reflect.Slice || av.Kind() == reflect.Map) && av.Len() == 0 && bv.Len() == 0:
		case !reflect.DeepEqual(av.Interface(), bv.Interface()):
			keys = append(keys, key)
		}
	}
	return keys
}

// startServing starts the health probes of the current routing and, for
// a config read from a file, the watcher that reloads it; the returned
// func stops both and closes the proxy's idle connections.
func (s *Server) startServing(ctx context.Context) (stop func()) {
	s.reload.mu.Lock()
	s.reload.serving = ctx
	s.startProbes(s.live.Load())
	s.reload.mu.Unlock()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watching := make(chan struct{})
	if path := s.cfg.Path(); path != "" && s.cfg.Server.WatchConfig {
		if err := s.watchConfig(watchCtx, path, watching); err != nil {
			s.log.Warn().Err(err).Str("path", path).Msg("config file not watched: reload with SIGHUP")
			close(watching)
		}
	} else {
		close(watching)
	}
	return func() {
		stopWatch()
		<-watching
		s.reload.mu.Lock()
		defer s.reload.mu.Unlock()
		s.reload.serving = nil
		rt := s.live.Load()
		if rt.stopProbes != nil {
			rt.stopProbes()
			rt.stopProbes = nil
		}
		rt.proxy.Close()
	}
}

// startProbes starts rt's health probes while serving. Called with
// reload.mu held.
func (s *Server) startProbes(rt *routing) {
	if s.reload.serving == nil || rt.stopProbes != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.reload.serving)
	rt.proxy.StartProbes(ctx, proxy.DefaultProbeInterval)
	rt.stopProbes = cancel
}

// retire stops a replaced routing's probes and closes its idle upstream
// connections now and once more after retireGrace, when the requests
// that started on it have most likely ended. Running requests and
// WebSockets are never cut. Called with reload.mu held.
func (s *Server) retire(rt *routing) {
	if rt.stopProbes != nil {
		rt.stopProbes()
		rt.stopProbes = nil
	}
	rt.proxy.Close()
	time.AfterFunc(retireGrace, rt.proxy.Close)
}
