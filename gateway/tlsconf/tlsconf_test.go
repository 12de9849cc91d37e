package tlsconf

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
)

// selfSigned writes a self-signed certificate for names to certFile and
// keyFile and returns it parsed.
func selfSigned(t *testing.T, certFile, keyFile string, serial int64, names ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serveTLS serves h over TLS with tc on a free loopback port.
func serveTLS(t *testing.T, tc *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(tls.NewListener(ln, tc)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// handshake connects to addr with SNI name, trusting roots, and returns
// the leaf certificate the server presented.
func handshake(t *testing.T, addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestOffIsErrOff(t *testing.T) {
	c := config.Defaults()
	if _, err := New(&c, nil, time.Now, zerolog.Nop()); !errors.Is(err, ErrOff) {
		t.Fatalf("New(off) = %v, want ErrOff", err)
	}
}

func TestManualServesAndReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := selfSigned(t, certFile, keyFile, 1, "panel.example.com")

	cfg := config.Defaults()
	cfg.TLS.Mode, cfg.TLS.CertFile, cfg.TLS.KeyFile = config.TLSManual, certFile, keyFile
	clk := &fakeClock{t: time.Now()}
	m, err := New(&cfg, nil, clk.now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	addr := serveTLS(t, m.TLSConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			t.Error("request not over TLS")
		}
		_, _ = io.WriteString(w, "hello")
	}))

	// A client trusting the certificate gets a response over HTTPS.
	pool := x509.NewCertPool()
	pool.AddCert(first)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "panel.example.com"}}}
	resp, err := cl.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Fatalf("body %q", body)
	}

	// Replace the files on disk: the new certificate is served once the
	// check interval has passed.
	second := selfSigned(t, certFile, keyFile, 2, "panel.example.com")
	pool.AddCert(second)
	got, err := handshake(t, addr, "panel.example.com", pool)
	if err != nil {
		t.Fatal(err)
	}
	if got.SerialNumber.Int64() != 1 {
		t.Fatalf("within the check interval: serial %v, want the cached 1", got.SerialNumber)
	}
	clk.add(manualCheckEvery)
	if got, err = handshake(t, addr, "panel.example.com", pool); err != nil {
		t.Fatal(err)
	}
	if got.SerialNumber.Int64() != 2 {
		t.Fatalf("after the files changed: serial %v, want 2", got.SerialNumber)
	}

	// A broken rewrite keeps the last good certificate.
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.add(manualCheckEvery)
	if got, err = handshake(t, addr, "panel.example.com", pool); err != nil {
		t.Fatal(err)
	}
	if got.SerialNumber.Int64() != 2 {
		t.Fatalf("after a broken rewrite: serial %v, want 2 kept", got.SerialNumber)
	}
}

func TestManualMissingFiles(t *testing.T) {
	cfg := config.Defaults()
	cfg.TLS.Mode, cfg.TLS.CertFile, cfg.TLS.KeyFile = config.TLSManual, "/nonexistent/c.pem", "/nonexistent/k.pem"
	if _, err := New(&cfg, nil, time.Now, zerolog.Nop()); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("New = %v, want ErrNoCertificate", err)
	}
}

func TestHTTPHandlerRedirects(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	selfSigned(t, certFile, keyFile, 1, "panel.example.com")
	cfg := config.Defaults()
	cfg.TLS.Mode, cfg.TLS.CertFile, cfg.TLS.KeyFile = config.TLSManual, certFile, keyFile
	m, err := New(&cfg, nil, time.Now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		port, method, target, want string
		code                       int
	}{
		{"443", http.MethodGet, "http://panel.example.com/a?b=c", "https://panel.example.com/a?b=c", http.StatusMovedPermanently},
		{"", http.MethodGet, "http://panel.example.com:80/", "https://panel.example.com/", http.StatusMovedPermanently},
		{"8443", http.MethodHead, "http://panel.example.com/x", "https://panel.example.com:8443/x", http.StatusMovedPermanently},
		{"443", http.MethodPost, "http://panel.example.com/login", "https://panel.example.com/login", http.StatusPermanentRedirect},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		m.HTTPHandler(tt.port).ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
		if rec.Code != tt.code || rec.Header().Get("Location") != tt.want {
			t.Errorf("%s %s (port %q) = %d %q, want %d %q", tt.method, tt.target, tt.port, rec.Code, rec.Header().Get("Location"), tt.code, tt.want)
		}
	}
}

