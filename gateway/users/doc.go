// Package users is the user administration behind the `authgate user`,
// `2fa`, `sessions`, `bans` and `audit` commands and the admin web
// pages: users (add, list, pages with filters, password, role, delete,
// import), their 2FA and sessions, sign-in bans, the gateway-wide 2FA
// settings and the audit trail.
//
// Admin is the set of operations. Service performs them directly over a
// store and records every change through an audit recorder, with the
// actor from the context (audit.WithActor; the CLI when none is set).
// The other implementation is gateway/control's Client, which calls a
// running server over its control socket; both return the same errors:
// a rejected argument is an *InvalidError (matching ErrInvalid), several
// unknown users an *UnknownUsersError (matching store.ErrNotFound), and
// ErrLastAdmin and the store's errors wrapped.
//
// Password hashes are computed by the caller: plaintext passwords never
// reach this package or the log. Removing or demoting the last admin is
// refused (ErrLastAdmin).
package users
