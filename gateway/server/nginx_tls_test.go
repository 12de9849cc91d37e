//go:build linux

package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
)

// httpsDocSnippet returns the nginx block docs/https.md gives for nginx
// as the TLS terminator in front of authgate.
func httpsDocSnippet(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "https.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i := strings.Index(doc, "nginx (tested with")
	if i < 0 {
		t.Fatal(`docs/https.md has no "nginx (tested with" paragraph`)
	}
	doc = doc[i:]
	const fence = "```nginx\n"
	start := strings.Index(doc, fence)
	if start < 0 {
		t.Fatal("docs/https.md: no nginx block after that paragraph")
	}
	doc = doc[start+len(fence):]
	end := strings.Index(doc, "```")
	if end < 0 {
		t.Fatal("docs/https.md: the nginx block does not end")
	}
	return doc[:end]
}

// TestNginxTLSTerminatorFromDocs runs docs/https.md's nginx block, as
// written, in front of the gateway: signing in over HTTPS gives the
// __Host- cookie, the panel is reached, nginx keeps its connections to
// authgate, the WebSocket console works, and it is cut when the session
// ends (authgate's own proxy carries it).
func TestNginxTLSTerminatorFromDocs(t *testing.T) {
	panel, _ := echoSocketPanel(t)
	g := startGatewayWith(t, gwOpts{mode: "off", routes: []config.Route{
		{Name: "panel", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyPassword},
	}}, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	g.addUser(t, "alice", attackPW)
	relay := newCountingRelay(t, strings.TrimPrefix(g.URL, "http://"))

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "panel.crt"), filepath.Join(dir, "panel.key")
	cert := writeSelfSigned(t, certFile, keyFile)
	block := httpsDocSnippet(t)
	addr := runNginxSite(t, func(port int) string {
		return replaceAll(t, "docs/https.md", block, [][2]string{
			{"listen 443 ssl;", fmt.Sprintf("listen 127.0.0.1:%d ssl;", port)},
			{"/etc/ssl/panel.example.com.crt", certFile},
			{"/etc/ssl/panel.example.com.key", keyFile},
			{"127.0.0.1:8080", relay.addr()},
		})
	})

	// The browser asks for https://panel.example.com; its connections go
	// to nginx.
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "panel.example.com"}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	const base = "https://panel.example.com"
	p := newProxyClient(t, base, &http.Transport{DialContext: dial, TLSClientConfig: tlsConf})
	do := func(method, path string, form url.Values) resp { t.Helper(); return p.do(method, base+path, form, nil) }
	token := func(path string) string { t.Helper(); return p.token(base + path) }

	r := do("GET", "/app", nil)
	mustStatus(t, r, http.StatusFound, "anonymous")
	if !strings.HasPrefix(location(r), "/.authgate/login") && !strings.HasPrefix(location(r), base+"/.authgate/login") {
		t.Fatalf("anonymous sent to %q", location(r))
	}
	r = do("POST", "/.authgate/login", url.Values{"csrf_token": {token("/.authgate/login")}, "username": {"alice"}, "password": {attackPW}})
	mustStatus(t, r, http.StatusSeeOther, "sign in over HTTPS through nginx")
	var cookie string
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == "__Host-authgate_session" && ck.Secure {
			cookie = ck.Name + "=" + ck.Value
		}
	}
	if cookie == "" {
		t.Fatalf("no Secure __Host- session cookie: %q", r.header.Values("Set-Cookie"))
	}

	opened := relay.accepted()
	for range 20 {
		if r := do("GET", "/app", nil); r.status != http.StatusOK || r.body != "panel page" {
			t.Fatalf("the panel through nginx: %d %q", r.status, r.body)
		}
	}
	if n := relay.accepted() - opened; n > 2 {
		t.Fatalf("20 requests opened %d new connections from nginx to authgate: they are not kept alive", n)
	}

	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	status, ws, br := upgradeOn(t, conn, "panel.example.com", "/console/socket", cookie)
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("console over HTTPS through nginx: %d, want 101", status)
	}
	if err := echoThrough(ws, br, "ping"); err != nil {
		t.Fatalf("through the console: %v", err)
	}
	mustStatus(t, do("POST", "/.authgate/logout", url.Values{"csrf_token": {token("/.authgate/logout")}}), http.StatusSeeOther, "sign out")
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := br.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the console is still open 10s after sign-out (read %d bytes, %v)", n, err)
	}
}
