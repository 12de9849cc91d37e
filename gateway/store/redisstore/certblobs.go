package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store"
)

// Defaults of CertBlobsOptions.
const (
	DefaultCertLockTTL     = 2 * time.Minute
	DefaultCertLockPollMin = 50 * time.Millisecond
	DefaultCertLockPollMax = time.Second
)

// deleteBatch bounds how many keys one delete script removes.
const deleteBatch = 500

// ErrBadBlobKey is returned for a key or prefix certmagic would never
// use: empty, or with a leading or trailing '/'.
var ErrBadBlobKey = errors.New("redisstore: bad cert blob key")

// ErrLockLost is returned by an unlock function when the lock was no
// longer this holder's (it expired and may have been taken by another).
var ErrLockLost = errors.New("redisstore: lock no longer held")

// CertBlobsOptions tunes Store.CertBlobsWith.
type CertBlobsOptions struct {
	// LockTTL is how long a lock outlives its holder's last refresh
	// (default 2 min). A holder refreshes it every LockTTL/3, so a live
	// holder keeps it and a crashed one loses it within LockTTL.
	LockTTL time.Duration
	// PollMin and PollMax bound the wait between attempts of a blocked
	// Lock: it starts at PollMin and doubles up to PollMax (defaults
	// 50 ms and 1 s).
	PollMin, PollMax time.Duration
}

// CertBlobs is a namespace for certmagic's data (certificates, keys,
// ACME accounts) and its distributed locks, shared by every gateway
// instance on the same Redis and key prefix. Keys are '/'-separated
// paths; a "directory" is a prefix of stored keys, never stored itself.
// All methods use only standard types, so the consumer (tlsconf) declares
// the interface it needs. Missing keys return errors matching
// store.ErrNotFound. It is safe for concurrent use.
//
// Key layout (P is the store's prefix; one hash tag, so every script is
// Cluster-safe; certmagic's data is a few kilobytes per host):
//
//	P:{certmagic}:keys       sorted set (score 0) of every stored key, for prefix listing
//	P:{certmagic}:mtimes     hash key -> last write, unix ms on the server's clock
//	P:{certmagic}:b:KEY      the value
//	P:{certmagic}:lock:NAME  a lock: the holder's random token, with a TTL
type CertBlobs struct {
	rdb     redis.UniversalClient
	base    string // P:{certmagic}:
	ttl     time.Duration
	pollMin time.Duration
	pollMax time.Duration
}

// CertBlobs returns the certmagic namespace with default lock timings.
func (s *Store) CertBlobs() *CertBlobs { return s.CertBlobsWith(CertBlobsOptions{}) }

// CertBlobsWith returns the certmagic namespace with the given lock
// timings (zero fields take the defaults).
func (s *Store) CertBlobsWith(o CertBlobsOptions) *CertBlobs {
	if o.LockTTL <= 0 {
		o.LockTTL = DefaultCertLockTTL
	}
	if o.PollMin <= 0 {
		o.PollMin = DefaultCertLockPollMin
	}
	if o.PollMax < o.PollMin {
		o.PollMax = max(o.PollMin, DefaultCertLockPollMax)
	}
	return &CertBlobs{
		rdb:     s.rdb,
		base:    s.prefix + ":{certmagic}:",
		ttl:     o.LockTTL,
		pollMin: o.PollMin,
		pollMax: o.PollMax,
	}
}

func (c *CertBlobs) keysKey() string            { return c.base + "keys" }
func (c *CertBlobs) mtimesKey() string          { return c.base + "mtimes" }
func (c *CertBlobs) blobKey(key string) string  { return c.base + "b:" + key }
func (c *CertBlobs) lockKey(name string) string { return c.base + "lock:" + name }
func (c *CertBlobs) refreshEvery() time.Duration {
	return max(c.ttl/3, time.Millisecond)
}

// belowMin and belowMax bound, for ZRANGEBYLEX, the keys below
// directory dir: those starting with "dir/" ('0' is the byte after '/').
func belowMin(dir string) string { return "[" + dir + "/" }
func belowMax(dir string) string { return "(" + dir + "0" }

// validBlobPrefix accepts "" (the root) and paths without a leading or
// trailing '/'; validBlobKey also refuses "".
func validBlobPrefix(p string) bool {
	return !strings.HasPrefix(p, "/") && !strings.HasSuffix(p, "/")
}

func validBlobKey(key string) bool { return key != "" && validBlobPrefix(key) }

// blobErr wraps err with the operation and key.
func blobErr(op, key string, err error) error {
	return fmt.Errorf("redisstore: cert blobs: %s %q: %w", op, key, err)
}

func lockErr(op, name string, err error) error {
	return fmt.Errorf("redisstore: cert blobs: %s lock %q: %w", op, name, err)
}

