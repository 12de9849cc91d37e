package middleware

import (
	"fmt"
	"net/http"
	"runtime/debug"
)

// keepOnPanic lists the staged headers a 500 after a panic keeps.
var keepOnPanic = map[string]bool{
	RequestIDHeader:             true,
	"Content-Security-Policy":   true,
	"X-Frame-Options":           true,
	"X-Content-Type-Options":    true,
	"Referrer-Policy":           true,
	"Strict-Transport-Security": true,
}

// Recover turns a panic in a later handler into a logged error and, if no
// response header has been sent yet, a 500 rendered by render (nil renders
// a plain-text 500). The panic value and stack go to the request logger
// (LoggerFrom) at error level, and the access log's result is set to
// "panic".
//
// http.ErrAbortHandler is re-panicked untouched (it is net/http's way to
// abort a response silently) after marking the request aborted for the
// access log (SetAborted). A panic after the header was sent is logged
// and then turned into http.ErrAbortHandler, so the connection is cut and
// the client sees a truncated response instead of a seemingly complete one.
//
// Place it inside Logger so the stack lands in the request's log context.
func Recover(render func(w http.ResponseWriter, r *http.Request)) func(http.Handler) http.Handler {
	if render == nil {
		render = func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := newResponseWriter(w)
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler { //nolint:errorlint // net/http compares the same way
					// An abort on purpose (ReverseProxy when the client
					// leaves mid-copy), not a bug: the access log says so.
					SetAborted(r.Context())
					panic(p)
				}
				sent := rw.wroteHeader || rw.hijacked
				LoggerFrom(r.Context()).Error().
					Str("panic", fmt.Sprint(p)).
					Str("stack", string(debug.Stack())).
					Bool("headers_sent", sent).
					Msg("panic serving request")
				SetResult(r.Context(), "panic")
				if sent {
					panic(http.ErrAbortHandler)
				}
				// Drop headers the failed handler may have staged
				// (Set-Cookie, Location, Content-Length …), keeping the
				// request id and the security headers.
				h := w.Header()
				for k := range h {
					if !keepOnPanic[k] {
						delete(h, k)
					}
				}
				h.Set("Cache-Control", "no-store")
				render(w, r)
			}()
			next.ServeHTTP(rw, r)
		})
	}
}
