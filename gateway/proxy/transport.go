package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"time"
)

type transportConfig struct {
	dial, tlsHandshake, responseHeader, idle time.Duration
	maxIdlePerHost                           int
}

// newTransport builds the route's own Transport: keep-alives, bounded
// dials and handshakes, HTTP/2 attempted for https upstreams, and TLS
// trust from the route. Environment proxies are never used for upstreams.
func newTransport(r Route, c transportConfig) (*http.Transport, error) {
	d := &net.Dialer{Timeout: c.dial, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          4 * c.maxIdlePerHost,
		MaxIdleConnsPerHost:   c.maxIdlePerHost,
		IdleConnTimeout:       c.idle,
		TLSHandshakeTimeout:   c.tlsHandshake,
		ResponseHeaderTimeout: c.responseHeader,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     r.Upstream.Scheme == "https",
	}
	if r.Upstream.Scheme == "https" {
		cfg := &tls.Config{
			MinVersion:         tls.VersionTLS12,
			ServerName:         r.ServerName,
			InsecureSkipVerify: r.InsecureSkipVerify, //nolint:gosec // explicit per-route opt-in
		}
		if r.CAFile != "" {
			pool, err := loadCAFile(r.CAFile)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = pool
		}
		t.TLSClientConfig = cfg
	}
	return t, nil
}

// errNoCerts is returned for a CA file without any PEM certificate.
var errNoCerts = errors.New("no PEM certificates found")

func loadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: %w", path, errNoCerts)
	}
	return pool, nil
}

var _ httputil.BufferPool = (*bufferPool)(nil)

// bufferSize is the body copy buffer: one per response being copied, so
// it bounds memory with many concurrent clients; 16 KiB still moves large
// downloads in few system calls (nginx's proxy buffers are 4–8 KiB).
const bufferSize = 16 << 10

// bufferPool is the httputil.BufferPool shared by every route: 16 KiB
// copy buffers recycled through a sync.Pool. The pool holds array
// pointers, which a returned slice converts back to without allocating.
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
