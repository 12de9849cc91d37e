// Package useradmin implements the administration operations behind the
// `authgate user`, `2fa`, `sessions` and `audit` commands and the admin
// web pages: users (add, list, pages with filters, password, role,
// delete, import), their 2FA and sessions, the gateway-wide 2FA settings
// and the audit trail.
//
// Service performs them directly over a store and records every change
// through an audit recorder, with the actor from the context
// (audit.WithActor; the CLI when none is set). With Redis the CLI uses it
// as is. The embedded (bbolt) store is locked by the running server, so
// the server also serves a Service on a local control socket
// (ListenSocket + NewSocketHandler, acting as the CLI) and the CLI talks
// to it with Client. Service and Client implement the same Admin
// interface and return the same sentinel errors, so callers need no
// special cases. The socket also streams a copy of the store file for
// `authgate backup` (WithBackup, Client.Backup).
//
// Password hashes are computed by the caller: plaintext passwords never
// reach this package, the socket or the log. Removing or demoting the
// last admin is refused (ErrLastAdmin).
package useradmin
