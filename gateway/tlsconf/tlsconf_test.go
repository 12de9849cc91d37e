package tlsconf

import (
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
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/testkit"
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
		NotAfter:              time.Now().Add(time.Duration(serial) * time.Hour),
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

func TestOffIsErrOff(t *testing.T) {
	c := config.Defaults()
	if _, err := New(c.TLS, c.Listen, nil, Options{Logger: zerolog.Nop()}); !errors.Is(err, ErrOff) {
		t.Fatalf("New(off) = %v, want ErrOff", err)
	}
}

func TestManualServesAndReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := selfSigned(t, certFile, keyFile, 1, "panel.example.com")

	cfg := config.Defaults()
	cfg.TLS.Mode, cfg.TLS.CertFile, cfg.TLS.KeyFile = config.TLSManual, certFile, keyFile
	clk := testkit.NewClock(time.Now())
	m, err := New(cfg.TLS, cfg.Listen, nil, Options{Now: clk.Now, Logger: zerolog.Nop()})
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
	clk.Advance(manualCheckEvery)
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
	clk.Advance(manualCheckEvery)
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
	if _, err := New(cfg.TLS, cfg.Listen, nil, Options{Logger: zerolog.Nop()}); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("New = %v, want ErrNoCertificate", err)
	}
}

func TestHTTPHandlerRedirects(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	selfSigned(t, certFile, keyFile, 1, "panel.example.com")
	cfg := config.Defaults()
	cfg.TLS.Mode, cfg.TLS.CertFile, cfg.TLS.KeyFile = config.TLSManual, certFile, keyFile
	m, err := New(cfg.TLS, cfg.Listen, nil, Options{Logger: zerolog.Nop()})
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

// SetFiles (a config reload) switches to new files at once, refuses
// files that cannot be loaded, and re-reads the same paths without
// waiting for the check interval; CertificateExpiries follows.
func TestManualSetFilesAndExpiry(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := filepath.Join(dir, "a.pem"), filepath.Join(dir, "a.key")
	a := selfSigned(t, certA, keyA, 1, "a.example.com")
	cfg := config.Defaults()
	cfg.TLS.Mode, cfg.TLS.CertFile, cfg.TLS.KeyFile = config.TLSManual, certA, keyA
	clk := testkit.NewClock(time.Now())
	m, err := New(cfg.TLS, cfg.Listen, nil, Options{Now: clk.Now, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.CertificateExpiries(); len(got) != 1 || !got["a.example.com"].Equal(a.NotAfter) {
		t.Fatalf("expiries = %v, want a.example.com at %v", got, a.NotAfter)
	}
	addr := serveTLS(t, m.TLSConfig(), http.NotFoundHandler())
	pool := x509.NewCertPool()
	pool.AddCert(a)

	certB, keyB := filepath.Join(dir, "b.pem"), filepath.Join(dir, "b.key")
	b := selfSigned(t, certB, keyB, 2, "b.example.com")
	pool.AddCert(b)
	if err := m.SetFiles(certB, keyB); err != nil {
		t.Fatal(err)
	}
	if got, err := handshake(t, addr, "b.example.com", pool); err != nil || got.SerialNumber.Int64() != 2 {
		t.Fatalf("after SetFiles: %v %v, want serial 2", got, err)
	}
	if got := m.CertificateExpiries(); len(got) != 1 || !got["b.example.com"].Equal(b.NotAfter) {
		t.Fatalf("expiries = %v, want only b.example.com at %v", got, b.NotAfter)
	}

	if err := m.SetFiles(filepath.Join(dir, "missing.pem"), keyB); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("SetFiles(missing) = %v, want ErrNoCertificate", err)
	}
	if got, err := handshake(t, addr, "b.example.com", pool); err != nil || got.SerialNumber.Int64() != 2 {
		t.Fatalf("after a refused SetFiles: %v %v, want serial 2 kept", got, err)
	}

	// The same paths with new content: read now, not after the interval.
	c := selfSigned(t, certB, keyB, 3, "b.example.com")
	pool.AddCert(c)
	if err := m.SetFiles(certB, keyB); err != nil {
		t.Fatal(err)
	}
	if got, err := handshake(t, addr, "b.example.com", pool); err != nil || got.SerialNumber.Int64() != 3 {
		t.Fatalf("after SetFiles on the same paths: %v %v, want serial 3", got, err)
	}
	if got := m.CertificateExpiries(); !got["b.example.com"].Equal(c.NotAfter) {
		t.Fatalf("expiries = %v, want b.example.com at %v", got, c.NotAfter)
	}
}
