package auth

import (
	"context"
	"net/http"
	"net/url"
	"slices"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/stream"
	"github.com/authgate/authgate/middleware"
)

// Streams is the registry ServeHTTP adds every forwarded request with a
// session to while it runs (a *stream.Tracker), so that one still running
// when its session no longer passes (an open WebSocket, a streamed
// response) is ended: see gateway/stream.
type Streams interface {
	Add(s stream.Stream) uint64
	Remove(id uint64)
}

// forwardWatched forwards an allowed request with a session (verdict v,
// for target t) under a context the Streams may cancel, registered for
// as long as the forward runs.
func (g *Gate) forwardWatched(w http.ResponseWriter, r *http.Request, v verdict, t target, c middleware.Client) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	rc := &recheck{g: g, t: t, client: c, method: r.Method, url: *r.URL, host: r.Host, header: r.Header.Clone(),
		log: zerolog.Ctx(r.Context()), route: v.route.Name, id: *v.id}
	id := g.d.Streams.Add(stream.Stream{Check: rc.check, Cancel: cancel, Log: rc.log, User: v.id.User, Route: v.route.Name})
	defer func() { // also when the proxy aborts a cut stream (panics)
		g.d.Streams.Remove(id)
		if ctx.Err() != nil && r.Context().Err() == nil {
			// Ended by the watcher, not by the client or a shutdown.
			middleware.SetResult(r.Context(), "stream_closed")
		}
	}()
	g.d.Upstreams.Forward(w, r.WithContext(ctx), v.route, v.id)
}

// recheck is what a running request needs to be authorised again: a copy
// of how it arrived and what it was allowed as.
type recheck struct {
	g      *Gate
	t      target
	client middleware.Client
	method string
	url    url.URL
	host   string
	header http.Header
	log    *zerolog.Logger
	// route and id are what the forward was allowed to and as.
	route string
	id    proxy.Identity
}

// check runs the gate's decision (authorize) again on a copy of the
// original request, with sessions read without touch (an open tunnel is
// not activity) and nothing written to the access log. "" lets the
// request go on: still allowed, to the same route, as the same identity.
// Allowed re-checks log nothing; a refusal logs its decision line once,
// since the stream is then ended.
func (rc *recheck) check(ctx context.Context) string {
	ctx = middleware.WithClient(rc.log.WithContext(ctx), rc.client)
	u := rc.url
	r := (&http.Request{Method: rc.method, URL: &u, Host: rc.host, Header: rc.header,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(ctx)
	q := *rc.g
	q.d.Sessions = q.d.Untouched
	return closeReason(q.authorize(r, rc.t), rc.route, rc.id)
}

// closeReason maps a verdict on a running request to the reason to end
// it, "" when it may go on.
func closeReason(v verdict, route string, id proxy.Identity) string {
	switch v.kind {
	case verdictAllow:
		if v.route == nil || v.route.Name != route || v.id == nil ||
			v.id.User != id.User || !slices.Equal(v.id.Groups, id.Groups) {
			return stream.ReasonIdentityChanged
		}
		return ""
	case verdictChallenge:
		switch v.page {
		case LoginPage:
			return stream.ReasonSignedOut
		case PasswordPage:
			return stream.ReasonPasswordChange
		default:
			return stream.ReasonSecondFactor
		}
	default:
		if v.err != nil {
			switch v.err.Status {
			case http.StatusForbidden:
				return stream.ReasonNotAllowed
			case http.StatusServiceUnavailable:
				return stream.ReasonUnavailable
			}
		}
		return stream.ReasonDenied
	}
}
