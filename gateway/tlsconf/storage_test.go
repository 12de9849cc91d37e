package tlsconf

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/internal/acmetest"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/store/redisstore"
)

var prefixSeq atomic.Int64

// testLocks keeps lock tests short: a dead holder's lock lapses within
// 1.5 s, a live one refreshes it every 0.5 s.
var testLocks = redisstore.CertBlobsOptions{LockTTL: 1500 * time.Millisecond, PollMin: 10 * time.Millisecond, PollMax: 50 * time.Millisecond}

// sharedStorage returns a SharedStorage over its own Redis client (as one
// gateway instance has) in namespace prefix.
func sharedStorage(t *testing.T, addrs []string, prefix string) *SharedStorage {
	t.Helper()
	rs := redisstore.New(redisstore.NewClient(redisstore.ClientOptions{Addrs: addrs}), redisstore.Options{KeyPrefix: prefix})
	t.Cleanup(func() { _ = rs.Close() })
	return NewSharedStorage(rs.CertBlobsWith(testLocks))
}

func uniquePrefix() string { return fmt.Sprintf("tls%d", prefixSeq.Add(1)) }

func TestSharedStorage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	runSharedStorage(t, []string{srv.Addr()})
}

// The same on a three-node Cluster: no operation may span hash slots.
func TestSharedStorageCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start-up takes seconds")
	}
	cluster := redistest.StartCluster(t)
	runSharedStorage(t, cluster.Addrs())
}

func runSharedStorage(t *testing.T, addrs []string) {
	t.Run("conformance", func(t *testing.T) {
		testStorageConformance(t, sharedStorage(t, addrs, uniquePrefix()))
	})
	t.Run("locks", func(t *testing.T) {
		prefix := uniquePrefix()
		testStorageLocks(t, sharedStorage(t, addrs, prefix), sharedStorage(t, addrs, prefix))
	})
}

