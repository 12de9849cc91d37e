package acmetest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/acmetest"
)

// The DNS server answers 127.0.0.1 for any name, over UDP and TCP, and
// counts the questions.
func TestDNSAnswersLoopback(t *testing.T) {
	d := acmetest.StartDNS(t)
	for _, network := range []string{"udp", "tcp"} {
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, d.Addr())
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		addrs, err := r.LookupHost(ctx, "Panel.Example.com")
		cancel()
		if err != nil || !slices.Equal(addrs, []string{"127.0.0.1"}) {
			t.Fatalf("%s: LookupHost = %v, %v; want [127.0.0.1]", network, addrs, err)
		}
	}
	if n := d.Lookups("panel.example.com"); n < 4 {
		t.Fatalf("lookups = %d, want A and AAAA over both networks", n)
	}
}

// apiClient is an HTTPS client that trusts only the CA's API root.
func apiClient(t *testing.T, ca *acmetest.CA) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(ca.APIRootFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("APIRootFile holds no certificate")
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// Before Start the CA refuses ACME requests; after it, its directory and
// root are served.
func TestCANeedsStart(t *testing.T) {
	ca := acmetest.New(t)
	cl := apiClient(t, ca)
	res, err := cl.Get(ca.DirectoryURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("before Start: %d, want 503", res.StatusCode)
	}
	ca.Start(1, 1)
	if res, err = cl.Get(ca.DirectoryURL); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("after Start: %d, want 200", res.StatusCode)
	}
	if len(ca.RootsPEM()) == 0 || ca.Roots() == nil {
		t.Fatal("no root after Start")
	}
}

// DisableARI leaves renewalInfo out of the directory and nothing else.
func TestDisableARI(t *testing.T) {
	directory := func(o acmetest.Options) map[string]any {
		ca := acmetest.NewWith(t, o)
		ca.Start(1, 1)
		cl := apiClient(t, ca)
		res, err := cl.Get(ca.DirectoryURL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var dir map[string]any
		if err := json.NewDecoder(res.Body).Decode(&dir); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("directory: %d, %v", res.StatusCode, err)
		}
		return dir
	}
	with, without := directory(acmetest.Options{}), directory(acmetest.Options{DisableARI: true})
	if with["renewalInfo"] == nil {
		t.Fatalf("Pebble's directory has no renewalInfo: %v", with)
	}
	if _, ok := without["renewalInfo"]; ok {
		t.Fatalf("renewalInfo still in the directory with DisableARI: %v", without)
	}
	// The two CAs listen on different ports: compare the entries' names.
	delete(with, "renewalInfo")
	if !slices.Equal(slices.Sorted(maps.Keys(with)), slices.Sorted(maps.Keys(without))) {
		t.Fatalf("directory with DisableARI = %v, want the entries of %v but renewalInfo", without, with)
	}
}
