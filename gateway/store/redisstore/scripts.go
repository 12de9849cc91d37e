package redisstore

import "github.com/redis/go-redis/v9"

// Every script touches exactly one key, or keys of one hash tag, so each
// is Cluster-safe.

// incrScript adds ARGV[1] and gives a counter without an expiry (a new
// one) ARGV[2] ms to live; later increments keep the first expiry.
var incrScript = redis.NewScript(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
`)

// indexAddScript records session ARGV[1] in a user's index, scored by its
// expiry on the server's clock (now + ARGV[2] ms), and keeps the index
// alive at least as long as that session.
var indexAddScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
	redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
`)

// indexListScript prunes index entries whose expiry has passed on the
// server's clock and returns the rest. Entries are scored by expiry and
// a PutSession raises the score before writing the session, so pruning
// by score never drops a live or just-renewed session.
var indexListScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

// deleteIfOwnedScript deletes session KEYS[1] only if it belongs to user
// ARGV[1] (an index entry can be stale after a session changed user), and
// returns 1 if it deleted a (live) session.
var deleteIfOwnedScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
	return 0
end
local ok, s = pcall(cjson.decode, v)
if ok and type(s) == 'table' and s['user'] == ARGV[1] then
	redis.call('DEL', KEYS[1])
	return 1
end
return 0
`)

// putBanScript stores ban KEYS[1] (value ARGV[1]) for ARGV[2] ms and
// indexes member ARGV[3] in KEYS[2] by its expiry on the server's clock,
// pruning expired entries and keeping the index alive as long as its
// longest ban. Both keys share the {bans} hash tag.
var putBanScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
if redis.call('PTTL', KEYS[2]) < ttl then
	redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
`)

// listBansScript prunes expired entries of index KEYS[1] and returns up
// to ARGV[1] members, the latest expiry first.
var listBansScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[1]))
`)
