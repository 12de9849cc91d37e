package middleware

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestLoggingWriterHijackRaw hijacks through the logging writer with a type
// assertion (as older WebSocket libraries do) on a real server.
func TestLoggingWriterHijackRaw(t *testing.T) {
	base, logs := newTestLogger()
	srv := httptest.NewServer(chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("logging writer lost http.Hijacker")
			http.Error(w, "no hijack", 500)
			return
		}
		conn, brw, err := hj.Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo:" + line)
		_ = brw.Flush()
	}), RequestID(), Logger(base), Recover(nil)))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, _ = io.WriteString(conn, "ping\n")
	got, err := br.ReadString('\n')
	if err != nil || got != "echo:ping\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	conn.Close()
	waitFor(t, func() bool { return len(logs.requestEvents(t)) == 1 })
	ev := logs.requestEvents(t)[0]
	if ev["status"] != 101.0 || ev["hijacked"] != true {
		t.Errorf("event = %v", ev)
	}
}

// TestLoggingWriterWebSocketThroughReverseProxy runs a real WebSocket
// through httputil.ReverseProxy behind Logger: the proxy hijacks via
// http.ResponseController, i.e. through Unwrap.
func TestLoggingWriterWebSocketThroughReverseProxy(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo:"), msg...)); err != nil {
				return
			}
		}
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}

	base, logs := newTestLogger()
	gw := httptest.NewServer(chain(proxy, RequestID(), Logger(base), Recover(nil), RealClient(nil)))
	defer gw.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/socket", nil)
	if err != nil {
		t.Fatalf("dial through gateway: %v", err)
	}
	if resp.Header.Get(RequestIDHeader) == "" {
		t.Error("no request id on the 101 response")
	}
	for _, m := range []string{"one", "two"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != "echo:"+m {
			t.Fatalf("read %q, %v", got, err)
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool { return len(logs.requestEvents(t)) == 1 })
	ev := logs.requestEvents(t)[0]
	if ev["status"] != 101.0 || ev["hijacked"] != true || ev["path"] != "/socket" {
		t.Errorf("event = %v", ev)
	}
}

// TestLoggingWriterFlush proves a flushed chunk reaches the client while
// the handler is still running.
func TestLoggingWriterFlush(t *testing.T) {
	clientGotFirst := make(chan struct{})
	base, logs := newTestLogger()
	srv := httptest.NewServer(chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := w.(http.Flusher)
		if !ok {
			t.Error("logging writer lost http.Flusher")
			return
		}
		_, _ = io.WriteString(w, "first\n")
		f.Flush()
		select {
		case <-clientGotFirst:
		case <-time.After(5 * time.Second):
			t.Error("client never saw the flushed chunk")
		}
		_, _ = io.WriteString(w, "second\n")
		// ResponseController finds the same flusher through Unwrap.
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
	}), RequestID(), Logger(base), Recover(nil)))
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); err != nil || l != "first\n" {
		t.Fatalf("first chunk %q, %v", l, err)
	}
	close(clientGotFirst)
	if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
		t.Fatalf("rest %q", rest)
	}
	waitFor(t, func() bool { return len(logs.requestEvents(t)) == 1 })
	if ev := logs.requestEvents(t)[0]; ev["bytes"] != 13.0 || ev["status"] != 200.0 {
		t.Errorf("event = %v", ev)
	}
}

// TestLoggingWriterUnwrap checks that http.ResponseController reaches the
// real writer's deadlines through the logging writer.
func TestLoggingWriterUnwrap(t *testing.T) {
	base, _ := newTestLogger()
	srv := httptest.NewServer(Logger(base)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline: %v", err)
		}
		if err := rc.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetReadDeadline: %v", err)
		}
		if err := rc.EnableFullDuplex(); err != nil {
			t.Errorf("EnableFullDuplex: %v", err)
		}
	})))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestLoggingWriterHijackUnsupported: a writer that cannot hijack yields an
// error wrapping http.ErrNotSupported, not a panic.
func TestLoggingWriterHijackUnsupported(t *testing.T) {
	rw := newResponseWriter(httptest.NewRecorder())
	if _, _, err := rw.Hijack(); !errors.Is(err, http.ErrNotSupported) {
		t.Fatalf("err = %v", err)
	}
	if rw.hijacked || rw.Status() != 0 {
		t.Fatal("failed hijack recorded as hijacked")
	}
}

func TestLoggingWriterReadFromCounts(t *testing.T) {
	tests := []struct {
		name string
		w    http.ResponseWriter
	}{
		{"recorder without ReaderFrom", httptest.NewRecorder()},
		{"writer with ReaderFrom", readerFromRecorder{httptest.NewRecorder()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw := newResponseWriter(tt.w)
			n, err := io.Copy(rw, strings.NewReader(strings.Repeat("x", 10000)))
			if err != nil || n != 10000 || rw.bytes != 10000 || rw.Status() != 200 {
				t.Fatalf("n=%d err=%v bytes=%d status=%d", n, err, rw.bytes, rw.Status())
			}
		})
	}
}

type readerFromRecorder struct{ *httptest.ResponseRecorder }

func (r readerFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	return io.Copy(r.ResponseRecorder, src)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
