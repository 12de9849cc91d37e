package proxy

import (
	"net/http"
	"time"
)

// Observer receives the outcome of every forwarded request (a
// *metrics.Metrics). Its methods are called on the request path and must
// not block.
type Observer interface {
	// ProxyResponse reports that a request of route was answered with
	// status (0: the client left before any answer was written); took is
	// the time until the response headers were written.
	ProxyResponse(route string, status int, took time.Duration)
	// UpstreamError reports that route's upstream could not be reached or
	// did not answer in time.
	UpstreamError(route string)
}

// observedWriter remembers the status of the response and when its
// headers were written. Unwrap lets http.ResponseController (used by
// ReverseProxy to flush and to hijack for upgrades) reach the original.
type observedWriter struct {
	http.ResponseWriter
	now    func() time.Time
	status int
	at     time.Time
}

func (w *observedWriter) WriteHeader(code int) {
	if w.status == 0 || w.status < 200 && code >= 200 {
		w.status, w.at = code, w.now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *observedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status, w.at = http.StatusOK, w.now()
	}
	return w.ResponseWriter.Write(b)
}

func (w *observedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observeUpgrade notes a 101 answer: ReverseProxy writes it on the
// hijacked connection, past the observed writer.
func (p *Proxy) observeUpgrade(res *http.Response) {
	if res.StatusCode != http.StatusSwitchingProtocols || res.Request == nil {
		return
	}
	if st, _ := res.Request.Context().Value(forwardKey{}).(*forwardState); st != nil && st.out != nil && st.out.status == 0 {
		st.out.status, st.out.at = res.StatusCode, st.out.now()
	}
}
