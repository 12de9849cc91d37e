package middleware

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestSecurityHeaders(t *testing.T) {
	static := map[string]string{
		"Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name     string
		mw       []func(http.Handler) http.Handler
		tls      bool
		proto    string
		wantHSTS bool
	}{
		{"plain http, no Client", nil, false, "", false},
		{"direct TLS, no Client", nil, true, "", true},
		{"trusted proxy says https", []func(http.Handler) http.Handler{RealClient(trusted)}, false, "https", true},
		{"trusted proxy says http over TLS", []func(http.Handler) http.Handler{RealClient(trusted)}, true, "http", false},
		{"untrusted peer claiming https", []func(http.Handler) http.Handler{RealClient(nil)}, false, "https", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw := append(tt.mw, SecurityHeaders())
			h := chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), mw...)
			req := httptest.NewRequest(http.MethodGet, "/.authgate/login", nil)
			req.RemoteAddr = "10.0.0.5:1234"
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			if tt.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			for k, v := range static {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			hsts := rec.Header().Get("Strict-Transport-Security")
			if tt.wantHSTS != (hsts == HSTS) || (!tt.wantHSTS && hsts != "") {
				t.Errorf("HSTS = %q, want present=%v", hsts, tt.wantHSTS)
			}
		})
	}
}
