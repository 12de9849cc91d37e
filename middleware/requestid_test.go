package middleware

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

var requestIDRe = regexp.MustCompile(`^[A-Z2-7]{26}$`)

func TestRequestID(t *testing.T) {
	tests := []struct {
		name     string
		incoming string
	}{
		{"no incoming id", ""},
		{"incoming id is ignored", "attacker-chosen"},
		{"incoming valid-looking id is ignored", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inCtx string
			h := RequestID()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inCtx = RequestIDFrom(r.Context())
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.incoming != "" {
				req.Header.Set(RequestIDHeader, tt.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			got := rec.Header().Get(RequestIDHeader)
			if !requestIDRe.MatchString(got) {
				t.Fatalf("X-Request-Id = %q, want 26 base32 chars", got)
			}
			if got != inCtx {
				t.Errorf("header %q != context %q", got, inCtx)
			}
			if got == tt.incoming {
				t.Errorf("incoming id was trusted")
			}
			if seen[got] {
				t.Errorf("id %q repeated", got)
			}
			seen[got] = true
		})
	}
}

func TestRequestIDFromEmpty(t *testing.T) {
	if got := RequestIDFrom(t.Context()); got != "" {
		t.Errorf("RequestIDFrom(empty) = %q", got)
	}
}