// testStorageConformance checks the certmagic.Storage contract: file
// semantics for Store/Load, directories implied by keys, fs.ErrNotExist
// for missing keys, and Delete of a directory removing what is below.
func testStorageConformance(t *testing.T, st certmagic.Storage) {
	ctx := t.Context()
	const crt = "certificates/acme-v02/a.example.com/a.example.com.crt"
	if _, err := st.Load(ctx, crt); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := st.Stat(ctx, crt); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := st.List(ctx, "certificates", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("List of a missing directory: %v, want fs.ErrNotExist", err)
	}
	if st.Exists(ctx, crt) {
		t.Fatal("Exists of a missing key")
	}
	if err := st.Delete(ctx, crt); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}

	files := map[string]string{
		crt: "CERT A",
		"certificates/acme-v02/a.example.com/a.example.com.key":  "KEY A",
		"certificates/acme-v02/a.example.com/a.example.com.json": "{}",
		"certificates/acme-v02/b.example.com/b.example.com.crt":  "CERT B",
		"certificates/acme-v02b/c.example.com/c.example.com.crt": "CERT C",
		"acme/acme-v02/users/ops/ops.key":                        "ACCOUNT KEY",
	}
	before := time.Now().Add(-time.Second)
	for k, v := range files {
		if err := st.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range files {
		got, err := st.Load(ctx, k)
		if err != nil || string(got) != v {
			t.Errorf("Load(%q) = %q, %v; want %q", k, got, err, v)
		}
	}
	if err := st.Store(ctx, crt, []byte("CERT A2")); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Load(ctx, crt); err != nil || string(got) != "CERT A2" {
		t.Errorf("Load after overwrite = %q, %v", got, err)
	}

	info, err := st.Stat(ctx, crt)
	if err != nil || info.Key != crt || !info.IsTerminal || info.Size != int64(len("CERT A2")) ||
		info.Modified.Before(before) || info.Modified.After(time.Now().Add(time.Second)) {
		t.Errorf("Stat(file) = %+v, %v", info, err)
	}
	info, err = st.Stat(ctx, "certificates/acme-v02")
	if err != nil || info.Key != "certificates/acme-v02" || info.IsTerminal || info.Modified.Before(before) {
		t.Errorf("Stat(directory) = %+v, %v", info, err)
	}
	for key, want := range map[string]bool{
		crt: true, "certificates": true, "certificates/acme-v02/a.example.com": true,
		"certificates/acme": false, "certificates/acme-v02/a.example.com/a.example.com": false,
	} {
		if got := st.Exists(ctx, key); got != want {
			t.Errorf("Exists(%q) = %v, want %v", key, got, want)
		}
	}

	lists := []struct {
		prefix    string
		recursive bool
		want      []string
	}{
		{"certificates", false, []string{"certificates/acme-v02", "certificates/acme-v02b"}},
		{"certificates/acme-v02", false, []string{"certificates/acme-v02/a.example.com", "certificates/acme-v02/b.example.com"}},
		{"certificates/acme-v02", true, []string{
			"certificates/acme-v02/a.example.com",
			"certificates/acme-v02/a.example.com/a.example.com.crt",
			"certificates/acme-v02/a.example.com/a.example.com.json",
			"certificates/acme-v02/a.example.com/a.example.com.key",
			"certificates/acme-v02/b.example.com",
			"certificates/acme-v02/b.example.com/b.example.com.crt",
		}},
		{"acme/acme-v02/users", false, []string{"acme/acme-v02/users/ops"}},
	}
	for _, l := range lists {
		got, err := st.List(ctx, l.prefix, l.recursive)
		if err != nil || !slices.Equal(got, l.want) {
			t.Errorf("List(%q, %v) = %q, %v; want %q", l.prefix, l.recursive, got, err, l.want)
		}
	}

	// Delete of a directory takes everything below it, and nothing that
	// only shares its leading characters.
	if err := st.Delete(ctx, "certificates/acme-v02"); err != nil {
		t.Fatal(err)
	}
	for k := range files {
		_, err := st.Load(ctx, k)
		gone := strings.HasPrefix(k, "certificates/acme-v02/")
		if gone != errors.Is(err, fs.ErrNotExist) || !gone && err != nil {
			t.Errorf("after deleting the directory, Load(%q): %v", k, err)
		}
	}
	if st.Exists(ctx, "certificates/acme-v02") {
		t.Error("deleted directory still exists")
	}
	if err := st.Delete(ctx, "acme/acme-v02/users/ops/ops.key"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.List(ctx, "acme", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of an emptied directory: %v, want fs.ErrNotExist", err)
	}
}

// testStorageLocks: a and b are two instances on the same namespace.
func testStorageLocks(t *testing.T, a, b *SharedStorage) {
	ctx := t.Context()
	const name = "issue_cert_a.example.com"
	if err := a.Lock(ctx, name); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, name); ok || err != nil {
		t.Fatalf("TryLock of a held lock = %v, %v; want false", ok, err)
	}

	// Unlock by an instance that does not hold the lock fails and
	// releases nothing.
	if err := b.Unlock(ctx, name); err == nil {
		t.Error("Unlock by a non-holder succeeded")
	}
	if ok, _ := b.TryLock(ctx, name); ok {
		t.Fatal("lock free after a non-holder's Unlock")
	}

	// A waiting Lock gives up when its context ends.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	if err := b.Lock(cctx, name); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with a cancelled wait: %v, want context.Canceled", err)
	}

	// The second holder waits until the first unlocks, even past the
	// lock's TTL (the holder refreshes it).
	acquired := make(chan error, 1)
	go func() { acquired <- b.Lock(ctx, name) }()
	select {
	case err := <-acquired:
		t.Fatalf("second Lock returned (%v) while the first holder held the lock", err)
	case <-time.After(testLocks.LockTTL + testLocks.LockTTL/2):
	}
	if err := a.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acquired:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second Lock did not return after Unlock")
	}
	if err := a.Unlock(ctx, name); err == nil {
		t.Error("second Unlock by the former holder succeeded")
	}
	if ok, _ := a.TryLock(ctx, name); ok {
		t.Fatal("lock free while the second holder has it")
	}
	if err := b.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.TryLock(ctx, name); !ok || err != nil {
		t.Fatalf("TryLock after release = %v, %v", ok, err)
	}
	if err := a.Unlock(ctx, name); err != nil {
		t.Fatal(err)
	}
}

