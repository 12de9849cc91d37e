package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/internal/acmetest"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/server"
)

// acmeWait bounds the wait for a certificate from Pebble (about a second
// each on an idle machine; generous for a loaded one).
const acmeWait = 90 * time.Second

// acmeOpts is the variable part of an acme-mode gateway's config file.
type acmeOpts struct {
	ca         *acmetest.CA
	hosts      []string // one route per host, policy two_factor
	httpListen bool     // tls.http_listen on a free port
	redis      string   // store.driver redis at this address; "" embedded
	keyFile    string   // secret_key_file ("" = in data_dir)
	upstream   string
}

// writeACMEConfig writes the config file of an acme-mode gateway.
func writeACMEConfig(t *testing.T, path, dataDir string, o acmeOpts) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: \"127.0.0.1:0\"\ndata_dir: %q\n", dataDir)
	if o.keyFile != "" {
		fmt.Fprintf(&b, "secret_key_file: %q\n", o.keyFile)
	}
	if o.redis != "" {
		fmt.Fprintf(&b, "store:\n  driver: redis\n  redis:\n    addrs: [%q]\n", o.redis)
	}
	b.WriteString(`two_factor:
  mode: required
  issuer: Test Panel
password:
  argon2:
    memory_kib: 8192
    iterations: 1
    parallelism: 1
metrics:
  listen: "127.0.0.1:0"
tls:
  mode: acme
`)
	if o.httpListen {
		b.WriteString("  http_listen: \"127.0.0.1:0\"\n")
	}
	fmt.Fprintf(&b, "  acme:\n    email: ops@example.com\n    ca: %q\n    ca_root: %q\nroutes:\n", o.ca.DirectoryURL, o.ca.APIRootFile)
	for _, h := range o.hosts {
		fmt.Fprintf(&b, "  - name: %q\n    host: %q\n    upstream: %q\n    policy: two_factor\n", h, h, o.upstream)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// acmeGateway is a gateway in tls.mode acme started from a config file
// and served by Serve on a real listener, as `authgate serve` runs it.
type acmeGateway struct {
	*gateway
	path    string
	dataDir string
	tlsAddr string
	logs    *testkit.SyncBuffer
}

// startACMEGateway builds and serves a gateway for o. When the CA is not
// started yet it is started with the gateway's own ports: HTTP-01 on
// tls.http_listen (when on) and TLS-ALPN-01 on listen.
func startACMEGateway(t *testing.T, o acmeOpts, caStarted bool) *acmeGateway {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "authgate.yaml")
	writeACMEConfig(t, path, dir, o)
	cfg := checkConfig(t, path)
	logs, logw := gatewayLog()
	clk := testkit.NewClock(time.Now())
	srv, err := server.New(context.Background(), cfg, zerolog.New(logw), server.Options{Now: clk.Now, NoControlSocket: true})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !caStarted {
		httpPort := 0
		if a := srv.HTTPAddr(); a != nil {
			httpPort = a.(*net.TCPAddr).Port
		}
		o.ca.Start(httpPort, ln.Addr().(*net.TCPAddr).Port)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return")
		}
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return &acmeGateway{
		gateway: &gateway{URL: "https://" + o.hosts[0] + ":" + port, srv: srv, clock: clk, cfg: cfg},
		path:    path, dataDir: dir, tlsAddr: ln.Addr().String(), logs: logs,
	}
}

