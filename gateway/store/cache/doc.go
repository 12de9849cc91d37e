// Package cache keeps validated sessions and the user records the gate
// reads in memory, in front of a store.Store, so an authenticated request
// costs no round trip to the backend and no JSON decoding.
//
// New wraps a store and returns a store.Store. GetSession and GetUser are
// answered from memory when the entry is younger than Options.MaxAge (a
// safety net) and, for sessions, still inside the TTL the backend gave
// it, and when the cache knows of every change:
//
//   - Options.SoleWriter (the embedded store, locked to one process): all
//     writes go through this wrapper, which drops what they change
//     before returning.
//   - Options.Feed (Redis): the backend announces every write, from any
//     instance or the command line; the cache serves only while the feed
//     is subscribed and not stalled. While an answer the feed asked for is
//     overdue (FeedStalled) it reads the backend but keeps its entries: the
//     feed's connection delivers in order, so once the answer comes every
//     change before it has arrived and serving resumes without a flush.
//     When the subscription is lost it drops everything and reads the
//     backend until subscribed again (fail closed). Each reset is counted
//     and logged with its cause.
//
// Every other method passes through; writes also drop their entries at
// once, without waiting for the feed's echo. A read that raced with a
// change never inserts its stale result: each shard has a generation,
// bumped by every invalidation, and a cache-wide epoch, bumped by every
// feed reset; a read records both before asking the backend and inserts
// only if neither moved, and never while this process has a write to
// the shard in flight. Values are copied in and out, as the store
// contract requires. Memory is bounded by Options.MaxEntries (sessions
// and users each); a full shard evicts an expired entry if it finds one
// among a few, else an arbitrary one. Missing items (ErrNotFound) are
// never cached.
package cache
