package demo

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

const (
	wsReadLimit = 64 << 10
	wsIdle      = 10 * time.Minute
)

// websocket echoes every message back unchanged until the
// client closes or is idle for wsIdle.
func (p *panel) websocket(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "Forbidden origin", http.StatusForbidden)
		return
	}
	// The origin was checked above against Host and X-Forwarded-Host
	// (the panel is reached through the gateway, which sets the latter).
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		p.log.Debug().Err(err).Msg("demo: websocket accept failed")
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(wsReadLimit)
	for {
		ctx, cancel := context.WithTimeout(r.Context(), wsIdle)
		typ, msg, err := c.Read(ctx)
		if err != nil {
			cancel()
			if s := websocket.CloseStatus(err); s != websocket.StatusNormalClosure && s != websocket.StatusGoingAway &&
				!errors.Is(err, context.Canceled) {
				p.log.Debug().Err(err).Msg("demo: websocket read ended")
			}
			return
		}
		err = c.Write(ctx, typ, msg)
		cancel()
		if err != nil {
			return
		}
	}
}

// sameOrigin accepts requests without Origin (non-browser clients) and
// browser requests whose Origin host is the Host or X-Forwarded-Host the
// request was made to.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	for _, h := range []string{r.Host, r.Header.Get("X-Forwarded-Host")} {
		if h != "" && strings.EqualFold(u.Host, strings.TrimSpace(h)) {
			return true
		}
	}
	return false
}
