// Package tlsconf builds the gateway's HTTPS configuration from the tls
// section of the config: certificate and key files re-read when they
// change on disk (mode manual), or certificates obtained and renewed from
// an ACME CA with certmagic for every route host (mode acme), plus the
// plain-HTTP handler for port 80 that answers ACME HTTP-01 challenges and
// redirects everything else to HTTPS.
package tlsconf
