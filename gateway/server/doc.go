// Package server wires authgate together from a config: it opens the
// store, loads the secret key, builds the proxy, the challenge handlers and
// the middleware chain, and runs the HTTP server with graceful shutdown.
// It holds no business logic of its own.
package server
