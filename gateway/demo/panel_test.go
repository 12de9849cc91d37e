package demo_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/authgate/authgate/gateway/demo"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/middleware"
)

func newPanel(t *testing.T, o demo.PanelOptions) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(demo.NewPanel(o))
	t.Cleanup(s.Close)
	return s
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, target string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func TestPages(t *testing.T) {
	srv := newPanel(t, demo.PanelOptions{Name: "Widget Control"})
	tests := []struct {
		name     string
		path     string
		hdr      http.Header
		status   int
		contains []string
		absent   []string
		allow    string
	}{
		{
			name: "dashboard with identity", path: "/",
			hdr:    http.Header{"Remote-User": {"alice"}, "Remote-Groups": {"ops, admins"}, "X-Test": {"<script>x</script>"}},
			status: 200,
			contains: []string{
				"Widget Control", `Signed in as <b id="user">alice</b>`, "<b>ops</b>, <b>admins</b>",
				`<tr class="id"><td>Remote-User</td><td class="v">alice</td></tr>`,
				"<td>X-Test</td>", "&lt;script&gt;x&lt;/script&gt;", `action="restart"`,
			},
			absent: []string{"<script>x</script>", `id="restarted"`},
		},
		{
			name: "dashboard without identity", path: "/", status: 200,
			contains: []string{"Not signed in", "No identity header was received"},
			absent:   []string{"Signed in as"},
		},
		{
			name: "dashboard after restart", path: "/?restarted=1", status: 200,
			contains: []string{`id="restarted"`, "Service restarted"},
		},
		{
			name: "settings form", path: "/settings", status: 200,
			contains: []string{`<form method="post" action="settings">`, `name="site_name" value="ACME Intranet"`, `name="maintenance"`},
			absent:   []string{`id="notice"`},
		},
		{
			name: "console", path: "/console", status: 200,
			contains: []string{`new URL("ws", location.href)`, `"https:" ? "wss:" : "ws:"`, "new WebSocket(u.href)"},
		},
		{name: "unknown page", path: "/nope", status: 404, contains: []string{"does not exist"}},
		{name: "restart needs POST", path: "/restart", status: 405, allow: "POST"},
		{name: "subpath of settings", path: "/settings/x", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, srv.URL+tt.path, tt.hdr)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d; want %d", res.StatusCode, tt.status)
			}
			if got := res.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q; want %q", got, tt.allow)
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q", s)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(body, s) {
					t.Errorf("body has %q", s)
				}
			}
		})
	}
}

func TestCustomIdentityHeaders(t *testing.T) {
	srv := newPanel(t, demo.PanelOptions{UserHeader: "X-User", GroupsHeader: "X-Groups"})
	_, body := get(t, srv.URL+"/", http.Header{"X-User": {"carol"}, "X-Groups": {"g1"}, "Remote-User": {"ignored"}})
	if !strings.Contains(body, `Signed in as <b id="user">carol</b>`) || !strings.Contains(body, "<b>g1</b>") {
		t.Fatalf("custom headers not used:\n%s", body)
	}
}