// Put stores value at key, replacing any previous value, and records the
// write time.
func (c *CertBlobs) Put(ctx context.Context, key string, value []byte) error {
	if !validBlobKey(key) {
		return blobErr("put", key, ErrBadBlobKey)
	}
	keys := []string{c.blobKey(key), c.keysKey(), c.mtimesKey()}
	if err := blobPutScript.Run(ctx, c.rdb, keys, value, key).Err(); err != nil {
		return blobErr("put", key, err)
	}
	return nil
}

// Get returns the value at key.
func (c *CertBlobs) Get(ctx context.Context, key string) ([]byte, error) {
	if !validBlobKey(key) {
		return nil, blobErr("get", key, ErrBadBlobKey)
	}
	v, err := c.rdb.Get(ctx, c.blobKey(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, blobErr("get", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, blobErr("get", key, err)
	}
	return v, nil
}

// Exists reports whether key is stored or is a directory (a prefix of
// stored keys, component-wise: "a" is one of "a/b", not of "ab").
func (c *CertBlobs) Exists(ctx context.Context, key string) (bool, error) {
	if !validBlobKey(key) {
		return false, blobErr("exists", key, ErrBadBlobKey)
	}
	keys := []string{c.blobKey(key), c.keysKey()}
	n, err := blobExistsScript.Run(ctx, c.rdb, keys, belowMin(key), belowMax(key)).Int64()
	if err != nil {
		return false, blobErr("exists", key, err)
	}
	return n == 1, nil
}

// Stat returns when key was last written and its size, isFile true; for
// a directory isFile is false, size 0 and modified the newest write
// below it.
func (c *CertBlobs) Stat(ctx context.Context, key string) (modified time.Time, size int64, isFile bool, err error) {
	if !validBlobKey(key) {
		return time.Time{}, 0, false, blobErr("stat", key, ErrBadBlobKey)
	}
	keys := []string{c.blobKey(key), c.keysKey(), c.mtimesKey()}
	res, err := blobStatScript.Run(ctx, c.rdb, keys, key, belowMin(key), belowMax(key)).Int64Slice()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, 0, false, blobErr("stat", key, store.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, 0, false, blobErr("stat", key, err)
	}
	if len(res) != 3 {
		return time.Time{}, 0, false, blobErr("stat", key, fmt.Errorf("unexpected reply %v", res))
	}
	return time.UnixMilli(res[2]).UTC(), res[1], res[0] == 1, nil
}

// List returns the keys under prefix ("" is the root), sorted. Not
// recursive: prefix's direct children, files and directories alike.
// Recursive: every key below prefix, the directories leading to the
// stored keys included (as a file system walk would). With nothing
// under prefix it returns ErrNotFound.
func (c *CertBlobs) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if !validBlobPrefix(prefix) {
		return nil, blobErr("list", prefix, ErrBadBlobKey)
	}
	rng := &redis.ZRangeBy{Min: "-", Max: "+"}
	if prefix != "" {
		rng = &redis.ZRangeBy{Min: belowMin(prefix), Max: belowMax(prefix)}
	}
	members, err := c.rdb.ZRangeByLex(ctx, c.keysKey(), rng).Result()
	if err != nil {
		return nil, blobErr("list", prefix, err)
	}
	if len(members) == 0 {
		return nil, blobErr("list", prefix, store.ErrNotFound)
	}
	base := ""
	if prefix != "" {
		base = prefix + "/"
	}
	seen := make(map[string]bool)
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, m := range members {
		rest := strings.TrimPrefix(m, base)
		if !recursive {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				rest = rest[:i]
			}
			add(base + rest)
			continue
		}
		for i := range len(rest) {
			if rest[i] == '/' {
				add(base + rest[:i])
			}
		}
		add(m)
	}
	slices.Sort(out)
	return out, nil
}

// Delete removes key and, if it is a directory, every key below it. A
// missing key is not an error. Keys are removed in batches of a few
// hundred, each batch at once.
func (c *CertBlobs) Delete(ctx context.Context, key string) error {
	if !validBlobKey(key) {
		return blobErr("delete", key, ErrBadBlobKey)
	}
	below, err := c.rdb.ZRangeByLex(ctx, c.keysKey(), &redis.ZRangeBy{Min: belowMin(key), Max: belowMax(key)}).Result()
	if err != nil {
		return blobErr("delete", key, err)
	}
	names := append([]string{key}, below...)
	for batch := range slices.Chunk(names, deleteBatch) {
		keys := make([]string, 0, len(batch)+2)
		keys = append(keys, c.keysKey(), c.mtimesKey())
		args := make([]any, len(batch))
		for i, n := range batch {
			keys = append(keys, c.blobKey(n))
			args[i] = n
		}
		if err := blobDeleteScript.Run(ctx, c.rdb, keys, args...).Err(); err != nil {
			return blobErr("delete", key, err)
		}
	}
	return nil
}

