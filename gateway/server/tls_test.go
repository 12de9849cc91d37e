package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
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

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/server"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and
// panel.example.com and returns it.
func writeSelfSigned(t *testing.T, certFile, keyFile string) *x509.Certificate {
	return writeCert(t, certFile, keyFile, 7, "panel.example.com", time.Hour)
}

// writeCert writes a self-signed certificate for name and 127.0.0.1,
// valid for validFor, and returns it.
func writeCert(t *testing.T, certFile, keyFile string, serial int64, name string, validFor time.Duration) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor),
		DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestManualTLSLogin serves the gateway itself over HTTPS (tls.mode
// manual, Serve on a real listener), logs in through it, and checks the
// session cookie is __Host-/Secure and that tls.http_listen redirects.
func TestManualTLSLogin(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeSelfSigned(t, certFile, keyFile)

	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.SecretKeyFile = filepath.Join(dir, "secret.key")
	cfg.Store.Path = filepath.Join(dir, "authgate.db")
	cfg.Listen = "127.0.0.1:0"
	cfg.Password.Argon2 = config.Argon2{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}
	cfg.TwoFactor.Mode = config.ModeOff
	cfg.Routes = []config.Route{{Name: "panel", Upstream: newUpstream(t).URL}}
	cfg.TLS = config.TLS{Mode: config.TLSManual, CertFile: certFile, KeyFile: keyFile, HTTPListen: "127.0.0.1:0"}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), &cfg, zerolog.Nop(), server.Options{NoControlSocket: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	g := &gateway{URL: "https://" + ln.Addr().String(), srv: srv, cfg: &cfg}
	g.addUser(t, "alice", "correct horse")
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, g: g, hdr: http.Header{"Accept": {"text/html,application/xhtml+xml"}}, c: &http.Client{
		Jar:           jar,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}}

	r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}})
	mustStatus(t, r, http.StatusSeeOther, "login over https")
	setCookie := strings.Join(r.header.Values("Set-Cookie"), "\n")
	if !strings.Contains(setCookie, "__Host-authgate_session=") || !strings.Contains(setCookie, "Secure") {
		t.Fatalf("session cookie over https is not __Host-/Secure: %q", setCookie)
	}
	r = b.get("/")
	mustStatus(t, r, http.StatusOK, "panel over https")
	if !strings.Contains(r.body, "alice") {
		t.Fatalf("upstream did not see alice: %.300s", r.body)
	}

	// The plain-HTTP listener redirects to https on the gateway's port.
	httpAddr := srv.HTTPAddr()
	if httpAddr == nil {
		t.Fatal("no http listener")
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 5 * time.Second}
	res, err := plain.Get("http://" + httpAddr.String() + "/settings?x=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := "https://127.0.0.1:" + port + "/settings?x=1"; res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != want {
		t.Fatalf("http listener: %d %q, want 301 %q", res.StatusCode, res.Header.Get("Location"), want)
	}
}

// TestManualTLSReload rewrites the config file of a gateway serving
// manual certificates: new tls.cert_file/key_file paths take effect
// without a restart, a pair that cannot be loaded rejects the reload
// and keeps the running certificate, and the metrics listener reports
// the served certificate's expiry throughout.
func TestManualTLSReload(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := filepath.Join(dir, "a.pem"), filepath.Join(dir, "a.key")
	certB, keyB := filepath.Join(dir, "b.pem"), filepath.Join(dir, "b.key")
	a := writeCert(t, certA, keyA, 1, "a.example.com", 2*time.Hour)
	b := writeCert(t, certB, keyB, 2, "b.example.com", 3*time.Hour)
	pool := x509.NewCertPool()
	pool.AddCert(a)
	pool.AddCert(b)
	up := newUpstream(t).URL
	tlsYAML := func(cert, key string) string {
		return fmt.Sprintf("metrics:\n  listen: \"127.0.0.1:0\"\ntls:\n  mode: manual\n  cert_file: %q\n  key_file: %q\n", cert, key)
	}
	g := startFileGateway(t, fileConfig{upstream: up, extra: tlsYAML(certA, keyA)})
	addr := strings.TrimPrefix(g.URL, "http://")
	try := func(name string) (int64, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
	}
	serial := func(name string) int64 {
		t.Helper()
		n, err := try(name)
		if err != nil {
			t.Fatalf("handshake for %s: %v", name, err)
		}
		return n
	}
	expiry := func(name string) (float64, bool) {
		return value(scrape(t, g.gateway), "authgate_tls_certificate_expiry_timestamp_seconds", map[string]string{"name": name})
	}
	if got := serial("a.example.com"); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	if v, ok := expiry("a.example.com"); !ok || int64(v) != a.NotAfter.Unix() {
		t.Fatalf("expiry of a = %v %v, want %d", v, ok, a.NotAfter.Unix())
	}

	writeGatewayConfig(t, g.path, filepath.Dir(g.path), fileConfig{upstream: up, extra: tlsYAML(certB, keyB)})
	deadline := time.Now().Add(15 * time.Second)
	for n, err := try("b.example.com"); n != 2; n, err = try("b.example.com") {
		if time.Now().After(deadline) {
			t.Fatalf("new certificate paths not served after a reload (%v):\n%s", err, g.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v, ok := expiry("b.example.com"); !ok || int64(v) != b.NotAfter.Unix() {
		t.Fatalf("expiry of b = %v %v, want %d", v, ok, b.NotAfter.Unix())
	}
	if _, ok := expiry("a.example.com"); ok {
		t.Fatal("the replaced certificate is still reported")
	}
	if strings.Contains(g.logs.String(), "only change at restart") {
		t.Fatalf("new certificate paths reported as needing a restart:\n%s", g.logs.String())
	}

	// An existing file that is no certificate: the reload is refused.
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeGatewayConfig(t, g.path, filepath.Dir(g.path), fileConfig{upstream: up, extra: tlsYAML(bad, keyB)})
	waitLog(t, g.logs, "tls.cert_file/tls.key_file")
	if !strings.Contains(g.logs.String(), "config reload rejected") {
		t.Fatalf("bad certificate did not reject the reload:\n%s", g.logs.String())
	}
	if got := serial("b.example.com"); got != 2 {
		t.Fatalf("after a rejected reload: serial %d, want 2 kept", got)
	}
}
