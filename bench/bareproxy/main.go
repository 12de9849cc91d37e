// Command bareproxy is the benchmark's baseline: a bare
// httputil.ReverseProxy with no authentication, no access log and no
// checks, in one of two styles (-style):
//
//   - plain (the default): what a Go user writes.
//     httputil.NewSingleHostReverseProxy(target), whose Director rewrites
//     the URL and adds X-Forwarded-For (nothing else: no X-Forwarded-Host
//     or -Proto, the Host header passed on as the client sent it); its
//     Transport is a clone of http.DefaultTransport with the one tuning
//     everyone does, MaxIdleConnsPerHost 1024 (DefaultTransport keeps 2;
//     its other settings stay: 100 idle connections in all, 90 s idle
//     timeout, 30 s dial timeout, HTTP/2 attempted, the environment's
//     proxy); a 16 KiB sync.Pool BufferPool; the default FlushInterval.
//   - tuned: authgate's own proxy settings (gateway/proxy/transport.go and
//     proxy.go). Its own Transport (1,024 idle connections per host, 4,096
//     in all, 90 s idle timeout, 10 s dial and TLS handshake timeouts,
//     2 min response header timeout, no environment proxy), the same
//     16 KiB BufferPool and default FlushInterval, and a Rewrite that
//     rebuilds X-Forwarded-For/-Host/-Proto (SetXForwarded) and sends the
//     upstream's own Host, like authgate.
//
// Both serve with the same http.Server (10 s ReadHeaderTimeout, 120 s
// IdleTimeout). -stats starts a second listener whose GET /stats answers
// the process's cumulative heap allocations (runtime/metrics
// /gc/heap/allocs:bytes, /gc/heap/allocs:objects and
// /gc/heap/tiny/allocs:objects) as JSON, for the allocations per request.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime/metrics"
	"sync"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to serve on")
	upstream := flag.String("upstream", "", "upstream base URL, e.g. http://127.0.0.1:9000")
	style := flag.String("style", "plain", `"plain": NewSingleHostReverseProxy with a DefaultTransport clone (MaxIdleConnsPerHost 1024); "tuned": authgate's Transport settings and X-Forwarded-* rebuild`)
	stats := flag.String("stats", "", `address of the allocation stats listener, e.g. 127.0.0.1:0 ("" = none)`)
	flag.Parse()
	if err := run(*addr, *upstream, *style, *stats); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run(addr, upstream, style, statsAddr string) error {
	target, err := url.Parse(upstream)
	if err != nil || target.Host == "" {
		return fmt.Errorf("-upstream %q: not an absolute URL", upstream)
	}
	var rp *httputil.ReverseProxy
	switch style {
	case "plain":
		rp = plainProxy(target)
	case "tuned":
		rp = tunedProxy(target)
	default:
		return fmt.Errorf("-style %q: want plain or tuned", style)
	}
	srv := &http.Server{
		Handler:           rp,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	if statsAddr != "" {
		sln, err := net.Listen("tcp", statsAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /stats", serveStats)
		go func() { _ = (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(sln) }()
		// The harness reads the stats address from this line, printed
		// before the listening line.
		fmt.Printf("stats %s\n", sln.Addr())
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The harness reads the address from this line.
	fmt.Printf("listening %s\n", ln.Addr())
	return srv.Serve(ln)
}

// plainProxy is the proxy a Go user writes: the standard constructor, a
// DefaultTransport clone with more idle connections per host, pooled
// copy buffers.
func plainProxy(target *url.URL) *httputil.ReverseProxy {
	rp := httputil.NewSingleHostReverseProxy(target)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 1024
	rp.Transport = t
	rp.BufferPool = newBufferPool()
	return rp
}

// tunedProxy is authgate's proxy without authgate: its Transport
// settings and its forwarded-header rebuild.
func tunedProxy(target *url.URL) *httputil.ReverseProxy {
	const maxIdlePerHost = 1024 // authgate's default MaxIdleConnsPerHost
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          4 * maxIdlePerHost,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     target.Scheme == "https",
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = ""
			pr.SetXForwarded()
		},
		Transport:  t,
		BufferPool: newBufferPool(),
	}
}

// statNames are the runtime/metrics counters GET /stats answers.
var statNames = []string{"/gc/heap/allocs:bytes", "/gc/heap/allocs:objects", "/gc/heap/tiny/allocs:objects"}

// serveStats answers the cumulative allocation counters as a JSON object
// keyed by their runtime/metrics names.
func serveStats(w http.ResponseWriter, _ *http.Request) {
	samples := make([]metrics.Sample, len(statNames))
	for i, n := range statNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	out := make(map[string]uint64, len(samples))
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			out[s.Name] = s.Value.Uint64()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

const bufferSize = 16 << 10

// bufferPool recycles 16 KiB copy buffers, as authgate's proxy does
// (array pointers, so Put does not allocate).
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([bufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[bufferSize]byte)[:] }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < bufferSize {
		return
	}
	b.p.Put((*[bufferSize]byte)(buf[:bufferSize]))
}
