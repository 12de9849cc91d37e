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
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "panel.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"panel.example.com"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
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
