package middleware

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMaxBody(t *testing.T) {
	tests := []struct {
		name          string
		body          string
		hideLength    bool // chunked: ContentLength unknown
		wantStatus    int
		wantReadErr   bool
		wantHandlerIn bool
	}{
		{"under the limit", "hello", false, 200, false, true},
		{"exactly the limit", "0123456789", false, 200, false, true},
		{"declared too large", "0123456789A", false, 413, false, false},
		{"chunked too large", strings.Repeat("x", 100), true, 200, true, true},
		{"chunked small", "abc", true, 200, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var readErr error
			handlerIn := false
			h := MaxBody(10)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handlerIn = true
				_, readErr = io.ReadAll(r.Body)
			}))
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.hideLength {
				req.ContentLength = -1
				req.Body = io.NopCloser(strings.NewReader(tt.body))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || handlerIn != tt.wantHandlerIn {
				t.Fatalf("status %d handler %v", rec.Code, handlerIn)
			}
			var mbe *http.MaxBytesError
			if tt.wantReadErr != errors.As(readErr, &mbe) {
				t.Fatalf("read error %v", readErr)
			}
		})
	}
}
