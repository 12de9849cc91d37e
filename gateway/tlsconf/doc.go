// Package tlsconf builds the gateway's HTTPS configuration from the tls
// section of the config: certificate and key files re-read when they
// change on disk and replaceable by a reload (mode manual), or
// certificates obtained and renewed from an ACME CA with certmagic for
// every route host, hosts added or removed by a reload included (mode
// acme), kept in files or, through SharedStorage, in the store shared by
// every instance; plus the plain-HTTP handler for port 80 that answers
// ACME HTTP-01 challenges and redirects everything else to HTTPS, and the
// expiry of the certificates in service for the metrics.
package tlsconf
