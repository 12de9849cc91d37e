package middleware

import "net/http"

// MaxBody limits request bodies to n bytes. A request whose Content-Length
// already exceeds n gets 413 at once; otherwise the body is wrapped in
// http.MaxBytesReader, so reading past n fails with *http.MaxBytesError
// (and net/http closes the connection afterwards). n <= 0 means no body
// is accepted.
func MaxBody(n int64) func(http.Handler) http.Handler {
	if n < 0 {
		n = 0
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				SetResult(r.Context(), "body_too_large")
				http.Error(w, "413 request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, n)
			}
			next.ServeHTTP(w, r)
		})
	}
}
