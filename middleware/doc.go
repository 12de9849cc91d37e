// Package middleware holds authgate's generic HTTP middleware: each piece is
// a func(http.Handler) http.Handler plus accessors for what it stores in the
// request context.
//
// Recommended order, outermost first:
//
//	RequestID()                 // id in ctx and X-Request-Id
//	Logger(base)                // request logger in ctx, one "request" event
//	Recover(renderError)        // panics become a rendered 500
//	RealClient(trusted)         // Client in ctx; bad X-Forwarded-* → 400
//	MaxBody(n)                  // request body limit
//
// and, on the gateway's own /.authgate/ pages only:
//
//	BodyDeadline(d)             // the (small) body must arrive within d
//	SecurityHeaders()           // CSP, framing, no-store, HSTS over https
//	csrf.Middleware()           // session-bound token + Origin check
//
// Logger works with RealClient placed either before or after it: RealClient
// reports the resolved client to the access log through the per-request
// annotations holder, so even requests RealClient rejects are logged.
//
// The package imports nothing from gateway/.
package middleware
