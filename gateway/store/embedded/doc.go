// Package embedded is the single-instance store.Store backend: one bbolt
// file on local disk, created with mode 0600 and locked against a second
// process.
//
// Layout: one bucket per kind of item (users, sessions, user_sessions,
// steps, counters, settings); every value is JSON. Sessions, used TOTP
// steps and counters carry their expiry (Unix nanoseconds of the injected
// clock): reads treat an expired item as missing, and a background
// sweeper started by Open and stopped by Close deletes them. The
// user_sessions bucket indexes sessions by user (key = length-prefixed
// user name + session id hash), so listing or ending one user's sessions
// never scans every session.
//
// Backups (backup.go): Snapshot copies the open database from one read
// transaction (Tx.WriteTo), SnapshotFile a file no process holds;
// Inspect checks that a file is an authgate store, and Restore puts a
// backup in place of the store file without its sessions, counters and
// bans, keeping the replaced file.
package embedded
