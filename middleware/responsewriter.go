package middleware

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// responseWriter records the status and body size of a response while
// keeping the optional interfaces of the wrapped writer reachable:
// http.Flusher and http.Hijacker directly (type assertions, as older
// WebSocket libraries do), everything else (deadlines, full duplex)
// through Unwrap, which http.ResponseController follows.
//
// It is used by one request's handler goroutine at a time, as the
// http.ResponseWriter contract requires.
type responseWriter struct {
	w           http.ResponseWriter
	status      int   // first final (non-1xx) status written; 0 if none
	bytes       int64 // body bytes written through Write/ReadFrom
	wroteHeader bool
	hijacked    bool
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
	_ http.Hijacker       = (*responseWriter)(nil)
	_ io.ReaderFrom       = (*responseWriter)(nil)
)

func newResponseWriter(w http.ResponseWriter) *responseWriter {
	return &responseWriter{w: w}
}

// Header implements http.ResponseWriter.
func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

// WriteHeader implements http.ResponseWriter. 1xx informational responses
// (other than 101) pass through without counting as the final status.
func (rw *responseWriter) WriteHeader(code int) {
	if !rw.wroteHeader {
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			rw.status = code
			rw.wroteHeader = true
		}
	}
	rw.w.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (rw *responseWriter) Write(p []byte) (int, error) {
	rw.implicitOK()
	n, err := rw.w.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the wrapped writer's io.ReaderFrom fast path (sendfile)
// available to io.Copy while still counting bytes.
func (rw *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	rw.implicitOK()
	var n int64
	var err error
	if rf, ok := rw.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{rw.w}, src)
	}
	rw.bytes += n
	return n, err
}

// Flush implements http.Flusher; it is a no-op if the wrapped writer
// cannot flush.
func (rw *responseWriter) Flush() {
	rw.implicitOK()
	_ = http.NewResponseController(rw.w).Flush()
}

// Hijack implements http.Hijacker by delegating to the wrapped writer; it
// returns an error wrapping http.ErrNotSupported if that cannot hijack
// (HTTP/2).
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rw.w).Hijack()
	if err == nil {
		rw.hijacked = true
		if !rw.wroteHeader {
			// Whoever hijacks writes the response itself, normally a 101.
			rw.status = http.StatusSwitchingProtocols
			rw.wroteHeader = true
		}
	}
	return conn, brw, err
}

// Unwrap returns the wrapped writer for http.ResponseController.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

func (rw *responseWriter) implicitOK() {
	if !rw.wroteHeader {
		rw.status = http.StatusOK
		rw.wroteHeader = true
	}
}

// Status returns the final status sent, or 0 if none yet.
func (rw *responseWriter) Status() int { return rw.status }

// writerOnly hides any ReaderFrom of the wrapped writer so io.Copy does
// not recurse.
type writerOnly struct{ io.Writer }
