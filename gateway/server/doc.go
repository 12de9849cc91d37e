// Package server wires authgate together from a config: it opens the
// store, loads the secret key, builds the proxy, the challenge handlers and
// the middleware chain, and runs the HTTP server with graceful shutdown.
// The route-dependent part (proxy, sign-in gate, admin area) is rebuilt by
// Reload from a changed config and swapped atomically (reload.go,
// watch.go). It holds no business logic of its own.
package server
