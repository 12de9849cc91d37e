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
// what it reads, and any other request with "panel page"; it counts the
// upgrades it answered.
func echoSocketPanel(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var upgrades atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			_, _ = io.WriteString(w, "panel page")
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
	if cookie != "" {
		cookie = "authgate_session=" + cookie
	}
	return upgradeOn(t, conn, host, path, cookie)
}

// upgradeOn sends a WebSocket upgrade for path on conn (with the Cookie
// header cookie, if any) and returns the answer's status and, after a
// 101, the connection; otherwise it closes conn.
func upgradeOn(t *testing.T, conn net.Conn, host, path, cookie string) (int, net.Conn, *bufio.Reader) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", path, host)
	if cookie != "" {
		req += "Cookie: " + cookie + "\r\n"
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

// consoleBehindNginx starts a gateway (one password route to an
// echoSocketPanel) and nginx with the documented config passed through
// edit, checks that a console upgrade without a session or with a forged
// one gets 401 and never reaches the panel, then signs alice in and opens
// the console with her session.
func consoleBehindNginx(t *testing.T, edit func(t *testing.T, conf string) string) openConsole {
	t.Helper()
	panel, upgrades := echoSocketPanel(t)
	g := startGatewayWith(t, gwOpts{mode: "off", routes: []config.Route{
		{Name: "panel", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyPassword},
	}}, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	g.addUser(t, "alice", attackPW)
	base := startNginxEdited(t, strings.TrimPrefix(g.URL, "http://"), strings.TrimPrefix(panel.URL, "http://"), edit)
	for _, cookie := range []string{"", "forged"} {
		if status, _, _ := openSocket(t, base, "/console/socket", cookie); status != http.StatusUnauthorized {
			t.Fatalf("console upgrade with session cookie %q: %d, want 401", cookie, status)
		}
	}
	if n := upgrades.Load(); n != 0 {
		t.Fatalf("the panel answered %d upgrades without a session", n)
	}
	b := signInPassword(t, g, "10.30.0.1", "alice")
	status, conn, br := openSocket(t, base, "/console/socket", sessionCookie(t, g, b))
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("console upgrade with a session: %d, want 101", status)
	}
	if err := echoThrough(conn, br, "ping"); err != nil {
		t.Fatalf("through the console: %v", err)
	}
	return openConsole{b: b, base: base, conn: conn, br: br}
}

// openConsole is alice's console tunnel through nginx.
type openConsole struct {
	b    *browser // alice's (signed in at the gateway itself)
	base string   // nginx's base URL
	conn net.Conn
	br   *bufio.Reader
}

// echoThrough sends msg through an open tunnel to an echoSocketPanel and reads
// it back.
func echoThrough(conn net.Conn, br *bufio.Reader, msg string) error {
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

// The shipped nginx config passes a WebSocket (a panel's console) once
// authgate allows the upgrade request, and never without a session. nginx
// asks only when the request starts: what docs/forward-auth.md states
// about open connections is shown at the end.
func TestNginxAuthRequestWebSocket(t *testing.T) {
	c := consoleBehindNginx(t, nil)

	// Signed out: a new upgrade is refused, but the tunnel nginx already
	// opened is nginx's; authgate is not asked again (the built-in proxy
	// cuts it within about a second: TestSessionEndClosesStreams).
	cookie := sessionCookie(t, c.b.g, c.b)
	mustStatus(t, c.b.post("/.authgate/logout", "/.authgate/logout", url.Values{}), http.StatusSeeOther, "sign out")
	if status, _, _ := openSocket(t, c.base, "/console/socket", cookie); status != http.StatusUnauthorized {
		t.Fatalf("upgrade with the ended session: %d, want 401", status)
	}
	if err := echoThrough(c.conn, c.br, "still open"); err != nil {
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
	c := consoleBehindNginx(t, uncommentConsole)
	mustStatus(t, c.b.post("/.authgate/logout", "/.authgate/logout", url.Values{}), http.StatusSeeOther, "sign out")
	// authgate re-checks about once a second: the tunnel ends.
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.br.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the console is still open 10s after sign-out (read %d bytes, %v)", n, err)
	}
}
