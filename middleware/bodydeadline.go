package middleware

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// BodyDeadline gives a request's body d to arrive, counted from when the
// handler starts (the headers are in by then): a client that sends its
// headers and then stalls, or trickles the body, gets a read error once d
// has passed (the handler answers it as a bad request, and net/http then
// closes the connection). The deadline is the connection's (with HTTP/2
// the stream's) read deadline, set with
// http.ResponseController.SetReadDeadline; it is lifted once the body has
// been read to its end (net/http's HTTP/1 server also does that itself),
// so a handler that works longer afterwards keeps its connection. The
// access log's result is "body_timeout" when the deadline cut the body
// off.
//
// Requests without a body, d <= 0 and connections that cannot take a
// deadline are left alone. Put it only in front of handlers whose bodies
// are small (forms): a long upload must not get a deadline.
func BodyDeadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if d <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
				next.ServeHTTP(w, r)
				return
			}
			body := &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
			r.Body = body
			next.ServeHTTP(w, r)
			if body.timedOut() {
				SetResult(r.Context(), "body_timeout")
				LoggerFrom(r.Context()).Warn().Dur("timeout", d).Msg("request body not received in time; connection closed")
			}
		})
	}
}

// deadlineBody lifts the read deadline when the body is read to its end
// and remembers whether a read ran into it.
type deadlineBody struct {
	io.ReadCloser
	lift func()

	mu      sync.Mutex
	done    bool
	timeout bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.mu.Lock()
		switch {
		case errors.Is(err, io.EOF) && !b.done:
			b.done = true
			b.lift()
		case errors.Is(err, os.ErrDeadlineExceeded):
			b.timeout = true
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *deadlineBody) timedOut() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timeout
}
