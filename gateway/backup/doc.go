// Package backup makes and restores backups of the store, for
// `authgate backup` and `authgate restore`.
//
// Embedded store: a backup is a copy of the bbolt file written from one
// read transaction (Tx.WriteTo), by the running server over its control
// socket when one answers, else from the file opened read-only. A restore
// needs the server stopped; it puts a checked copy in place, keeps the
// replaced file beside it, and drops every session, failure counter and
// ban.
//
// Redis: a backup is a logical dump of the keys under the prefix (see
// redisstore.Store.Backup), taken while gateways run; ReadRedis checks a
// backup file, and redisstore.Store.Restore replaces the keys under the
// prefix with it and tells every gateway to drop its cache.
//
// Either way a backup file is written to FILE.tmp (mode 0600), synced,
// checked, then renamed to FILE, which is never overwritten unless asked.
package backup