// browser is a cookie-keeping HTTPS client for host that trusts only
// roots and reaches the gateway's listener whatever the name resolves to.
func (g *acmeGateway) browser(t *testing.T, host string, roots *x509.CertPool) *browser {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, g.tlsAddr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	_, port, _ := net.SplitHostPort(g.tlsAddr)
	gw := *g.gateway
	gw.URL = "https://" + host + ":" + port
	return &browser{t: t, g: &gw, hdr: http.Header{"Accept": {"text/html,application/xhtml+xml"}}, c: &http.Client{
		Jar: jar, Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// leaf handshakes with the gateway for name, trusting roots.
func (g *acmeGateway) leaf(name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{ServerName: name, RootCAs: roots}}
	c, err := d.DialContext(context.Background(), "tcp", g.tlsAddr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// waitLeaf polls handshakes for name until the gateway presents a
// certificate roots trust.
func (g *acmeGateway) waitLeaf(t *testing.T, name string, ca *acmetest.CA) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(acmeWait)
	var err error
	for time.Now().Before(deadline) {
		var c *x509.Certificate
		if c, err = g.leaf(name, ca.Roots()); err == nil {
			return c
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no certificate for %s from the CA after %v: %v\ngateway log:\n%s\npebble log:\n%s", name, acmeWait, err, g.logs.String(), ca.Log())
	return nil
}

// expiryGauge scrapes the metrics listener for the certificate expiry
// of name.
func expiryGauge(t *testing.T, g *gateway, name string) (float64, bool) {
	t.Helper()
	return value(scrape(t, g), "authgate_tls_certificate_expiry_timestamp_seconds", map[string]string{"name": name})
}

// TestACMELoginThroughPebbleCertificate serves the real gateway in
// tls.mode acme against Pebble, which validates the challenges for real
// on the gateway's own listeners; an HTTPS client trusting only Pebble's
// root then signs in with password and TOTP code and reaches the panel,
// with a __Host-/Secure session cookie. The metrics report the served
// certificate's expiry, and port 80 redirects to HTTPS.
func TestACMELoginThroughPebbleCertificate(t *testing.T) {
	const host = "panel.example.com"
	ca := acmetest.New(t)
	g := startACMEGateway(t, acmeOpts{ca: ca, hosts: []string{host}, httpListen: true, upstream: newUpstream(t).URL}, false)
	leaf := g.waitLeaf(t, host, ca)
	if err := leaf.VerifyHostname(host); err != nil {
		t.Fatal(err)
	}
	valid := ca.ValidChallenges()
	if valid["http-01"]+valid["tls-alpn-01"] == 0 {
		t.Fatalf("certificate issued without a validated challenge: %v", valid)
	}

	g.addUser(t, "alice", "correct horse")
	enrolled := g.browser(t, host, ca.Roots())
	login(t, enrolled, "alice", "correct horse")
	secret := secretEnrol(t, g.gateway, enrolled)

	// A fresh browser: password, then a TOTP code.
	b := g.browser(t, host, ca.Roots())
	r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}})
	mustStatus(t, r, http.StatusSeeOther, "password over https")
	if location(r) != "/.authgate/verify" {
		t.Fatalf("password step went to %q, want the code page", location(r))
	}
	r = b.post("/.authgate/verify", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, g.clock.Now())}})
	mustStatus(t, r, http.StatusSeeOther, "code over https")
	var cookie string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "__Host-authgate_session=") {
			cookie = c
		}
	}
	if cookie == "" || !strings.Contains(cookie, "Secure") || !strings.Contains(cookie, "Path=/") || strings.Contains(cookie, "Domain=") {
		t.Fatalf("session cookie after the code is not __Host-/Secure: %q", r.header.Values("Set-Cookie"))
	}
	r = b.get("/dashboard")
	mustStatus(t, r, http.StatusOK, "panel over https")
	if !strings.Contains(r.body, `"/dashboard"`) || !strings.Contains(r.body, "alice") {
		t.Fatalf("upstream did not serve alice: %.300s", r.body)
	}

	if v, ok := expiryGauge(t, g.gateway, host); !ok || int64(v) != leaf.NotAfter.Unix() {
		t.Fatalf("expiry gauge for %s = %v (%v), want %d", host, v, ok, leaf.NotAfter.Unix())
	}

	plain := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://"+g.srv.HTTPAddr().String()+"/x?y=1", nil)
	req.Host = host
	res, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := strings.TrimSuffix(g.URL, "/") + "/x?y=1"; res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != want {
		t.Fatalf("port 80: %d %q, want 301 %q", res.StatusCode, res.Header.Get("Location"), want)
	}
}

