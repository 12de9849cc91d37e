package middleware

import (
	"context"
	"crypto/rand"
	"net/http"
)

// RequestIDHeader is the response header carrying the request id.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// RequestID gives every request a fresh random id (26 base32 characters,
// 128 bits), stores it in the context (read it with RequestIDFrom) and sets
// it as the X-Request-Id response header.
//
// An incoming X-Request-Id is never used: the gateway sits in front of
// untrusted clients, and a client-chosen id would let anyone forge or
// collide entries in the access log. Handlers that forward requests
// upstream may send RequestIDFrom(ctx) on so both logs correlate.
func RequestID() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := rand.Text()
			w.Header().Set(RequestIDHeader, id)
			next.ServeHTTP(w, r.WithContext(WithRequestID(r.Context(), id)))
		})
	}
}

// WithRequestID returns ctx carrying id. RequestID uses it; tests of other
// packages may too.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id stored by RequestID, or "" if none.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
