package auth

import (
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/middleware"
)

// FuzzOriginalRequest: whatever a proxy (or a client behind it) puts in
// the forwarded headers, originalRequest never panics, reads nothing from
// an untrusted peer, and what it accepts has a valid host and either a
// canonical path or a path CanonicalPath refuses.
func FuzzOriginalRequest(f *testing.F) {
	f.Add("http://panel.example/app?x=1", "", "", "GET", true)
	f.Add("", "/app/../x?y", "panel.example:8443", "POST", true)
	f.Add("http://a@b/x", "/x", "h", "G ET", true)
	f.Add("https://[::1]:443/%2e%2e/", "", "", "", false)
	f.Add("//evil/x", "//evil", "evil", "GET", true)
	f.Fuzz(func(t *testing.T, origURL, fwdURI, fwdHost, method string, trusted bool) {
		r := httptest.NewRequest("GET", "http://authgate/.authgate/auth", nil)
		set := func(k, v string) {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				r.Header.Set(k, v)
			}
		}
		set("X-Original-URL", origURL)
		set("X-Forwarded-Uri", fwdURI)
		set("X-Forwarded-Host", fwdHost)
		set("X-Forwarded-Method", method)
		c := middleware.Client{ViaTrustedProxy: trusted, Scheme: "http", Host: strings.ToLower(fwdHost), Peer: netip.MustParseAddr("127.0.0.1")}
		o, err := originalRequest(r, c)
		if !trusted {
			if !errors.Is(err, ErrNotForwarded) {
				t.Fatalf("untrusted peer: err %v", err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrNotForwarded) && !errors.Is(err, ErrBadForwarded) {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		if o.Scheme != "http" && o.Scheme != "https" {
			t.Fatalf("scheme %q", o.Scheme)
		}
		if o.nginx {
			if _, err := middleware.NormalizeHost(o.Host, o.Scheme); err != nil {
				t.Fatalf("accepted host %q: %v", o.Host, err)
			}
		}
		if !validMethod(o.Method) {
			t.Fatalf("method %q", o.Method)
		}
		if p, err := proxy.CanonicalPath(o.URL); err == nil && !strings.HasPrefix(p, "/") {
			t.Fatalf("canonical path %q", p)
		}
	})
}
