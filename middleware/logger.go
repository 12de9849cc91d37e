package middleware

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// maxLoggedLen caps request-derived strings (path, host) in log fields.
const maxLoggedLen = 512

// Logger puts a request-scoped logger into the context (read it with
// LoggerFrom or zerolog.Ctx) carrying request_id, method and path, and
// after the request logs exactly one info event "request" with status,
// bytes, duration_ms, client_ip, host and, when handlers set them through
// SetRouteName, SetUser and SetResult, route, user and result.
//
// Only the URL path is logged, never the query (it can carry tokens), and
// never cookies or Authorization headers. If the handler panics past this
// middleware the event is still logged, with "panicked": true, or with
// "aborted": true when the panic was http.ErrAbortHandler seen by Recover
// (net/http's way to cut a response short on purpose, as ReverseProxy
// does when the client leaves mid-copy: no bug). "upgrade_refused": true
// marks an upgrade the upstream did not accept (SetUpgradeRefused).
//
// Place it inside RequestID so the id is known.
func Logger(base zerolog.Logger) func(http.Handler) http.Handler {
	return logger(base, time.Now)
}

func logger(base zerolog.Logger, now func() time.Time) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := now()
			l := base.With().
				Str("request_id", RequestIDFrom(r.Context())).
				Str("method", r.Method).
				Str("path", truncate(r.URL.Path)).
				Logger()
			ctx := l.WithContext(r.Context())
			ann := &Annotations{log: zerolog.Ctx(ctx)}
			ctx = context.WithValue(ctx, annotationsKey{}, ann)
			rw := newResponseWriter(w)

			completed := false
			defer func() {
				logRequest(&l, r, rw, ann, now().Sub(start), !completed)
			}()
			next.ServeHTTP(rw, r.WithContext(ctx))
			completed = true
		})
	}
}

func logRequest(l *zerolog.Logger, r *http.Request, rw *responseWriter, ann *Annotations, d time.Duration, panicked bool) {
	snap := ann.snapshot()
	clientIP, host := "", ""
	if snap.client != nil {
		clientIP, host = snap.client.IP.String(), snap.client.Host
	} else if c, ok := ClientFrom(r.Context()); ok {
		clientIP, host = c.IP.String(), c.Host
	} else {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			clientIP = ap.Addr().Unmap().String()
		}
		host = strings.ToLower(truncate(r.Host))
	}
	status := rw.Status()
	if status == 0 && !panicked {
		// The handler wrote nothing: net/http sends 200 with no body.
		status = http.StatusOK
	}
	e := l.Info().
		Int("status", status).
		Int64("bytes", rw.bytes).
		Float64("duration_ms", float64(d.Microseconds())/1000).
		Str("client_ip", clientIP).
		Str("host", host)
	if snap.route != "" {
		e = e.Str("route", snap.route)
	}
	if snap.user != "" {
		e = e.Str("user", snap.user)
	}
	if snap.result != "" {
		e = e.Str("result", snap.result)
	}
	if rw.hijacked {
		e = e.Bool("hijacked", true)
	}
	if snap.upgradeRefused {
		e = e.Bool("upgrade_refused", true)
	}
	switch {
	case panicked && snap.aborted:
		e = e.Bool("aborted", true)
	case panicked:
		e = e.Bool("panicked", true)
	}
	e.Msg("request")
}

// LoggerFrom returns the request-scoped logger stored by Logger (the same
// as zerolog.Ctx). Without one it returns zerolog's default context logger,
// which is disabled unless zerolog.DefaultContextLogger is set.
func LoggerFrom(ctx context.Context) *zerolog.Logger {
	return zerolog.Ctx(ctx)
}

// Annotations is the mutable per-request holder through which handlers add
// fields to the access-log event Logger writes after the request. It is
// safe for concurrent use. Obtain it with AnnotationsFrom, or use the
// SetRouteName, SetUser and SetResult shortcuts.
type Annotations struct {
	// log is the request's own logger, the one in its context: made by
	// Logger for this request alone (addLogField).
	log            *zerolog.Logger
	mu             sync.Mutex
	route          string
	user           string
	result         string
	client         *Client
	aborted        bool
	upgradeRefused bool
}

type annotationsKey struct{}

type annotationsSnapshot struct {
	route, user, result     string
	client                  *Client
	aborted, upgradeRefused bool
}

// AnnotationsFrom returns the holder Logger put in ctx, or nil if none.
// All Annotations methods accept a nil receiver and then do nothing.
func AnnotationsFrom(ctx context.Context) *Annotations {
	a, _ := ctx.Value(annotationsKey{}).(*Annotations)
	return a
}

// SetRoute sets the access log's "route" field (e.g. "login", "proxy:app").
func (a *Annotations) SetRoute(name string) {
	if a != nil {
		a.set(&a.route, name)
	}
}

// SetUser sets the access log's "user" field (a username, never a secret).
func (a *Annotations) SetUser(user string) {
	if a != nil {
		a.set(&a.user, user)
	}
}

// SetResult sets the access log's "result" field (e.g. "bad_password").
func (a *Annotations) SetResult(result string) {
	if a != nil {
		a.set(&a.result, result)
	}
}

func (a *Annotations) set(field *string, v string) {
	a.mu.Lock()
	*field = truncate(v)
	a.mu.Unlock()
}

func (a *Annotations) setClient(c Client) {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.client = &c
	a.mu.Unlock()
}

// addLogField adds a field to every later line of the request's logger
// (RealClient's client_ip). The logger is changed in place, with zerolog's
// UpdateContext, rather than replaced by a child in a new context: it was
// made for this request alone, and only the middleware chain, before the
// handlers run, calls this. The access-log line is written from Logger's
// own copy and names its fields itself.
func (a *Annotations) addLogField(key, value string) {
	if a == nil || a.log == nil {
		return
	}
	a.log.UpdateContext(func(c zerolog.Context) zerolog.Context { return c.Str(key, value) })
}

func (a *Annotations) snapshot() annotationsSnapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	return annotationsSnapshot{route: a.route, user: a.user, result: a.result, client: a.client,
		aborted: a.aborted, upgradeRefused: a.upgradeRefused}
}

// flag sets a boolean field.
func (a *Annotations) flag(field *bool) {
	if a == nil {
		return
	}
	a.mu.Lock()
	*field = true
	a.mu.Unlock()
}

// SetAborted records that the request is being aborted with
// http.ErrAbortHandler (Recover calls it): the access log then says
// "aborted": true instead of "panicked": true.
func SetAborted(ctx context.Context) {
	if a := AnnotationsFrom(ctx); a != nil {
		a.flag(&a.aborted)
	}
}

// SetUpgradeRefused records that the upstream answered the request's
// protocol switch (a WebSocket) with another status than 101: the access
// log says "upgrade_refused": true.
func SetUpgradeRefused(ctx context.Context) {
	if a := AnnotationsFrom(ctx); a != nil {
		a.flag(&a.upgradeRefused)
	}
}

// SetRouteName sets the access log's "route" field for the request whose
// context is ctx (r.Context()). It does nothing outside Logger.
func SetRouteName(ctx context.Context, name string) { AnnotationsFrom(ctx).SetRoute(name) }

// SetUser sets the access log's "user" field; see SetRouteName.
func SetUser(ctx context.Context, user string) { AnnotationsFrom(ctx).SetUser(user) }

// SetResult sets the access log's "result" field; see SetRouteName.
func SetResult(ctx context.Context, result string) { AnnotationsFrom(ctx).SetResult(result) }

func truncate(s string) string {
	if len(s) > maxLoggedLen {
		return s[:maxLoggedLen]
	}
	return s
}
