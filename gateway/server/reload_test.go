package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/server"
)

// namedUpstream answers "upstream NAME for USER" and echoes WebSocket
// messages on /ws prefixed with its name; /slow answers after the
// duration in ?d=.
func namedUpstream(t *testing.T, name string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
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
			if err := c.Write(r.Context(), typ, append([]byte(name+":"), msg...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		select {
		case <-time.After(d):
			fmt.Fprintf(w, "slow answer from %s after %v", name, d)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream %s for %s", name, r.Header.Get("Remote-User"))
	})
	up := httptest.NewServer(mux)
	t.Cleanup(up.Close)
	return up
}

// fileConfig is the variable part of a config file.
type fileConfig struct {
	upstream string
	extra    string // appended top-level YAML
}

func writeGatewayConfig(t *testing.T, path, dataDir string, c fileConfig) {
	t.Helper()
	yaml := fmt.Sprintf(`listen: "127.0.0.1:1"
data_dir: %q
two_factor:
  mode: "off"
password:
  argon2:
    memory_kib: 8192
    iterations: 1
    parallelism: 1
routes:
  - name: app
    upstream: %q
    policy: password
%s`, dataDir, c.upstream, c.extra)
	// Like an editor: a new file renamed over the old one.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// fileGateway is a gateway started from a config file and served by
// Serve, as `authgate serve` runs it.
type fileGateway struct {
	*gateway
	path   string
	logs   *testkit.SyncBuffer
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve returned, with its error in err
	err    error
	levels chan zerolog.Level
}

// checkConfig loads the config file at path as `authgate serve` does and
// fails the test on any problem.
func checkConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, probs, err := config.Check(path)
	if err != nil || len(probs) > 0 {
		t.Fatalf("config: %v %v", err, probs)
	}
	return cfg
}

// gatewayLog returns a log the test reads and the writer to give the
// gateway: the log alone, or also stderr when AUTHGATE_TEST_LOG is set.
func gatewayLog() (*testkit.SyncBuffer, io.Writer) {
	logs := &testkit.SyncBuffer{}
	if os.Getenv("AUTHGATE_TEST_LOG") != "" {
		return logs, io.MultiWriter(logs, os.Stderr)
	}
	return logs, logs
}

func startFileGateway(t *testing.T, c fileConfig) *fileGateway {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "authgate.yaml")
	writeGatewayConfig(t, path, dir, c)
	cfg := checkConfig(t, path)
	logs, logw := gatewayLog()
	clk := testkit.NewClock(time.Now())
	levels := make(chan zerolog.Level, 10)
	srv, err := server.New(context.Background(), cfg, zerolog.New(logw), server.Options{
		Now: clk.Now, NoControlSocket: true,
		SetLogLevel: func(l zerolog.Level) { levels <- l },
	})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fg := &fileGateway{
		gateway: &gateway{URL: "http://" + ln.Addr().String(), srv: srv, clock: clk, cfg: cfg},
		path:    path, logs: logs, cancel: cancel, done: make(chan struct{}), levels: levels,
	}
	go func() {
		fg.err = srv.Serve(ctx, ln)
		close(fg.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-fg.done:
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return fg
}

// stop ends Serve as SIGTERM does and returns its error.
func (g *fileGateway) stop(t *testing.T) error {
	t.Helper()
	g.cancel()
	select {
	case <-g.done:
		return g.err
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// client is a browser on the served gateway.
func (g *fileGateway) client(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: t, c: c, g: g.gateway, hdr: http.Header{"Accept": {"text/html,application/xhtml+xml"}}}
}

// cookieHeader is the browser's cookies for a WebSocket dial.
func cookieHeader(b *browser) http.Header {
	gu, _ := url.Parse(b.g.URL)
	h := http.Header{"Origin": {b.g.URL}}
	for _, c := range b.c.Jar.Cookies(gu) {
		h.Add("Cookie", c.Name+"="+c.Value)
	}
	return h
}

// waitBody polls path until its body is want.
func waitBody(t *testing.T, b *browser, path, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last resp
	for time.Now().Before(deadline) {
		last = b.get(path)
		if last.status == http.StatusOK && last.body == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: still %d %q, want %q", path, last.status, last.body, want)
}

func echo(t *testing.T, ctx context.Context, c *websocket.Conn, msg, want string) {
	t.Helper()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("websocket write: %v", err)
	}
	_, got, err := c.Read(ctx)
	if err != nil || string(got) != want {
		t.Fatalf("websocket echo = %q, %v; want %q", got, err, want)
	}
}

// TestReloadOnFileChange rewrites the config file of a serving gateway:
// the route moves from upstream A to B for new requests without a new
// login, a WebSocket opened before keeps echoing through A, the admin
// page shows the new load time, a bad rewrite is rejected with its
// problems logged and routing stays, and keys that need a restart are
// reported and kept.
func TestReloadOnFileChange(t *testing.T) {
	a, b := namedUpstream(t, "A"), namedUpstream(t, "B")
	g := startFileGateway(t, fileConfig{upstream: a.URL})
	g.addUser(t, "alice", "correct horse")
	g.addAdmin(t, "root", "root password")
	alice := g.client(t)
	login(t, alice, "alice", "correct horse")
	waitBody(t, alice, "/", "upstream A for alice")
	admin := g.client(t)
	login(t, admin, "root", "root password")
	page := admin.get("/.authgate/admin/upstreams")
	mustStatus(t, page, http.StatusOK, "admin upstreams")
	firstLoaded := loadedAt(t, page.body)
	if !strings.Contains(page.body, a.URL) {
		t.Fatalf("upstreams page lacks A (%s): %.2000s", a.URL, page.body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(g.URL, "http") + "/ws"
	ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: cookieHeader(alice)})
	if err != nil {
		t.Fatalf("websocket through the gateway: %v", err)
	}
	defer ws.CloseNow()
	echo(t, ctx, ws, "before", "A:before")

	// Move the route to B by rewriting the file.
	g.clock.Advance(10 * time.Minute)
	writeGatewayConfig(t, g.path, filepath.Dir(g.path), fileConfig{upstream: b.URL, extra: "log:\n  level: debug\n"})
	waitBody(t, alice, "/", "upstream B for alice") // same session: nobody logged out
	echo(t, ctx, ws, "after", "A:after")            // the open tunnel stays on A
	select {
	case l := <-g.levels:
		if l != zerolog.DebugLevel {
			t.Fatalf("log level set to %v, want debug", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("log.level change not applied")
	}
	page = admin.get("/.authgate/admin/upstreams")
	mustStatus(t, page, http.StatusOK, "admin upstreams after reload")
	if !strings.Contains(page.body, b.URL) || strings.Contains(page.body, a.URL) {
		t.Fatalf("upstreams page does not show only B after the reload: %.3000s", page.body)
	}
	if got := loadedAt(t, page.body); got == firstLoaded {
		t.Fatalf("config loaded at %q, unchanged by the reload", got)
	}
	// A new WebSocket goes to B.
	ws2, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: cookieHeader(alice)})
	if err != nil {
		t.Fatalf("websocket after reload: %v", err)
	}
	defer ws2.CloseNow()
	echo(t, ctx, ws2, "new", "B:new")

	// A bad rewrite: rejected as a whole, every problem logged, B stays.
	writeGatewayConfig(t, g.path, filepath.Dir(g.path), fileConfig{upstream: "ftp://" + strings.TrimPrefix(a.URL, "http://"), extra: "proxy:\n  response_header_timeout: 1ms\n"})
	waitLog(t, g.logs, "config reload rejected")
	logs := g.logs.String()
	for _, want := range []string{`"key":"routes[0].upstream"`, `"key":"proxy.response_header_timeout"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("rejection log lacks %s:\n%s", want, logs)
		}
	}
	if r := alice.get("/"); r.status != http.StatusOK || r.body != "upstream B for alice" {
		t.Fatalf("after a rejected reload: %d %q", r.status, r.body)
	}
	err = g.srv.Reload(g.path)
	var probs config.Problems
	if !errors.Is(err, server.ErrConfigRejected) || !errors.As(err, &probs) || len(probs) != 2 {
		t.Fatalf("Reload of a bad file = %v, want ErrConfigRejected with 2 problems", err)
	}
	echo(t, ctx, ws, "still", "A:still")

	// Restart-only keys: reported, their running values kept; the
	// reloadable part applies.
	writeGatewayConfig(t, g.path, filepath.Dir(g.path), fileConfig{upstream: a.URL,
		extra: "session:\n  cookie_name: other_session\nregulation:\n  max_failures: 9\n"})
	waitBody(t, alice, "/", "upstream A for alice")
	waitLog(t, g.logs, "only change at restart")
	logs = g.logs.String()
	if !strings.Contains(logs, `"keys":["session.cookie_name","regulation.max_failures"]`) {
		t.Errorf("restart keys not listed exactly:\n%s", logs)
	}
	// The session cookie kept its name: alice is still signed in.
	if r := alice.get("/"); r.status != http.StatusOK {
		t.Fatalf("after a cookie_name change: %d", r.status)
	}

	// Shutdown closes the WebSockets and Serve returns cleanly.
	if err := g.stop(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, _, err := ws.Read(ctx); err == nil {
		t.Fatal("websocket still open after shutdown")
	}
}

func loadedAt(t *testing.T, body string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, `id="config-loaded">`)
	if !ok {
		t.Fatalf("no config-loaded time on the page: %.2000s", body)
	}
	v, _, _ := strings.Cut(rest, "<")
	return v
}

func waitLog(t *testing.T, logs *testkit.SyncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(logs.String(), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log never said %q:\n%s", want, logs.String())
}

// TestShutdownFinishesInFlight: a request running when shutdown starts
// completes with its whole answer; one slower than
// server.shutdown_timeout is cut after it; Serve returns nil and the
// store is closed.
func TestShutdownFinishesInFlight(t *testing.T) {
	tests := []struct {
		name     string
		delay    time.Duration
		complete bool
	}{
		{"within the timeout", 700 * time.Millisecond, true},
		{"beyond the timeout", 20 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := namedUpstream(t, "A")
			g := startFileGateway(t, fileConfig{upstream: a.URL, extra: "server:\n  shutdown_timeout: 1s\n"})
			g.addUser(t, "alice", "correct horse")
			alice := g.client(t)
			login(t, alice, "alice", "correct horse")
			waitBody(t, alice, "/", "upstream A for alice")

			type result struct {
				r   resp
				err error
			}
			res := make(chan result, 1)
			var started sync.WaitGroup
			started.Add(1)
			go func() {
				req, _ := http.NewRequest("GET", g.URL+"/slow?d="+tt.delay.String(), nil)
				started.Done()
				hr, err := alice.c.Do(req)
				if err != nil {
					res <- result{err: err}
					return
				}
				defer hr.Body.Close()
				body, err := io.ReadAll(hr.Body)
				res <- result{r: resp{status: hr.StatusCode, body: string(body)}, err: err}
			}()
			started.Wait()
			time.Sleep(200 * time.Millisecond) // the request is at the upstream
			start := time.Now()
			if err := g.stop(t); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			took := time.Since(start)
			got := <-res
			if tt.complete {
				if got.err != nil || got.r.status != http.StatusOK || !strings.HasPrefix(got.r.body, "slow answer from A") {
					t.Fatalf("in-flight request: %+v %v", got.r, got.err)
				}
			} else {
				if got.err == nil && got.r.status == http.StatusOK && strings.HasPrefix(got.r.body, "slow answer") {
					t.Fatalf("a request slower than the timeout completed: %+v", got.r)
				}
				if took > 8*time.Second {
					t.Fatalf("shutdown took %v with a 1s timeout", took)
				}
			}
			// The store is closed: the embedded file can be opened again.
			if _, err := g.srv.Store().GetUser(context.Background(), "alice"); err == nil {
				t.Fatal("store still open after Serve returned")
			}
		})
	}
}