// TryLock takes lock name if it is free and returns the function that
// releases it; ok false means another holder has it. While held, the
// lock's TTL is refreshed every LockTTL/3 until the release function is
// called.
func (c *CertBlobs) TryLock(ctx context.Context, name string) (unlock func(context.Context) error, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, lockErr("take", name, err)
	}
	token := rand.Text()
	key := c.lockKey(name)
	ok, err = c.rdb.SetNX(ctx, key, token, c.ttl).Result()
	if err != nil {
		return nil, false, lockErr("take", name, err)
	}
	if !ok {
		return nil, false, nil
	}
	return c.hold(name, key, token), true, nil
}

// Lock takes lock name, waiting (polling with a growing interval) while
// another holder has it, until ctx ends. It returns the function that
// releases the lock; see TryLock.
func (c *CertBlobs) Lock(ctx context.Context, name string) (unlock func(context.Context) error, err error) {
	wait := c.pollMin
	for {
		unlock, ok, err := c.TryLock(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				// A command cut short by the deadline can fail with an
				// I/O timeout; report why the wait ended.
				return nil, lockErr("wait for", name, ctx.Err())
			}
			return nil, err
		}
		if ok {
			return unlock, nil
		}
		// Jitter keeps instances that wait together from polling in step.
		t := time.NewTimer(wait/2 + mrand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, lockErr("wait for", name, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, c.pollMax)
	}
}

// hold starts refreshing a taken lock and returns its release function.
func (c *CertBlobs) hold(name, key, token string) func(context.Context) error {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(c.refreshEvery())
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.refreshEvery())
			n, err := lockRefreshScript.Run(ctx, c.rdb, []string{key}, token, ms(c.ttl)).Int64()
			cancel()
			// An error (Redis unreachable) is retried at the next tick:
			// the lock survives as long as Redis keeps it. 0 means it
			// expired and may be another's now: stop; release reports it.
			if err == nil && n == 0 {
				return
			}
		}
	}()
	var once sync.Once
	var result error
	return func(ctx context.Context) error {
		once.Do(func() {
			close(stop)
			<-done
			n, err := lockReleaseScript.Run(ctx, c.rdb, []string{key}, token).Int64()
			switch {
			case err != nil:
				// The refresh has stopped, so the lock expires within
				// LockTTL anyway.
				result = lockErr("release", name, err)
			case n == 0:
				result = lockErr("release", name, ErrLockLost)
			}
		})
		return result
	}
}

// Scripts of CertBlobs: all their keys share the {certmagic} hash tag.
var (
	// blobPutScript stores value ARGV[1] for key ARGV[2] in KEYS[1],
	// lists the key in KEYS[2] and records the write time in KEYS[3].
	blobPutScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], now)
return now
`)

	// blobExistsScript returns 1 if value KEYS[1] exists or index KEYS[2]
	// holds a key in lex range [ARGV[1], ARGV[2]) (below the key).
	blobExistsScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
	return 1
end
if #redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], ARGV[2], 'LIMIT', 0, 1) > 0 then
	return 1
end
return 0
`)

	// blobStatScript returns {1, size, mtime} for stored value KEYS[1]
	// (key ARGV[1]), {0, 0, newest mtime below} for a directory (keys of
	// index KEYS[2] in lex range ARGV[2]..ARGV[3]; times in KEYS[3]), and
	// nil for neither.
	blobStatScript = redis.NewScript(`
local size = redis.call('STRLEN', KEYS[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
	return {1, size, tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')}
end
local below = redis.call('ZRANGEBYLEX', KEYS[2], ARGV[2], ARGV[3])
if #below == 0 then
	return false
end
local newest = 0
for _, k in ipairs(below) do
	local m = tonumber(redis.call('HGET', KEYS[3], k) or '0')
	if m > newest then
		newest = m
	end
end
return {0, 0, newest}
`)

	// blobDeleteScript deletes values KEYS[3..] and removes their keys
	// ARGV[1..] from index KEYS[1] and times KEYS[2].
	blobDeleteScript = redis.NewScript(`
for i = 3, #KEYS do
	redis.call('DEL', KEYS[i])
end
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return 1
`)

	// lockRefreshScript gives lock KEYS[1] ARGV[2] ms more if it still
	// holds token ARGV[1]; 0 means it does not.
	lockRefreshScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

	// lockReleaseScript deletes lock KEYS[1] only if it holds token
	// ARGV[1]; 0 means it did not.
	lockReleaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)
)
