package tlsconf

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/acmetest"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
)

// The renewal tests run against a CA issuing certificates that live
// renewLifetime, without ACME Renewal Information (ARI): certmagic then
// renews when a third of the lifetime is left (about 13 s after issue)
// rather than at a random time in Pebble's ARI window, so the tests know
// which certificate they are looking at. The managers check for renewal
// every renewCheck instead of every 10 minutes.
const (
	renewLifetime = 20 * time.Second
	renewCheck    = 200 * time.Millisecond
	// renewWait bounds the wait for a renewed certificate, counted from
	// the first one: renewal is due after about 13 s and takes about a
	// second on an idle machine; generous for a loaded one.
	renewWait = 60 * time.Second
)

// renewingCA is a CA issuing short-lived certificates, without ARI.
func renewingCA(t *testing.T) *acmetest.CA {
	t.Helper()
	return acmetest.NewWith(t, acmetest.Options{CertLifetime: renewLifetime, DisableARI: true})
}

// serveRenewing builds a Manager for cfg with o (its logger writing to
// logw, renewals checked every renewCheck) and serves its TLS config on
// a loopback listener, which also answers TLS-ALPN-01, with the handler
// handler returns for the manager (nil: 404 for everything).
func serveRenewing(t *testing.T, cfg *config.Config, hosts []string, o Options, handler func(*Manager) http.Handler, logw io.Writer) *acmeGateway {
	t.Helper()
	o.Logger = zerolog.New(logw)
	o.RenewCheckInterval = renewCheck
	m, err := New(cfg.TLS, cfg.Listen, hosts, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	h := http.NotFoundHandler()
	if handler != nil {
		h = handler(m)
	}
	g := &acmeGateway{m: m, tlsAddr: serveTLS(t, m.TLSConfig(), h)}
	_, p, _ := net.SplitHostPort(g.tlsAddr)
	g.tlsPort, _ = strconv.Atoi(p)
	m.SetListenPorts(0, g.tlsPort)
	return g
}

// waitRenewed polls handshakes for name until the server presents a
// certificate other than old that roots trust (one the CA issued).
func waitRenewed(t *testing.T, addr, name string, old *x509.Certificate, roots *x509.CertPool, logs func() string) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(renewWait)
	var last string
	for time.Now().Before(deadline) {
		c, err := handshake(t, addr, name, roots)
		switch {
		case err != nil:
			last = err.Error()
		case c.SerialNumber.Cmp(old.SerialNumber) != 0:
			return c
		default:
			last = "still serial " + c.SerialNumber.String()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: no renewed certificate %v after the first (expiring %v): %s\n%s", name, renewWait, old.NotAfter, last, logs())
	return nil
}

// checkShortLived fails unless leaf lives renewLifetime at most (Pebble
// took the test's validity period, not its 90-day default).
func checkShortLived(t *testing.T, leaf *x509.Certificate) {
	t.Helper()
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life <= 0 || life > renewLifetime {
		t.Fatalf("certificate lives %v, want at most %v", life, renewLifetime)
	}
}

// A managed certificate is renewed before it expires: a second order
// reaches the CA, handshakes get the new certificate, and the expiry the
// manager reports (the metric's source) moves forward.
func TestACMERenews(t *testing.T) {
	const host = "panel.example.com"
	ca := renewingCA(t)
	logs := &testkit.SyncBuffer{}
	all := func() string { return logs.String() + ca.Log() }
	g := serveRenewing(t, acmeConfig(t, ca, t.TempDir(), false, host), []string{host}, Options{}, nil, logs)
	ca.Start(deadPort(t), g.tlsPort)
	g.manage(t)

	first := waitCert(t, g.tlsAddr, host, ca.Roots(), all)
	checkShortLived(t, first)
	if n := ca.Orders(); n != 1 {
		t.Fatalf("%d orders for the first certificate, want 1", n)
	}
	if got := g.m.CertificateExpiries()[host]; !got.Equal(first.NotAfter) {
		t.Fatalf("expiry before renewal = %v, want %v", got, first.NotAfter)
	}

	renewed := waitRenewed(t, g.tlsAddr, host, first, ca.Roots(), all)
	if err := renewed.VerifyHostname(host); err != nil {
		t.Fatal(err)
	}
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Fatalf("renewed certificate expires %v, not after the first's %v", renewed.NotAfter, first.NotAfter)
	}
	if n := ca.Orders(); n < 2 {
		t.Fatalf("a renewed certificate after %d orders, want a second order", n)
	}
	if got := g.m.CertificateExpiries()[host]; !got.Equal(renewed.NotAfter) {
		t.Fatalf("expiry after renewal = %v, want the renewed certificate's %v", got, renewed.NotAfter)
	}
}

// Two gateway instances sharing one Redis (SharedStorage) renew a
// certificate once: both find it due at the same check, the storage lock
// lets one order the renewal while the other waits, then finds it
// renewed and loads it. Both end up serving the same new certificate.
// Without the lock each would place its own order. The second instance
// runs in another process (TestACMERenewPeer), as in production:
// certmagic drops a renewal job for a name already being renewed in the
// same process, so two managers in one process would never reach the
// lock.
func TestACMERenewsSharedStorage(t *testing.T) {
	const host = "panel.example.com"
	srv := redistest.Start(t, redistest.Options{})
	ca := renewingCA(t)
	logs := &testkit.SyncBuffer{}
	all := func() string { return logs.String() + ca.Log() }
	prefix := uniquePrefix()
	o := Options{Storage: sharedStorage(t, []string{srv.Addr()}, prefix)}
	g := serveRenewing(t, acmeConfig(t, ca, t.TempDir(), false, host), []string{host}, o, nil, logs)
	// The CA validates on one port, as behind one address: this instance
	// answers the challenge of whichever instance orders, from Redis.
	ca.Start(deadPort(t), g.tlsPort)
	g.manage(t)
	first := waitCert(t, g.tlsAddr, host, ca.Roots(), all)
	checkShortLived(t, first)
	peer := startRenewPeer(t, srv.Addr(), prefix, ca, logs)
	if got := waitCert(t, peer, host, ca.Roots(), all); !bytes.Equal(got.Raw, first.Raw) {
		t.Fatalf("the peer serves serial %v, want the first instance's %v from Redis", got.SerialNumber, first.SerialNumber)
	}
	if n := ca.Orders(); n != 1 {
		t.Fatalf("%d orders for the first certificate, want 1", n)
	}

	r1 := waitRenewed(t, g.tlsAddr, host, first, ca.Roots(), all)
	r2 := waitRenewed(t, peer, host, first, ca.Roots(), all)
	if !bytes.Equal(r1.Raw, r2.Raw) {
		t.Fatalf("after renewal the instances serve serials %v and %v; want one certificate\n%s", r1.SerialNumber, r2.SerialNumber, all())
	}
	// A second renewal order would have been placed at the same check as
	// the first; the next renewal is due only about 13 s after this one.
	time.Sleep(5 * renewCheck)
	if n := ca.Orders(); n != 2 {
		t.Fatalf("%d orders in all, want 2: the first certificate and one renewal\n%s", n, all())
	}
	if got := g.m.CertificateExpiries()[host]; !got.Equal(r1.NotAfter) {
		t.Errorf("the first instance reports expiry %v, want the renewed certificate's %v", got, r1.NotAfter)
	}
	if got := peerExpiry(t, peer, host, ca.Roots()); !got.Equal(r1.NotAfter) {
		t.Errorf("the peer reports expiry %v, want the renewed certificate's %v", got, r1.NotAfter)
	}
}

// renewPeerEnv makes the test binary the second instance of
// TestACMERenewsSharedStorage; its value is "redisAddr keyPrefix
// directoryURL caRootFile".
const renewPeerEnv = "AUTHGATE_TEST_RENEW_PEER"

// startRenewPeer runs TestACMERenewPeer in a child process on the same
// Redis namespace and CA, and returns the address of its TLS listener.
// The child's log goes to logw; it stops when the test ends (its stdin
// closes, also if this process dies).
func startRenewPeer(t *testing.T, redisAddr, prefix string, ca *acmetest.CA, logw io.Writer) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestACMERenewPeer$")
	cmd.Env = append(os.Environ(), renewPeerEnv+"="+strings.Join([]string{redisAddr, prefix, ca.DirectoryURL, ca.APIRootFile}, " "))
	cmd.Stderr = logw
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if addr, ok := strings.CutPrefix(lines.Text(), "addr "); ok {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return addr
		}
	}
	t.Fatalf("the peer exited without its address: %v", lines.Err())
	return ""
}

