package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/middleware"
)

// The proxy's share of an authenticated request, without the gate:
//
//	go test -run '^$' -bench . -benchmem ./gateway/proxy

// browserRequest is what a signed-in browser sends for a panel asset.
func browserRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://panel.example/cpsess123/frontend/style.css?v=3", nil)
	h := r.Header
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	h.Set("Accept", "text/css,*/*;q=0.1")
	h.Set("Accept-Language", "en-GB,en;q=0.5")
	h.Set("Accept-Encoding", "gzip, deflate, br")
	h.Set("Referer", "http://panel.example/cpsess123/frontend/index.html")
	h.Set("Cookie", "authgate_session=QmVuY2htYXJrU2Vzc2lvbklkZW50aWZpZXJPZjQzQ2hhcnM; cpsession=abc%3Adef; timezone=Europe/London")
	h.Set("Sec-Fetch-Dest", "style")
	h.Set("Sec-Fetch-Mode", "no-cors")
	h.Set("Sec-Fetch-Site", "same-origin")
	r.RemoteAddr = "192.0.2.10:51234"
	return r.WithContext(middleware.WithClient(r.Context(), middleware.Client{
		IP: netip.MustParseAddr("192.0.2.10"), Peer: netip.MustParseAddr("192.0.2.10"),
		Scheme: "http", Host: "panel.example",
	}))
}

func benchProxy(b *testing.B, upstream string) *Proxy {
	b.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(Options{
		Routes:       []Route{{Name: "panel", Host: "panel.example", Upstream: u}},
		StripCookies: []string{"authgate_session"},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p
}

// BenchmarkRewrite is the outbound request rewrite alone: identity
// headers stripped in every spelling, identity set, gateway cookie
// removed, X-Forwarded-* rebuilt.
func BenchmarkRewrite(b *testing.B) {
	p := benchProxy(b, "http://127.0.0.1:1")
	rt := &p.routes[0].route
	in := browserRequest()
	st := &forwardState{in: in, path: "/cpsess123/frontend/style.css", client: clientOf(in), id: &Identity{User: "alice", Groups: []string{"admins"}}}
	in = in.WithContext(context.WithValue(in.Context(), forwardKey{}, st))
	b.ReportAllocs()
	for b.Loop() {
		out := in.Clone(in.Context())
		p.rewrite(&httputil.ProxyRequest{In: in, Out: out}, rt)
		if out.Header.Get("Remote-User") != "alice" || strings.Contains(out.Header.Get("Cookie"), "authgate_session") {
			b.Fatal("rewrite lost the identity or kept the gateway cookie")
		}
	}
}

// BenchmarkForward is Forward through a keep-alive connection to a real
// loopback upstream answering 1 KB.
func BenchmarkForward(b *testing.B) {
	body := strings.Repeat("x", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		_, _ = io.WriteString(w, body)
	}))
	b.Cleanup(up.Close)
	p := benchProxy(b, up.URL)
	rt := &p.routes[0].route
	id := &Identity{User: "alice", Groups: []string{"admins"}}
	in := browserRequest()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.Forward(w, in, rt, id)
		if w.Code != http.StatusOK || w.Body.Len() != len(body) {
			b.Fatalf("status %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}