// An outage is an error, never "not found": certmagic would otherwise
// take a missing certificate for granted and go to the CA.
func TestSharedStorageRedisDown(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := sharedStorage(t, []string{srv.Addr()}, uniquePrefix())
	ctx := t.Context()
	if err := st.Store(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if _, err := st.Load(ctx, "k"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load with Redis down: %v; want an error other than fs.ErrNotExist", err)
	}
	if _, err := st.Stat(ctx, "k"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat with Redis down: %v; want an error other than fs.ErrNotExist", err)
	}
	if _, err := st.List(ctx, "", true); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List with Redis down: %v; want an error other than fs.ErrNotExist", err)
	}
	if err := st.Store(ctx, "k", []byte("v")); err == nil {
		t.Error("Store with Redis down succeeded")
	}
	if err := st.Lock(ctx, "n"); err == nil {
		t.Error("Lock with Redis down succeeded")
	}
}

// holderEnv makes the test binary an instance that takes a lock and
// never unlocks; see TestSharedLockOfKilledHolderExpires.
const holderEnv = "AUTHGATE_TEST_SHARED_LOCK_HOLDER"

// TestMain turns the test binary into a lock holder when holderEnv is
// set (to "addr prefix"): it takes lock "n" through a SharedStorage,
// says "locked" and waits to be killed.
func TestMain(m *testing.M) {
	spec := os.Getenv(holderEnv)
	if spec == "" {
		os.Exit(m.Run())
	}
	addr, prefix, _ := strings.Cut(spec, " ")
	rs := redisstore.New(redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{addr}}), redisstore.Options{KeyPrefix: prefix})
	if err := NewSharedStorage(rs.CertBlobsWith(testLocks)).Lock(context.Background(), "n"); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(1)
}

// An instance that crashes while holding a lock (SIGKILL: no Unlock)
// holds up the others only until the lock's TTL runs out.
func TestSharedLockOfKilledHolderExpires(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	prefix := uniquePrefix()
	st := sharedStorage(t, []string{srv.Addr()}, prefix)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+srv.Addr()+" "+prefix)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("holder said %q, %v", line, err)
	}
	time.Sleep(testLocks.LockTTL + testLocks.LockTTL/3)
	if ok, err := st.TryLock(ctx, "n"); ok || err != nil {
		t.Fatalf("TryLock while the holder lives = %v, %v", ok, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := st.Lock(lctx, "n"); err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	waited := time.Since(killed)
	if err := st.Unlock(ctx, "n"); err != nil {
		t.Error(err)
	}
	if waited < testLocks.LockTTL/4 || waited > testLocks.LockTTL+time.Second {
		t.Errorf("lock taken %v after the holder died; want its remaining TTL (at most %v)", waited, testLocks.LockTTL)
	}
}

// acmeInstance is one gateway's certmagic set-up on a shared storage:
// its own cache and config (never certmagic's Default) and a TLS
// listener that answers TLS-ALPN-01 as the gateway's does.
type acmeInstance struct {
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer
	addr   string
	port   int
}

func newACMEInstance(t *testing.T, ca *acmetest.CA, storage certmagic.Storage, logw io.Writer) *acmeInstance {
	t.Helper()
	pem, err := os.ReadFile(ca.APIRootFile)
	if err != nil {
		t.Fatal(err)
	}
	apiRoots := x509.NewCertPool()
	if !apiRoots.AppendCertsFromPEM(pem) {
		t.Fatal("the CA's API root is not PEM")
	}
	in := &acmeInstance{}
	zl := zapLogger(zerolog.New(logw))
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return in.magic, nil },
		Logger:           zl,
	})
	t.Cleanup(cache.Stop)
	in.magic = certmagic.New(cache, certmagic.Config{Storage: storage, Logger: zl})
	tc := in.magic.TLSConfig()
	tc.NextProtos = []string{"h2", "http/1.1", "acme-tls/1"}
	in.addr = serveTLS(t, tc, http.NotFoundHandler())
	_, port, _ := net.SplitHostPort(in.addr)
	in.port, _ = strconv.Atoi(port)
	in.issuer = certmagic.NewACMEIssuer(in.magic, certmagic.ACMEIssuer{
		CA:                   ca.DirectoryURL,
		TestCA:               ca.DirectoryURL,
		Email:                "ops@example.com",
		Agreed:               true,
		TrustedRoots:         apiRoots,
		DisableHTTPChallenge: true,
		ListenHost:           "127.0.0.1",
		// A busy port: certmagic relies on the listener there.
		AltTLSALPNPort: in.port,
		Logger:         zl,
	})
	in.magic.Issuers = []certmagic.Issuer{in.issuer}
	return in
}