// TestACMECertificatesSharedThroughRedis runs two gateways on one Redis:
// the first obtains the certificate from Pebble, the second serves the
// same certificate without placing an order, and neither writes ACME
// files to its data_dir.
func TestACMECertificatesSharedThroughRedis(t *testing.T) {
	const host = "panel.example.com"
	rs := redistest.Start(t, redistest.Options{})
	ca := acmetest.New(t)
	o := acmeOpts{ca: ca, hosts: []string{host}, redis: rs.Addr(), upstream: newUpstream(t).URL,
		keyFile: filepath.Join(t.TempDir(), "secret.key")}
	first := startACMEGateway(t, o, false)
	want := first.waitLeaf(t, host, ca)
	if ca.Orders() == 0 {
		t.Fatal("the first gateway got its certificate without an order")
	}

	orders := ca.Orders()
	second := startACMEGateway(t, o, true)
	got := second.waitLeaf(t, host, ca)
	if !bytes.Equal(got.Raw, want.Raw) {
		t.Fatalf("second gateway serves serial %v, want the first's %v", got.SerialNumber, want.SerialNumber)
	}
	if n := ca.Orders() - orders; n != 0 {
		t.Fatalf("second gateway placed %d orders with the CA, want 0", n)
	}
	for _, g := range []*acmeGateway{first, second} {
		if _, err := os.Stat(filepath.Join(g.dataDir, "acme")); !os.IsNotExist(err) {
			t.Errorf("ACME files written to %s/acme with the Redis store (%v)", g.dataDir, err)
		}
	}

	// One sign-in works on both: the session is in the same Redis.
	first.addUser(t, "alice", "correct horse")
	b := first.browser(t, host, ca.Roots())
	login(t, b, "alice", "correct horse")
	secretEnrol(t, first.gateway, b)
	mustStatus(t, b.get("/"), http.StatusOK, "first gateway")
	b2 := second.browser(t, host, ca.Roots())
	b2.c.Jar = b.c.Jar
	mustStatus(t, b2.get("/"), http.StatusOK, "second gateway, same session")
}

// TestACMEReloadAddsAndRemovesHosts rewrites the config file of a
// serving acme-mode gateway: a route with a new host gets a certificate
// from Pebble without a restart and appears in the metrics, a signed-in
// browser keeps its session throughout, and a removed host stops being
// served.
func TestACMEReloadAddsAndRemovesHosts(t *testing.T) {
	const host, added = "panel.example.com", "new.example.com"
	ca := acmetest.New(t)
	o := acmeOpts{ca: ca, hosts: []string{host}, upstream: newUpstream(t).URL}
	g := startACMEGateway(t, o, false)
	g.waitLeaf(t, host, ca)
	if _, err := g.leaf(added, ca.Roots()); err == nil {
		t.Fatalf("%s has a certificate before it is routed", added)
	}
	g.addUser(t, "alice", "correct horse")
	b := g.browser(t, host, ca.Roots())
	login(t, b, "alice", "correct horse")
	secretEnrol(t, g.gateway, b)
	mustStatus(t, b.get("/"), http.StatusOK, "before the reload")

	o.hosts = []string{host, added}
	writeACMEConfig(t, g.path, g.dataDir, o)
	leaf := g.waitLeaf(t, added, ca)
	if err := leaf.VerifyHostname(added); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, b.get("/"), http.StatusOK, "session after the reload")
	if v, ok := expiryGauge(t, g.gateway, added); !ok || int64(v) != leaf.NotAfter.Unix() {
		t.Fatalf("expiry gauge for %s = %v (%v), want %d", added, v, ok, leaf.NotAfter.Unix())
	}

	o.hosts = []string{host}
	writeACMEConfig(t, g.path, g.dataDir, o)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := g.leaf(added, ca.Roots()); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still served 30s after its route was removed\n%s", added, g.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := expiryGauge(t, g.gateway, added); ok {
		t.Fatalf("expiry gauge still reports %s after its route was removed", added)
	}
	mustStatus(t, b.get("/"), http.StatusOK, "session after the second reload")
}
