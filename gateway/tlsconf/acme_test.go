package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/acme"
	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/acmetest"
	"github.com/authgate/authgate/gateway/internal/testkit"
)

// certWait bounds how long a test waits for a certificate from Pebble
// (about a second each on an idle machine; generous for a loaded one).
const certWait = 90 * time.Second

// deadPort is a loopback port whose listener closes every connection at
// once: a challenge validated there fails.
func deadPort(t *testing.T) int {
	t.Helper()
	ln := listenLoopback(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return portOf(ln)
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

func portOf(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// acmeConfig is a valid acme-mode config against ca for hosts, with its
// storage in dir; http01 turns on tls.http_listen.
func acmeConfig(t *testing.T, ca *acmetest.CA, dir string, http01 bool, hosts ...string) *config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS.Mode = config.TLSACME
	cfg.TLS.ACME = config.ACME{Email: "ops@example.com", CA: ca.DirectoryURL, CARoot: ca.APIRootFile, Storage: filepath.Join(dir, "acme")}
	if http01 {
		cfg.TLS.HTTPListen = "127.0.0.1:0"
	}
	for _, h := range hosts {
		cfg.Routes = append(cfg.Routes, config.Route{Name: h, Host: h, Upstream: "http://127.0.0.1:1"})
	}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// acmeGateway is a Manager serving its TLS config (and, with
// tls.http_listen, its plain-HTTP handler) on loopback listeners, as the
// server does.
type acmeGateway struct {
	m        *Manager
	tlsAddr  string
	tlsPort  int
	httpPort int // 0 without tls.http_listen
}

// serveACME builds a Manager for cfg and serves it; the listeners are
// open before it returns, so their ports can be given to the CA.
func serveACME(t *testing.T, cfg *config.Config, hosts []string, logw io.Writer) *acmeGateway {
	t.Helper()
	m, err := New(cfg.TLS, cfg.Listen, hosts, Options{Logger: zerolog.New(logw)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	g := &acmeGateway{m: m, tlsAddr: serveTLS(t, m.TLSConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))}
	if cfg.TLS.HTTPListen != "" {
		ln := listenLoopback(t)
		srv := &http.Server{Handler: m.HTTPHandler("443"), ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		g.httpPort = portOf(ln)
	}
	_, p, _ := net.SplitHostPort(g.tlsAddr)
	g.tlsPort, _ = strconv.Atoi(p)
	m.SetListenPorts(g.httpPort, g.tlsPort)
	return g
}

// manage runs Manage until the test ends.
func (g *acmeGateway) manage(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := g.m.Manage(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitCert polls handshakes for name until the server presents a
// certificate that roots trust.
func waitCert(t *testing.T, addr, name string, roots *x509.CertPool, logs func() string) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(certWait)
	var err error
	for time.Now().Before(deadline) {
		var c *x509.Certificate
		if c, err = handshake(t, addr, name, roots); err == nil {
			return c
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no trusted certificate for %s after %v: %v\n%s", name, certWait, err, logs())
	return nil
}

// TestACMEChallenges obtains a certificate from Pebble with each
// challenge type, validated for real: Pebble resolves the host through
// the test's DNS server and connects to the listener under test, while
// the other challenge's port is dead (and HTTP-01 is not even offered
// when tls.http_listen is off).
func TestACMEChallenges(t *testing.T) {
	const host = "panel.example.com"
	for _, tc := range []struct {
		name   string
		http01 bool
		want   string
	}{
		{"http-01 on http_listen", true, acme.ChallengeHTTP01},
		{"tls-alpn-01 on listen", false, acme.ChallengeTLSALPN01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := acmetest.New(t)
			logs := &testkit.SyncBuffer{}
			cfg := acmeConfig(t, ca, t.TempDir(), tc.http01, host)
			g := serveACME(t, cfg, []string{host}, logs)
			if tc.http01 {
				ca.Start(g.httpPort, deadPort(t))
			} else {
				ca.Start(deadPort(t), g.tlsPort)
			}
			g.manage(t)
			all := func() string { return logs.String() + ca.Log() }
			leaf := waitCert(t, g.tlsAddr, host, ca.Roots(), all)
			if err := leaf.VerifyHostname(host); err != nil {
				t.Fatal(err)
			}
			valid := ca.ValidChallenges()
			other := acme.ChallengeTLSALPN01
			if tc.want == other {
				other = acme.ChallengeHTTP01
			}
			if valid[tc.want] < 1 || valid[other] != 0 {
				t.Fatalf("valid challenges %v, want %s only\n%s", valid, tc.want, all())
			}
			if ca.DNS().Lookups(host) == 0 {
				t.Fatal("Pebble validated without resolving the host through the test DNS server")
			}

			// An HTTPS client trusting only Pebble's root gets a response.
			cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: ca.Roots(), ServerName: host},
				ForceAttemptHTTP2: true,
			}}
			resp, err := cl.Get("https://" + g.tlsAddr + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "ok" || resp.ProtoMajor != 2 {
				t.Fatalf("body %q over %s, want ok over HTTP/2", body, resp.Proto)
			}
			// The expiry the metrics report is the served certificate's.
			if got := g.m.CertificateExpiries(); len(got) != 1 || !got[host].Equal(leaf.NotAfter) {
				t.Fatalf("expiries = %v, want %s at %v", got, host, leaf.NotAfter)
			}
			// An unknown name gets no certificate.
			if _, err := handshake(t, g.tlsAddr, "other.example.com", ca.Roots()); err == nil {
				t.Fatal("handshake for an unmanaged name succeeded")
			}
		})
	}
}

// A second manager on the same storage serves the certificate the first
// obtained without placing an order with the CA.
func TestACMESharedStorage(t *testing.T) {
	const host = "panel.example.com"
	ca := acmetest.New(t)
	dir := t.TempDir()
	logs := &testkit.SyncBuffer{}
	g1 := serveACME(t, acmeConfig(t, ca, dir, false, host), []string{host}, logs)
	ca.Start(deadPort(t), g1.tlsPort)
	g1.manage(t)
	first := waitCert(t, g1.tlsAddr, host, ca.Roots(), func() string { return logs.String() + ca.Log() })

	orders := ca.Orders()
	g2 := serveACME(t, acmeConfig(t, ca, dir, false, host), []string{host}, logs)
	g2.manage(t)
	second := waitCert(t, g2.tlsAddr, host, ca.Roots(), logs.String)
	if !bytes.Equal(first.Raw, second.Raw) {
		t.Fatalf("second manager serves serial %v, want the first's %v", second.SerialNumber, first.SerialNumber)
	}
	if n := ca.Orders() - orders; n != 0 {
		t.Fatalf("second manager placed %d orders, want 0", n)
	}
}

// SetHosts (a reload) manages added hosts on the running config and stops
// managing removed ones.
func TestACMESetHosts(t *testing.T) {
	ca := acmetest.New(t)
	logs := &testkit.SyncBuffer{}
	all := func() string { return logs.String() + ca.Log() }
	cfg := acmeConfig(t, ca, t.TempDir(), false, "a.example.com")
	g := serveACME(t, cfg, []string{"a.example.com"}, logs)
	ca.Start(deadPort(t), g.tlsPort)
	g.manage(t)
	waitCert(t, g.tlsAddr, "a.example.com", ca.Roots(), all)
	if _, err := handshake(t, g.tlsAddr, "b.example.com", ca.Roots()); err == nil {
		t.Fatal("b.example.com has a certificate before it is a host")
	}

	g.m.SetHosts([]string{"a.example.com", "B.example.com."})
	b := waitCert(t, g.tlsAddr, "b.example.com", ca.Roots(), all)
	if got := g.m.CertificateExpiries(); len(got) != 2 || !got["b.example.com"].Equal(b.NotAfter) {
		t.Fatalf("expiries = %v, want a and b", got)
	}

	g.m.SetHosts([]string{"b.example.com"})
	if _, err := handshake(t, g.tlsAddr, "a.example.com", ca.Roots()); err == nil {
		t.Fatal("a.example.com still served after it was removed")
	}
	if got := g.m.CertificateExpiries(); len(got) != 1 || got["b.example.com"].IsZero() {
		t.Fatalf("expiries = %v, want b only", got)
	}
	if _, err := handshake(t, g.tlsAddr, "b.example.com", ca.Roots()); err != nil {
		t.Fatalf("b.example.com after a removed: %v", err)
	}
}

// A tls.acme.ca_root without a certificate is refused at start.
func TestACMEBadCARoot(t *testing.T) {
	ca := acmetest.New(t)
	cfg := acmeConfig(t, ca, t.TempDir(), false, "a.example.com")
	cfg.TLS.ACME.CARoot = filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(cfg.TLS.ACME.CARoot, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg.TLS, cfg.Listen, []string{"a.example.com"}, Options{Logger: zerolog.Nop()}); !errors.Is(err, ErrBadCARoot) {
		t.Fatalf("New = %v, want ErrBadCARoot", err)
	}
}