// peerExpiry asks the peer (over HTTPS, trusting roots) for the expiry
// its manager reports for name.
func peerExpiry(t *testing.T, addr, name string, roots *x509.CertPool) time.Time {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name},
	}}
	resp, err := cl.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339Nano, string(body))
	if err != nil {
		t.Fatalf("peer expiry %q: %v", body, err)
	}
	return exp
}

// TestACMERenewPeer is the second instance of
// TestACMERenewsSharedStorage, run only in the child process that test
// starts: a Manager on the shared Redis namespace and CA that serves
// TLS, answers GET / with the expiry it reports for the host, prints its
// address and runs until its stdin closes.
func TestACMERenewPeer(t *testing.T) {
	spec := os.Getenv(renewPeerEnv)
	if spec == "" {
		t.Skip("the second instance of TestACMERenewsSharedStorage; runs in that test's child process")
	}
	const host = "panel.example.com"
	f := strings.Fields(spec)
	if len(f) != 4 {
		t.Fatalf("%s=%q, want 4 fields", renewPeerEnv, spec)
	}
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS.Mode = config.TLSACME
	cfg.TLS.ACME = config.ACME{Email: "ops@example.com", CA: f[2], CARoot: f[3]}
	cfg.Routes = []config.Route{{Name: host, Host: host, Upstream: "http://127.0.0.1:1"}}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	expiry := func(m *Manager) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, m.CertificateExpiries()[host].Format(time.RFC3339Nano))
		})
	}
	o := Options{Storage: sharedStorage(t, []string{f[0]}, f[1])}
	g := serveRenewing(t, &cfg, []string{host}, o, expiry, os.Stderr)
	g.manage(t)
	fmt.Printf("addr %s\n", g.tlsAddr)
	_, _ = io.Copy(io.Discard, os.Stdin)
}
