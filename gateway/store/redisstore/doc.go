// Package redisstore is the shared store.Store backend for running several
// gateway instances: Redis through a go-redis UniversalClient, so one
// server, Sentinel and Cluster all work.
//
// Key layout (P is Options.KeyPrefix, default "authgate"):
//
//	P:users                    sorted set of every user name (score 0, read with ZRANGEBYLEX)
//	P:{u:NAME}:user            the user, JSON
//	P:{u:NAME}:sessions        sorted set: the user's session id hashes, scored by expiry (server ms)
//	P:{u:NAME}:step:N          a used TOTP step (SET NX PX)
//	P:s:IDHASH                 a session, JSON, with a TTL
//	P:c:KEY                    a counter (INCRBY + PEXPIRE only when new, in one script)
//	P:settings                 hash of settings
//	P:{certmagic}:...          certmagic's certificates, account and locks (see CertBlobs)
//	P:invalidate               pub/sub channel (not a key): "session:IDHASH", "user:NAME",
//	                           "user_sessions:NAME", published by every write of those
//
// Every write of a session or user is announced on P:invalidate (pipelined
// behind the write on one connection, or right after it on a Cluster), so
// caches in every instance hear of changes made by any writer, the
// command line included. Invalidations follows the channel.
//
// Keys one operation changes together share the {u:NAME} hash tag, so a
// Cluster keeps them in one slot. A session key is addressed by id alone
// and so cannot share its user's slot: PutSession adds the index entry
// first and then writes the session, and readers skip (and, once their
// expiry has passed, prune) index entries whose session is gone.
//
// Backup and Restore (backup.go) dump and load the keys under the prefix
// (DUMP/PTTL, RESTORE ... REPLACE) without sessions, counters and bans;
// Restore ends with AnnounceFlush ("flush:all"), on which every cache
// drops everything.
//
// The prefix must not contain '{' or '}'.
package redisstore
