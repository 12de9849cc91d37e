package acmetest

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/acme"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/authgate/authgate/gateway/internal/testkit"
)

// Paths of Pebble's ACME API (unexported in its wfe package).
const (
	newOrderPath  = "/order-plz"
	challengePath = "/chalZ/"
)

// Options change how the CA issues; the zero value is Pebble's default.
type Options struct {
	// CertLifetime is the validity period of the certificates the CA
	// issues, in whole seconds (rounded up); 0: Pebble's default (90
	// days). A short one lets a test see certificates renewed.
	CertLifetime time.Duration
	// DisableARI leaves renewalInfo out of the ACME directory, so clients
	// schedule renewals from the certificate's lifetime alone. With ACME
	// Renewal Information, Pebble suggests a window spanning the whole
	// lifetime of a short certificate and the client renews at a random
	// time in it; without, certmagic renews at a known point (when a
	// third of the lifetime is left).
	DisableARI bool
}

// CA is one Pebble instance owned by a test. Its listeners are up from
// New (so its URL can go into a config), but it answers ACME requests
// only after Start has told it where to validate challenges.
type CA struct {
	// DirectoryURL is the ACME directory, for tls.acme.ca.
	DirectoryURL string
	// APIRootFile is a PEM file trusting the CA's own HTTPS listener, for
	// tls.acme.ca_root.
	APIRootFile string

	t    testing.TB
	opts Options
	api  *httptest.Server
	mgmt *httptest.Server
	dns  *DNS
	log  *testkit.SyncBuffer

	requests atomic.Int64
	orders   atomic.Int64

	mu         sync.Mutex
	store      *db.MemoryStore
	acmeAPI    http.Handler
	management http.Handler
	roots      *x509.CertPool
	rootsPEM   []byte
	challenges []string // ids of the challenges clients asked to validate
}

// New starts the CA's HTTPS listeners (ACME API and management) and its
// DNS server on loopback ports; everything stops at test cleanup. Call
// Start before the first ACME request.
func New(t testing.TB) *CA {
	t.Helper()
	return NewWith(t, Options{})
}

// NewWith is New with options.
func NewWith(t testing.TB, o Options) *CA {
	t.Helper()
	if o.CertLifetime < 0 {
		t.Fatalf("acmetest: negative CertLifetime %v", o.CertLifetime)
	}
	c := &CA{t: t, opts: o, log: &testkit.SyncBuffer{}, dns: StartDNS(t)}
	c.api = httptest.NewTLSServer(http.HandlerFunc(c.serveAPI))
	t.Cleanup(c.api.Close)
	c.mgmt = httptest.NewTLSServer(http.HandlerFunc(c.serveManagement))
	t.Cleanup(c.mgmt.Close)
	c.DirectoryURL = c.api.URL + wfe.DirectoryPath
	c.APIRootFile = filepath.Join(t.TempDir(), "pebble-listener.pem")
	listener := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.api.Certificate().Raw})
	if err := os.WriteFile(c.APIRootFile, listener, 0o600); err != nil {
		t.Fatalf("acmetest: %v", err)
	}
	return c
}

