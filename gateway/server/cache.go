package server

import (
	"context"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
)

// wrapCache puts the session and user cache (session.cache_max_age,
// session.cache_size; 0 turns it off) in front of s.store. raw is the
// backend as opened: Redis feeds the cache every writer's changes through
// its invalidation channel; the embedded file is locked to this process,
// whose writes (the control socket and admin area included) all go
// through the cache. Any other backend gets a cache that never serves.
func (s *Server) wrapCache(raw store.Store) {
	sc := s.cfg.Session
	if sc.CacheMaxAge <= 0 || sc.CacheSize <= 0 {
		return
	}
	opts := cache.Options{MaxAge: sc.CacheMaxAge, MaxEntries: sc.CacheSize, Logger: s.log}
	switch b := raw.(type) {
	case *redisstore.Store:
		opts.Feed = func(ctx context.Context, h cache.Handler) { b.Invalidations(ctx, h) }
	case *embedded.Store:
		opts.SoleWriter = true
	}
	c := cache.New(s.store, opts, s.now)
	s.metrics.ReadCache(c)
	s.store = c
}