// pebble runs Pebble's ACME server in-process and returns its directory
// URL, the path of a PEM file trusting its API listener (for
// tls.acme.ca_root), a pool holding the root it issues under (fetched
// from the management endpoint) and a count of API requests.
func pebble(t *testing.T) (string, string, *x509.CertPool, *atomic.Int64) {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	lg := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	authority := ca.New(lg, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	v := va.New(lg, 80, 443, false, "", store)
	w := wfe.New(lg, store, v, authority, []string{"pebble.letsencrypt.org"}, false, false, 3, 5)
	var requests atomic.Int64
	api := w.Handler()
	acmeSrv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		api.ServeHTTP(rw, r)
	}))
	t.Cleanup(acmeSrv.Close)
	mgmt := httptest.NewTLSServer(w.ManagementHandler())
	t.Cleanup(mgmt.Close)

	resp, err := mgmt.Client().Get(mgmt.URL + wfe.RootCertPath + "0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	root, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: %d %v", resp.StatusCode, err)
	}
	rootFile := filepath.Join(t.TempDir(), "pebble-root.pem")
	listener := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: acmeSrv.Certificate().Raw})
	if err := os.WriteFile(rootFile, listener, 0o600); err != nil {
		t.Fatal(err)
	}
	issued := x509.NewCertPool()
	if !issued.AppendCertsFromPEM(root) {
		t.Fatalf("pebble root is not PEM: %q", root)
	}
	return acmeSrv.URL + wfe.DirectoryPath, rootFile, issued, &requests
}

func TestACMEObtainsCertificateFromPebble(t *testing.T) {
	dirURL, caRoot, issuedRoots, requests := pebble(t)
	const host = "panel.example.com"

	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS.Mode = config.TLSACME
	cfg.TLS.ACME = config.ACME{Email: "ops@example.com", CA: dirURL, CARoot: caRoot}
	cfg.Routes = []config.Route{{Name: "panel", Host: host, Upstream: "http://127.0.0.1:1"}}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	m, err := New(&cfg, []string{host}, time.Now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	addr := serveTLS(t, m.TLSConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	_, port, _ := net.SplitHostPort(addr)
	p, _ := net.LookupPort("tcp", port)
	m.SetListenPorts(0, p)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.Manage(ctx); err != nil {
		t.Fatal(err)
	}

	// An HTTPS client trusting Pebble's root completes a request to the
	// gateway under the host name.
	cl := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: issuedRoots, ServerName: host},
		ForceAttemptHTTP2: true,
	}}
	resp, err := cl.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" || resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName == "" && len(resp.TLS.PeerCertificates[0].DNSNames) == 0 {
		t.Fatalf("body %q tls %v", body, resp.TLS)
	}
	if err := resp.TLS.PeerCertificates[0].VerifyHostname(host); err != nil {
		t.Fatal(err)
	}

	// The certificate is in storage: a second manager on the same storage
	// loads it without asking the CA.
	before := requests.Load()
	m2, err := New(&cfg, []string{host}, time.Now, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if err := m2.Manage(ctx); err != nil {
		t.Fatalf("second manager on the same storage: %v", err)
	}
	if n := requests.Load() - before; n != 0 {
		t.Fatalf("second manager made %d requests to the CA, want 0", n)
	}
	addr2 := serveTLS(t, m2.TLSConfig(), http.NotFoundHandler())
	if _, err := handshake(t, addr2, host, issuedRoots); err != nil {
		t.Fatalf("second manager: %v", err)
	}
	// An unknown name gets no certificate.
	if _, err := handshake(t, addr, "other.example.com", issuedRoots); err == nil {
		t.Fatal("handshake for an unmanaged name succeeded")
	}
}
