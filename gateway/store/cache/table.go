package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// shardCount spreads keys (and lock contention) over independent shards.
const shardCount = 64

// evictProbes is how many entries a full shard looks at for an expired
// one before it evicts an arbitrary one.
const evictProbes = 8

// table is a bounded map from key to V, in shards, with the generation
// checks that keep a racing read from inserting a stale value.
type table[V any] struct {
	seed     maphash.Seed
	perShard int
	// epoch and open belong to the cache: a fill inserts only if the
	// epoch it started in is still current and the cache serves.
	epoch  *atomic.Uint64
	open   *atomic.Bool
	shards [shardCount]shard[V]
}

type shard[V any] struct {
	mu sync.Mutex
	// gen is bumped (under mu) by every invalidation of a key of this
	// shard; read without the lock when a fill starts.
	gen atomic.Uint64
	m   map[string]entry[V]
	// writing counts this process's writes in flight to keys of this
	// shard: no fill inserts meanwhile (see beginWrite).
	writing int
	// hits and misses of get, counted under mu (no shared counter for
	// every core to fight over).
	hits, misses uint64
	// pad keeps shards on separate cache lines.
	_ [16]byte
}

type entry[V any] struct {
	v V
	// until is when the entry stops being served (the cache's clock;
	// compared with its monotonic reading when it has one).
	until time.Time
}

// ticket is what a fill records before it reads the backend.
type ticket struct {
	gen, epoch uint64
}

func newTable[V any](maxEntries int, epoch *atomic.Uint64, open *atomic.Bool) *table[V] {
	t := &table[V]{seed: maphash.MakeSeed(), perShard: max(1, (maxEntries+shardCount-1)/shardCount), epoch: epoch, open: open}
	for i := range t.shards {
		t.shards[i].m = make(map[string]entry[V])
	}
	return t
}

func (t *table[V]) shard(key string) *shard[V] {
	return &t.shards[maphash.String(t.seed, key)%shardCount]
}

// get returns the live entry for key.
func (t *table[V]) get(key string, now time.Time) (V, bool) {
	sh := t.shard(key)
	sh.mu.Lock()
	e, ok := sh.m[key]
	if ok && !now.Before(e.until) {
		delete(sh.m, key)
		ok = false
	}
	if ok {
		sh.hits++
	} else {
		sh.misses++
	}
	sh.mu.Unlock()
	if !ok {
		var zero V
		return zero, false
	}
	return e.v, true
}

// ticket records the state a fill of key starts from.
func (t *table[V]) ticket(key string) ticket {
	return ticket{gen: t.shard(key).gen.Load(), epoch: t.epoch.Load()}
}

// put inserts v for key until the given time, unless an invalidation of
// the shard or a reset happened since tk was taken, or the cache does
// not serve (the feed is down).
func (t *table[V]) put(key string, v V, until time.Time, tk ticket, now time.Time) bool {
	sh := t.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen.Load() != tk.gen || sh.writing > 0 || t.epoch.Load() != tk.epoch || !t.open.Load() {
		return false
	}
	if _, ok := sh.m[key]; !ok && len(sh.m) >= t.perShard {
		sh.evictOne(now)
	}
	sh.m[key] = entry[V]{v: v, until: until}
	return true
}

// evictOne drops an expired entry among the first few the map yields
// (its iteration order is random), else the first one.
func (sh *shard[V]) evictOne(now time.Time) {
	victim, n := "", 0
	for k, e := range sh.m {
		if !now.Before(e.until) {
			delete(sh.m, k)
			return
		}
		if n == 0 {
			victim = k
		}
		if n++; n == evictProbes {
			break
		}
	}
	delete(sh.m, victim)
}

// invalidate drops key and fails every fill of its shard in flight.
func (t *table[V]) invalidate(key string) { t.shard(key).drop(key, 0) }

// beginWrite and endWrite bracket a write of key by this process. Both
// drop key and fail the fills in flight; in between, no fill of the
// shard inserts. So a read of the old value that finishes while the
// write lands (after the backend changed, before endWrite) is never
// cached, and a reader that saw the new value cannot see the old one
// after it.
func (t *table[V]) beginWrite(key string) { t.shard(key).drop(key, +1) }
func (t *table[V]) endWrite(key string)   { t.shard(key).drop(key, -1) }

// drop removes key, bumps the generation and adds writes to writing.
func (sh *shard[V]) drop(key string, writes int) {
	sh.mu.Lock()
	sh.gen.Add(1)
	sh.writing += writes
	delete(sh.m, key)
	sh.mu.Unlock()
}

// invalidateWhere drops every entry drop matches and fails every fill in
// flight (any shard could hold a matching key); writes (+1, -1 or 0)
// brackets a write as beginWrite and endWrite do, for every shard.
func (t *table[V]) invalidateWhere(drop func(V) bool, writes int) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.gen.Add(1)
		sh.writing += writes
		for k, e := range sh.m {
			if drop(e.v) {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}

// flush drops everything (after the caller bumped the epoch).
func (t *table[V]) flush() {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		sh.m = make(map[string]entry[V])
		sh.mu.Unlock()
	}
}

// stats sums the shards: entries held (expired ones not yet dropped
// included), hits and misses of get.
func (t *table[V]) stats() (entries int, hits, misses uint64) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		entries += len(sh.m)
		hits += sh.hits
		misses += sh.misses
		sh.mu.Unlock()
	}
	return entries, hits, misses
}
