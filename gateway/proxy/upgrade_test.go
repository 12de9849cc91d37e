package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/internal/testkit"
)

// anyUpgradeUpstream switches to whatever protocol a request asks for
// and then echoes bytes, like a server that would tunnel anything; it
// counts the upgrade requests that reach it.
func anyUpgradeUpstream(t *testing.T, upgrades *atomic.Int32) string {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := r.Header.Get("Upgrade")
		if proto == "" {
			_, _ = io.WriteString(w, "plain")
			return
		}
		upgrades.Add(1)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", proto)
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	return up.URL
}

// upgrade sends an upgrade request with the given Upgrade lines to addr
// and returns the status; after a 101 it checks that bytes go through.
func upgrade(t *testing.T, addr, path string, offers ...string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: panel.example\r\nConnection: keep-alive, Upgrade\r\n"
	for _, o := range offers {
		req += "Upgrade: " + o + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		if _, err := io.WriteString(conn, "through the tunnel"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len("through the tunnel"))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "through the tunnel" {
			t.Fatalf("tunnel echoed %q, %v", buf, err)
		}
	}
	return res.StatusCode
}

// Regression: every Upgrade protocol became a raw tunnel to the upstream,
// not only WebSocket: "Upgrade: h2c" on any route (a bypass route too)
// let a client speak HTTP/2 to the panel past the gateway's path and
// policy checks. Now only websocket, or what a route's upgrade_protocols
// lists, is tunnelled; anything else gets 400 before the upstream.
func TestUpgradeProtocols(t *testing.T) {
	var upgrades atomic.Int32
	upURL := anyUpgradeUpstream(t, &upgrades)
	var logs testkit.SyncBuffer
	g := newGateway(t, Options{
		Routes: []Route{
			{Name: "default", Upstream: mustURL(t, upURL)},
			{Name: "custom", PathPrefix: "/custom", Upstream: mustURL(t, upURL), UpgradeProtocols: []string{"websocket", "Foo"}},
			{Name: "none", PathPrefix: "/none", Upstream: mustURL(t, upURL), UpgradeProtocols: []string{}},
		},
		Logger: zerolog.New(&logs),
	})
	addr := strings.TrimPrefix(g.srv.URL, "http://")
	tests := []struct {
		path   string
		offers []string
		want   int
	}{
		{"/ws", []string{"websocket"}, http.StatusSwitchingProtocols},
		{"/ws", []string{"WebSocket/13"}, http.StatusSwitchingProtocols},
		{"/x", []string{"h2c"}, http.StatusBadRequest},
		{"/x", []string{"foo"}, http.StatusBadRequest},
		{"/x", []string{"TLS/1.2"}, http.StatusBadRequest},
		{"/x", []string{"websocket, h2c"}, http.StatusBadRequest},
		{"/x", []string{"websocket", "h2c"}, http.StatusBadRequest},
		{"/x", []string{"h2c, websocket"}, http.StatusBadRequest},
		{"/x", []string{"websocketx"}, http.StatusBadRequest},
		{"/x", []string{"/13"}, http.StatusBadRequest},
		{"/custom/x", []string{"foo"}, http.StatusSwitchingProtocols},
		{"/custom/x", []string{"FOO/2"}, http.StatusSwitchingProtocols},
		{"/custom/x", []string{"websocket"}, http.StatusSwitchingProtocols},
		{"/custom/x", []string{"h2c"}, http.StatusBadRequest},
		{"/none/x", []string{"websocket"}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+strings.Join(tt.offers, "|"), func(t *testing.T) {
			before := upgrades.Load()
			if got := upgrade(t, addr, tt.path, tt.offers...); got != tt.want {
				t.Fatalf("status %d; want %d", got, tt.want)
			}
			reached := upgrades.Load() != before
			if reached != (tt.want == http.StatusSwitchingProtocols) {
				t.Fatalf("upgrade reached the upstream: %v", reached)
			}
		})
	}
	if !strings.Contains(logs.String(), `"route":"default"`) || !strings.Contains(logs.String(), `"upgrade":"h2c"`) ||
		!strings.Contains(logs.String(), "refused upgrade") {
		t.Fatalf("refusals not logged with route and protocol:\n%s", logs.String())
	}

	// "Upgrade" without "Connection: upgrade" is no upgrade: ReverseProxy
	// drops the header and the request goes through as a plain one.
	res := g.do(t, http.MethodGet, "/x", http.Header{"Upgrade": {"h2c"}})
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || string(body) != "plain" {
		t.Fatalf("plain request with a stray Upgrade header: %d %q", res.StatusCode, body)
	}
}

func TestRefusedUpgrade(t *testing.T) {
	ws := []string{"websocket"}
	tests := []struct {
		h    http.Header
		want string
	}{
		{http.Header{}, ""},
		{http.Header{"Upgrade": {"h2c"}}, ""},
		{http.Header{"Connection": {"Upgrade"}}, ""},
		{http.Header{"Connection": {"upgrade"}, "Upgrade": {"websocket"}}, ""},
		{http.Header{"Connection": {"keep-alive, UPGRADE"}, "Upgrade": {" WebSocket , "}}, ""},
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}}, "h2c"},
		{http.Header{"Connection": {"close", "Upgrade"}, "Upgrade": {"websocket", "h2c"}}, "websocket, h2c"},
	}
	for _, tt := range tests {
		if got := refusedUpgrade(tt.h, ws); got != tt.want {
			t.Errorf("refusedUpgrade(%v) = %q; want %q", tt.h, got, tt.want)
		}
	}
}
