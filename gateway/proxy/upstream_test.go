package proxy

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/internal/testkit"
)

// The upstream sends one chunk and blocks; the client must get that chunk
// before the upstream finishes.
func TestStreamingFlush(t *testing.T) {
	release := make(chan struct{})
	done := make(chan struct{})
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "second\n")
	}))
	g := newGateway(t, Options{Routes: []Route{{Name: "r", Upstream: mustURL(t, up.URL)}}})
	res := g.do(t, http.MethodGet, "/", nil)
	buf := make([]byte, len("first\n"))
	readDone := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(res.Body, buf)
		readDone <- err
	}()
	select {
	case err := <-readDone:
		if err != nil || string(buf) != "first\n" {
			t.Fatalf("first chunk %q, %v", buf, err)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("first chunk not flushed while upstream still running")
	}
	select {
	case <-done:
		t.Fatal("upstream finished before release")
	default:
	}
	close(release)
	rest, err := io.ReadAll(res.Body)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func wsEcho(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo:"+r.Header.Get("Remote-User")+":"), msg...)); err != nil {
				return
			}
		}
	})
}

func TestWebSocketThroughProxy(t *testing.T) {
	plain := newUpstream(t, wsEcho(t))
	tlsUp := httptest.NewUnstartedServer(wsEcho(t))
	tlsUp.EnableHTTP2 = true
	tlsUp.StartTLS()
	t.Cleanup(tlsUp.Close)

	g := newGateway(t, Options{Routes: []Route{
		{Name: "plain", Upstream: mustURL(t, plain.URL)},
		{Name: "tls", PathPrefix: "/tls", Upstream: mustURL(t, tlsUp.URL), InsecureSkipVerify: true},
	}})
	g.set(nil, &Identity{User: "alice"})
	for _, path := range []string{"/ws", "/tls/ws"} {
		t.Run(path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.srv.URL, "http")+path, &websocket.DialOptions{
				HTTPHeader: http.Header{"Remote-User": {"mallory"}},
			})
			if err != nil {
				t.Fatalf("dial through proxy: %v", err)
			}
			defer c.CloseNow()
			for _, msg := range []string{"hello", "world"} {
				if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
					t.Fatal(err)
				}
				_, got, err := c.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if want := "echo:alice:" + msg; string(got) != want {
					t.Fatalf("got %q; want %q", got, want)
				}
			}
			_ = c.Close(websocket.StatusNormalClosure, "")
		})
	}
}

func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTLSUpstreams(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure "+r.Proto)
	}))
	up.EnableHTTP2 = true
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	up.StartTLS()
	t.Cleanup(up.Close)
	ca := writeCA(t, up)
	u := mustURL(t, up.URL)

	var mu sync.Mutex
	var handled []error
	var logs testkit.SyncBuffer
	g := newGateway(t, Options{
		Routes: []Route{
			{Name: "ca", PathPrefix: "/ca", Upstream: u, CAFile: ca},
			{Name: "ca-servername", PathPrefix: "/ca-sn", Upstream: u, CAFile: ca, ServerName: "example.com"},
			{Name: "ca-wrongname", PathPrefix: "/ca-wrong", Upstream: u, CAFile: ca, ServerName: "wrong.example"},
			{Name: "insecure", PathPrefix: "/insecure", Upstream: u, InsecureSkipVerify: true},
			{Name: "untrusted", PathPrefix: "/untrusted", Upstream: u},
		},
		Logger: zerolog.New(&logs),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			mu.Lock()
			handled = append(handled, err)
			mu.Unlock()
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<h1>The panel is unavailable</h1>")
		},
	})
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/ca", http.StatusOK, "secure HTTP/2.0"},
		{"/ca-sn", http.StatusOK, "secure HTTP/2.0"},
		{"/insecure", http.StatusOK, "secure HTTP/2.0"},
		{"/ca-wrong", http.StatusBadGateway, "<h1>The panel is unavailable</h1>"},
		{"/untrusted", http.StatusBadGateway, "<h1>The panel is unavailable</h1>"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			mu.Lock()
			handled = nil
			mu.Unlock()
			res := g.do(t, http.MethodGet, tt.path, nil)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status || string(body) != tt.body {
				t.Fatalf("status %d body %q; want %d %q", res.StatusCode, body, tt.status, tt.body)
			}
			mu.Lock()
			defer mu.Unlock()
			if (tt.status == http.StatusBadGateway) != (len(handled) == 1) {
				t.Fatalf("ErrorHandler calls: %v", handled)
			}
		})
	}
	if !strings.Contains(logs.String(), `"route":"untrusted"`) {
		t.Fatalf("failure not logged with route name: %s", logs.String())
	}
}

func TestUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens here now

	var logs testkit.SyncBuffer
	g := newGateway(t, Options{
		Routes: []Route{{Name: "down", Upstream: mustURL(t, "http://"+addr)}},
		Logger: zerolog.New(&logs),
	})
	res := g.do(t, http.MethodGet, "/x", nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadGateway || string(body) != "Bad Gateway\n" {
		t.Fatalf("status %d body %q; want plain 502", res.StatusCode, body)
	}
	for _, leak := range []string{addr, "refused", "dial"} {
		if strings.Contains(string(body), leak) {
			t.Fatalf("body leaks %q: %q", leak, body)
		}
	}
	if !strings.Contains(logs.String(), `"route":"down"`) || !strings.Contains(logs.String(), "refused") {
		t.Fatalf("log = %s", logs.String())
	}

	var gotErr error
	var gotPath string
	g2 := newGateway(t, Options{
		Routes: []Route{{Name: "down", Upstream: mustURL(t, "http://"+addr)}},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			gotErr, gotPath = err, r.URL.Path
			http.Error(w, "custom", http.StatusBadGateway)
		},
	})
	res = g2.do(t, http.MethodGet, "/x/y", nil)
	body, _ = io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadGateway || string(body) != "custom\n" || gotErr == nil {
		t.Fatalf("custom handler: status %d body %q err %v", res.StatusCode, body, gotErr)
	}
	if gotPath != "/x/y" {
		t.Fatalf("ErrorHandler got path %q; want the client's request", gotPath)
	}
}

func TestBufferPool(t *testing.T) {
	p := newBufferPool()
	b := p.Get()
	if len(b) != bufferSize {
		t.Fatalf("len %d", len(b))
	}
	p.Put(b[:10])
	if got := p.Get(); len(got) != bufferSize {
		t.Fatalf("len after Put of resliced buffer %d", len(got))
	}
	p.Put(make([]byte, 10)) // too small: dropped, not returned later
	for range 4 {
		if got := p.Get(); len(got) != bufferSize {
			t.Fatalf("short buffer handed out: %d", len(got))
		}
	}
}