// leaf returns the certificate the instance serves for name, verified
// against roots.
func (in *acmeInstance) leaf(t *testing.T, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := handshake(t, in.addr, name, roots)
	if err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	return c
}

// Two instances on one Redis: the first obtains the certificate from the
// CA (challenge validated for real on its listener), the second loads it
// from Redis without a single request to the CA.
func TestSharedStorageSharesCertificates(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ca := acmetest.New(t)
	logs := &testkit.SyncBuffer{}
	const host = "panel.example.com"
	prefix := uniquePrefix()
	ctx, cancel := context.WithTimeout(t.Context(), certWait)
	defer cancel()

	first := newACMEInstance(t, ca, sharedStorage(t, []string{srv.Addr()}, prefix), logs)
	ca.Start(deadPort(t), first.port)
	if err := first.magic.ManageSync(ctx, []string{host}); err != nil {
		t.Fatalf("%v\n%s%s", err, logs, ca.Log())
	}
	if ca.Orders() != 1 {
		t.Fatalf("the first instance placed %d orders, want 1", ca.Orders())
	}
	want := first.leaf(t, host, ca.Roots())
	if err := want.VerifyHostname(host); err != nil {
		t.Fatal(err)
	}

	requests := ca.Requests()
	second := newACMEInstance(t, ca, sharedStorage(t, []string{srv.Addr()}, prefix), logs)
	if err := second.magic.ManageSync(ctx, []string{host}); err != nil {
		t.Fatal(err)
	}
	if n := ca.Requests() - requests; n != 0 {
		t.Fatalf("the second instance made %d requests to the CA, want 0", n)
	}
	if got := second.leaf(t, host, ca.Roots()); !bytes.Equal(got.Raw, want.Raw) {
		t.Errorf("the second instance serves serial %v, want the first's %v", got.SerialNumber, want.SerialNumber)
	}
}

// Instances starting together on an empty Redis: the lock lets one
// obtain the certificate (and create the ACME account) while the others
// wait, then load it. Without the lock each would place its own order.
func TestSharedStorageConcurrentObtain(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ca := acmetest.New(t)
	logs := &testkit.SyncBuffer{}
	const host = "panel.example.com"
	prefix := uniquePrefix()
	ctx, cancel := context.WithTimeout(t.Context(), certWait)
	defer cancel()

	const n = 3
	instances := make([]*acmeInstance, n)
	for i := range instances {
		instances[i] = newACMEInstance(t, ca, sharedStorage(t, []string{srv.Addr()}, prefix), logs)
		// The CA validates on one port, as behind one address: instance
		// 0 answers for whichever instance holds the order.
		instances[i].issuer.AltTLSALPNPort = instances[0].port
	}
	ca.Start(deadPort(t), instances[0].port)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, in := range instances {
		wg.Go(func() { errs[i] = in.magic.ManageSync(ctx, []string{host}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v\n%s%s", i, err, logs, ca.Log())
		}
	}
	if ca.Orders() != 1 {
		t.Errorf("%d instances placed %d orders, want 1", n, ca.Orders())
	}
	want := instances[0].leaf(t, host, ca.Roots())
	for i, in := range instances[1:] {
		if got := in.leaf(t, host, ca.Roots()); !bytes.Equal(got.Raw, want.Raw) {
			t.Errorf("instance %d serves serial %v, instance 0 %v", i+1, got.SerialNumber, want.SerialNumber)
		}
	}
}
