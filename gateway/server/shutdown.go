package server

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// handlerExitGrace bounds how long Serve waits, after the connections are
// closed, for handlers to return before it closes the store.
const handlerExitGrace = 5 * time.Second

// requestTracker counts running handlers, WebSockets included (a hijacked
// connection's handler runs until the tunnel ends), which Shutdown does
// not wait for.
type requestTracker struct {
	n atomic.Int64
}

// track counts next's calls and ties upgrade requests (WebSockets) to
// upgrades: when it ends their context ends, which makes the reverse
// proxy close both sides of the tunnel.
func (t *requestTracker) track(upgrades context.Context, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.n.Add(1)
		defer t.n.Add(-1)
		if isUpgrade(r.Header) {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			stop := context.AfterFunc(upgrades, cancel)
			defer stop()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

func (t *requestTracker) running() int64 { return t.n.Load() }

// wait polls until no handler runs or timeout passes; it reports whether
// all returned.
func (t *requestTracker) wait(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for t.n.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// isUpgrade reports whether the request asks to switch protocols
// (Connection: upgrade with an Upgrade header), as the reverse proxy
// decides it.
func isUpgrade(h http.Header) bool {
	if h.Get("Upgrade") == "" {
		return false
	}
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}
