package tlsconf

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// The storage tests (storage_test.go) run several certmagic instances,
// each answering TLS-ALPN-01 on its own port, against one CA whose
// validation authority can only check one port: what they test is the
// shared storage and its locks, so their CA skips validation
// (PEBBLE_VA_ALWAYS_VALID). Challenge validation itself is tested for
// real in acme_test.go (gateway/internal/acmetest).
//
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
