//go:build linux

package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
)

// echoSocketPanel answers WebSocket upgrades with 101 and then echoes
// what it reads; it counts the upgrades it answered.
func echoSocketPanel(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var upgrades atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "an upgrade, please", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		upgrades.Add(1)
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if brw.Flush() != nil {
			return
		}
		_, _ = io.Copy(conn, brw)
	}))
	t.Cleanup(s.Close)
	return s, &upgrades
}

// openSocket sends a WebSocket upgrade for path to base (with cookie, if
// any) and returns the answer's status and, after a 101, the connection.
func openSocket(t *testing.T, base, path, cookie string) (int, net.Conn, *bufio.Reader) {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", path, host)
	if cookie != "" {
		req += "Cookie: authgate_session=" + cookie + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("upgrade through nginx: %v", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		res.Body.Close()
		conn.Close()
		return res.StatusCode, nil, nil
	}
	t.Cleanup(func() { conn.Close() })
	return res.StatusCode, conn, br
}

// The shipped nginx config passes a WebSocket (a panel's console) once
// authgate allows the upgrade request, and never without a session. nginx
// asks only when the request starts: what docs/forward-auth.md states
// about open connections is shown at the end.
func TestNginxAuthRequestWebSocket(t *testing.T) {
	panel, upgrades := echoSocketPanel(t)
	g := startGatewayWith(t, gwOpts{mode: "off", routes: []config.Route{
		{Name: "panel", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyPassword},
	}}, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	g.addUser(t, "alice", attackPW)
	base := startNginx(t, strings.TrimPrefix(g.URL, "http://"), strings.TrimPrefix(panel.URL, "http://"))

	if status, _, _ := openSocket(t, base, "/console/socket", ""); status != http.StatusUnauthorized {
		t.Fatalf("upgrade without a session: %d, want 401", status)
	}
	if status, _, _ := openSocket(t, base, "/console/socket", "forged"); status != http.StatusUnauthorized {
		t.Fatalf("upgrade with a forged session: %d, want 401", status)
	}
	if n := upgrades.Load(); n != 0 {
		t.Fatalf("the panel answered %d upgrades without a session", n)
	}

	b := signInPassword(t, g, "10.30.0.1", "alice")
	status, conn, br := openSocket(t, base, "/console/socket", sessionCookie(t, g, b))
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade with a session: %d, want 101", status)
	}
	echo := func(msg string) error {
		if _, err := io.WriteString(conn, msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			return err
		}
		if string(got) != msg {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
		return nil
	}
	if err := echo("ping"); err != nil {
		t.Fatalf("through the tunnel: %v", err)
	}

	// Signed out: a new upgrade is refused, but the tunnel nginx already
	// opened is nginx's; authgate is not asked again (the built-in proxy
	// cuts it within about a second: TestSessionEndClosesStreams).
	cookie := sessionCookie(t, g, b)
	mustStatus(t, b.post("/.authgate/logout", "/.authgate/logout", url.Values{}), http.StatusSeeOther, "sign out")
	if status, _, _ := openSocket(t, base, "/console/socket", cookie); status != http.StatusUnauthorized {
		t.Fatalf("upgrade with the ended session: %d, want 401", status)
	}
	if err := echo("still open"); err != nil {
		t.Fatalf("the open tunnel after sign-out: %v (if nginx now cuts it, docs/forward-auth.md must say so)", err)
	}
}

// uncommentConsole turns on the config's optional console location.
func uncommentConsole(t *testing.T, conf string) string {
	t.Helper()
	lines := strings.Split(conf, "\n")
	on := false
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "    #location /console/socket {"):
			on = true
		case !on:
			continue
		}
		lines[i] = strings.Replace(l, "#", "", 1)
		if strings.TrimSpace(l) == "#}" {
			return strings.Join(lines, "\n")
		}
	}
	t.Fatal("configs/nginx-auth-request.conf has no commented console location (#location /console/socket { … #})")
	return ""
}

// With the config's optional console location, nginx sends the console's
// WebSocket to authgate, whose own proxy passes it to the panel and cuts
// it when the session ends.
func TestNginxConsoleThroughAuthgate(t *testing.T) {
	panel, upgrades := echoSocketPanel(t)
	g := startGatewayWith(t, gwOpts{mode: "off", routes: []config.Route{
		{Name: "panel", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyPassword},
	}}, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	g.addUser(t, "alice", attackPW)
	base := startNginxEdited(t, strings.TrimPrefix(g.URL, "http://"), strings.TrimPrefix(panel.URL, "http://"), uncommentConsole)

	if status, _, _ := openSocket(t, base, "/console/socket", ""); status != http.StatusUnauthorized {
		t.Fatalf("console without a session: %d, want 401", status)
	}
	if n := upgrades.Load(); n != 0 {
		t.Fatalf("the panel answered %d upgrades without a session", n)
	}
	b := signInPassword(t, g, "10.31.0.1", "alice")
	status, conn, br := openSocket(t, base, "/console/socket", sessionCookie(t, g, b))
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("console with a session: %d, want 101", status)
	}
	if _, err := io.WriteString(conn, "ping"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
		t.Fatalf("through the console: %q, %v", got, err)
	}

	mustStatus(t, b.post("/.authgate/logout", "/.authgate/logout", url.Values{}), http.StatusSeeOther, "sign out")
	// authgate re-checks about once a second: the tunnel ends.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := br.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the console is still open 10s after sign-out (read %d bytes, %v)", n, err)
	}
}
