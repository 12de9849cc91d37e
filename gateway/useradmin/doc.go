// Package useradmin implements the user-management operations behind
// `authgate user add|list|passwd|delete|import-htpasswd`.
//
// Service performs them directly over a store; with Redis the CLI uses it
// as is. The embedded (bbolt) store is locked by the running server, so
// the server also serves a Service on a local control socket
// (ListenSocket + NewSocketHandler) and the CLI talks to it with Client.
// Service and Client implement the same Admin interface and return the
// same sentinel errors, so the CLI needs no special cases.
//
// Password hashes are computed by the caller: plaintext passwords never
// reach this package, the socket or the log. Audited wraps any Admin with
// an audit log of every change (user and action, never hashes).
package useradmin