// Start builds Pebble with its validation authority pointed at this
// CA's DNS server and at httpPort (HTTP-01) and tlsPort (TLS-ALPN-01) on
// the address it resolves (127.0.0.1), then fetches the root it issues
// under from the management endpoint. Pebble's deterministic settings
// (no random validation sleeps, no rejected nonces, no authorization
// reuse) are set; challenge validation is never skipped.
func (c *CA) Start(httpPort, tlsPort int) {
	c.t.Helper()
	c.mu.Lock()
	started := c.acmeAPI != nil
	c.mu.Unlock()
	if started {
		c.t.Fatal("acmetest: Start called twice")
	}
	// va.New and wfe.New read these once, here.
	c.t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	c.t.Setenv("PEBBLE_VA_ALWAYS_VALID", "0")
	c.t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	c.t.Setenv("PEBBLE_AUTHZREUSE", "0")
	lg := log.New(c.log, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	// Pebble's profile takes whole seconds; 0 means its default.
	validity := uint64((c.opts.CertLifetime + time.Second - 1) / time.Second)
	authority := ca.New(lg, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default", ValidityPeriod: validity}})
	v := va.New(lg, httpPort, tlsPort, false, c.dns.Addr(), store)
	w := wfe.New(lg, store, v, authority, []string{"pebble.letsencrypt.org"}, false, false, 1, 1)
	c.mu.Lock()
	c.store, c.acmeAPI, c.management = store, w.Handler(), w.ManagementHandler()
	c.mu.Unlock()

	resp, err := c.mgmt.Client().Get(c.mgmt.URL + wfe.RootCertPath + "0")
	if err != nil {
		c.t.Fatalf("acmetest: fetch the root: %v", err)
	}
	defer resp.Body.Close()
	root, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		c.t.Fatalf("acmetest: fetch the root: status %d, %v", resp.StatusCode, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(root) {
		c.t.Fatalf("acmetest: the root is not PEM: %q", root)
	}
	c.mu.Lock()
	c.roots, c.rootsPEM = pool, root
	c.mu.Unlock()
}

func (c *CA) serveAPI(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	h := c.acmeAPI
	if h != nil && r.Method == http.MethodPost {
		if id, ok := strings.CutPrefix(r.URL.Path, challengePath); ok && id != "" {
			c.challenges = append(c.challenges, id)
		}
	}
	c.mu.Unlock()
	if h == nil {
		http.Error(w, "acmetest: the CA is not started (Start names the validation ports)", http.StatusServiceUnavailable)
		return
	}
	c.requests.Add(1)
	if r.Method == http.MethodPost && r.URL.Path == newOrderPath {
		c.orders.Add(1)
	}
	if c.opts.DisableARI && r.URL.Path == wfe.DirectoryPath {
		serveWithoutARI(w, r, h)
		return
	}
	h.ServeHTTP(w, r)
}

// serveWithoutARI serves Pebble's directory with its renewalInfo entry
// removed.
func serveWithoutARI(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if rec.Code == http.StatusOK {
		var dir map[string]any
		if err := json.Unmarshal(body, &dir); err != nil {
			http.Error(w, "acmetest: Pebble's directory is not JSON: "+err.Error(), http.StatusInternalServerError)
			return
		}
		delete(dir, "renewalInfo")
		var err error
		if body, err = json.Marshal(dir); err != nil {
			http.Error(w, "acmetest: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	maps.Copy(w.Header(), rec.Header())
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

func (c *CA) serveManagement(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	h := c.management
	c.mu.Unlock()
	if h == nil {
		http.Error(w, "acmetest: the CA is not started", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

// Roots is a pool holding the root the CA issues under (from Start).
func (c *CA) Roots() *x509.CertPool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.roots == nil {
		c.t.Fatal("acmetest: Roots before Start")
	}
	return c.roots
}

// RootsPEM is that root as PEM.
func (c *CA) RootsPEM() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.rootsPEM)
}

// Requests counts the ACME API requests answered since Start.
func (c *CA) Requests() int64 { return c.requests.Load() }

// Orders counts the new-order requests received since Start.
func (c *CA) Orders() int64 { return c.orders.Load() }

// DNS is the CA's resolver.
func (c *CA) DNS() *DNS { return c.dns }

// ValidChallenges counts, by type (acme.ChallengeHTTP01,
// acme.ChallengeTLSALPN01...), the challenges clients asked the CA to
// validate that it found valid: proof that validation happened over
// that challenge and succeeded.
func (c *CA) ValidChallenges() map[string]int { return c.challengeStates(acme.StatusValid) }

// InvalidChallenges counts the challenges that failed validation, by type.
func (c *CA) InvalidChallenges() map[string]int { return c.challengeStates(acme.StatusInvalid) }

func (c *CA) challengeStates(status string) map[string]int {
	c.mu.Lock()
	ids := append([]string(nil), c.challenges...)
	store := c.store
	c.mu.Unlock()
	out := map[string]int{}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] || store == nil {
			continue
		}
		seen[id] = true
		ch := store.GetChallengeByID(id)
		if ch == nil {
			continue
		}
		ch.RLock()
		if ch.Status == status {
			out[ch.Type]++
		}
		ch.RUnlock()
	}
	return out
}

// Log is what Pebble logged (for failure messages).
func (c *CA) Log() string { return c.log.String() }
