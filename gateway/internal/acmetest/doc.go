// Package acmetest runs a real ACME CA for tests: Pebble's own packages
// (ca, db, va, wfe) in-process behind loopback HTTPS listeners, with a
// DNS server that answers 127.0.0.1 for every name. Challenges are
// validated for real (PEBBLE_VA_ALWAYS_VALID is never set): Pebble's
// validation authority resolves the host through that DNS server and
// connects to the HTTP-01 and TLS-ALPN-01 ports the test names, which
// are the gateway's own listeners.
//
// Pebble is a Go module of this repository's test graph, so nothing is
// installed or started outside the test process.
package acmetest