func TestSettingsSave(t *testing.T) {
	srv := newPanel(t, demo.PanelOptions{})
	form := url.Values{
		"site_name": {`Intranet "<b>"`}, "admin_email": {"ops@example.com"},
		"timezone": {"Europe/Berlin"}, "max_sessions": {"7"}, "maintenance": {"on"},
	}
	res, err := http.PostForm(srv.URL+"/settings", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, s := range []string{`id="notice">Saved<`, `value="Intranet &#34;&lt;b&gt;&#34;"`, `value="ops@example.com"`, `value="Europe/Berlin"`, `value="7"`, `name="maintenance" checked`} {
		if !strings.Contains(string(body), s) {
			t.Errorf("POST response lacks %q", s)
		}
	}
	// The values stick for the next GET, without the notice.
	_, page := get(t, srv.URL+"/settings", nil)
	if !strings.Contains(page, `value="Europe/Berlin"`) || strings.Contains(page, `id="notice"`) {
		t.Fatalf("GET after save:\n%s", page)
	}
	res, err = http.Post(srv.URL+"/settings", "application/x-www-form-urlencoded", strings.NewReader(strings.Repeat("a", 70<<10)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("oversized form: status %d; want 400", res.StatusCode)
	}
}

func TestRestartRedirectsToOwnAbsoluteURL(t *testing.T) {
	srv := newPanel(t, demo.PanelOptions{})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/restart", nil)
	res, _ := do(t, req)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got, want := res.Header.Get("Location"), srv.URL+"/?restarted=1"; got != want {
		t.Fatalf("Location %q; want %q", got, want)
	}

	tlsSrv := httptest.NewTLSServer(demo.NewPanel(demo.PanelOptions{}))
	t.Cleanup(tlsSrv.Close)
	req, _ = http.NewRequest(http.MethodPost, tlsSrv.URL+"/restart", nil)
	client := tlsSrv.Client()
	client.CheckRedirect = noRedirect.CheckRedirect
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got, want := res.Header.Get("Location"), tlsSrv.URL+"/?restarted=1"; got != want {
		t.Fatalf("TLS Location %q; want %q", got, want)
	}
}

func wsURL(httpURL string) string { return "ws" + strings.TrimPrefix(httpURL, "http") }

func echoOnce(t *testing.T, ctx context.Context, c *websocket.Conn, typ websocket.MessageType, msg string) {
	t.Helper()
	if err := c.Write(ctx, typ, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	gotTyp, got, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gotTyp != typ || string(got) != msg {
		t.Fatalf("echo %v %q; want %v %q", gotTyp, got, typ, msg)
	}
}

func TestWebSocketEcho(t *testing.T) {
	srv := newPanel(t, demo.PanelOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(srv.URL)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	echoOnce(t, ctx, c, websocket.MessageText, "uptime")
	echoOnce(t, ctx, c, websocket.MessageBinary, "\x00\x01")
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
}

func TestWebSocketOrigin(t *testing.T) {
	srv := newPanel(t, demo.PanelOptions{})
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name string
		hdr  http.Header
		ok   bool
	}{
		{"same host", http.Header{"Origin": {"http://" + host}}, true},
		{"via gateway", http.Header{"Origin": {"https://panel.example"}, "X-Forwarded-Host": {"panel.example"}}, true},
		{"foreign", http.Header{"Origin": {"https://evil.example"}}, false},
		{"foreign with other forwarded host", http.Header{"Origin": {"https://evil.example"}, "X-Forwarded-Host": {"panel.example"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, res, err := websocket.Dial(ctx, wsURL(srv.URL)+"/ws", &websocket.DialOptions{HTTPHeader: tt.hdr})
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				c.CloseNow()
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatal("foreign origin accepted")
			}
			if res == nil || res.StatusCode != http.StatusForbidden {
				t.Fatalf("want 403, got %v", res)
			}
		})
	}
}

func TestEventsStream(t *testing.T) {
	const interval = 150 * time.Millisecond
	srv := newPanel(t, demo.PanelOptions{EventInterval: interval, EventCount: 3})
	start := time.Now()
	res, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(res.Body)
	var arrivals []time.Duration
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "event ") {
			t.Fatalf("line %q", sc.Text())
		}
		arrivals = append(arrivals, time.Since(start))
	}
	if len(arrivals) != 3 {
		t.Fatalf("got %d lines; want 3", len(arrivals))
	}
	// Streamed, not buffered: the first line arrives well before the last.
	if arrivals[2]-arrivals[0] < 2*interval-50*time.Millisecond {
		t.Fatalf("lines arrived together: %v", arrivals)
	}

	for _, q := range []string{"0", "51", "x"} {
		res, _ := get(t, srv.URL+"/events?n="+q, nil)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("n=%s: status %d; want 400", q, res.StatusCode)
		}
	}
	_, body := get(t, srv.URL+"/events?n=2", nil)
	if strings.Count(body, "\n") != 2 {
		t.Fatalf("n=2 body %q", body)
	}
}

// The panel behind the real proxy: spoofed identity is replaced, the
// absolute restart redirect comes back on the public origin, and the
// console's WebSocket works through the gateway.
func TestBehindProxy(t *testing.T) {
	panel := newPanel(t, demo.PanelOptions{})
	p, err := proxy.New(proxy.Options{Routes: []proxy.Route{{Name: "panel", Upstream: mustParse(t, panel.URL)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		canon, err := proxy.CanonicalPath(r.URL)
		if err != nil {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		rt, ok := p.Match(r.Host, canon)
		if !ok {
			http.NotFound(w, r)
			return
		}
		peer := netip.MustParseAddr("127.0.0.1")
		ctx := middleware.WithClient(r.Context(), middleware.Client{IP: peer, Peer: peer, Scheme: "https", Host: "panel.example"})
		p.Forward(w, r.WithContext(ctx), rt, &proxy.Identity{User: "alice", Groups: []string{"admins"}})
	}))
	t.Cleanup(gw.Close)

	_, body := get(t, gw.URL+"/", http.Header{"Remote-User": {"mallory"}, "remote_user": {"mallory"}})
	if !strings.Contains(body, `Signed in as <b id="user">alice</b>`) || strings.Contains(body, "mallory") {
		t.Fatalf("identity through proxy:\n%s", body)
	}

	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/restart", nil)
	res, _ := do(t, req)
	if got := res.Header.Get("Location"); res.StatusCode != http.StatusFound || got != "https://panel.example/?restarted=1" {
		t.Fatalf("restart through proxy: %d Location %q", res.StatusCode, got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(gw.URL)+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"https://panel.example"}},
	})
	if err != nil {
		t.Fatalf("console websocket through proxy: %v", err)
	}
	defer c.CloseNow()
	echoOnce(t, ctx, c, websocket.MessageText, "status")
	_ = c.Close(websocket.StatusNormalClosure, "")
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
