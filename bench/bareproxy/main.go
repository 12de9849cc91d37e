// Command bareproxy is the benchmark's baseline: a bare
// httputil.ReverseProxy with no authentication, tuned exactly like
// authgate's own proxy (gateway/proxy/transport.go and proxy.go): the same
// Transport settings (1,024 idle connections per host, 4,096 in all, 90 s idle
// timeout, 10 s dial and TLS handshake timeouts, 2 min response header
// timeout, no environment proxy), the same 16 KiB sync.Pool BufferPool and
// the default FlushInterval. It sets X-Forwarded-For/-Host/-Proto like authgate,
// writes no access log and checks nothing.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to serve on")
	upstream := flag.String("upstream", "", "upstream base URL, e.g. http://127.0.0.1:9000")
	flag.Parse()
	if err := run(*addr, *upstream); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run(addr, upstream string) error {
	target, err := url.Parse(upstream)
	if err != nil || target.Host == "" {
		return fmt.Errorf("-upstream %q: not an absolute URL", upstream)
	}
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
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = ""
			pr.SetXForwarded()
		},
		Transport:  t,
		BufferPool: newBufferPool(),
	}
	srv := &http.Server{
		Handler:           rp,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The harness reads the address from this line.
	fmt.Printf("listening %s\n", ln.Addr())
	return srv.Serve(ln)
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
