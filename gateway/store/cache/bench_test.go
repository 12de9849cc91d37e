package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/cache"
)

// Reads of a session and of a user, straight from each backend and
// through the cache (a hit):
//
//	go test -run '^$' -bench . -benchmem ./gateway/store/cache

// benchStores returns each backend alone and behind a warm cache.
func benchStores(b *testing.B) []struct {
	name string
	st   store.Store
} {
	clk := newClock()
	emb := openEmbedded(b, clk)
	embCached := cache.New(openEmbedded(b, clk), cache.Options{SoleWriter: true, MaxAge: time.Hour}, clk.Now)
	b.Cleanup(func() { _ = embCached.Close() })
	srv := requireRedis(b)
	rs := newRedis(b, []string{srv.Addr()}, uniquePrefix())
	rsCached := redisCache(b, newRedis(b, []string{srv.Addr()}, uniquePrefix()), cache.Options{MaxAge: time.Hour}, time.Now)
	return []struct {
		name string
		st   store.Store
	}{{"embedded", emb}, {"embedded-cached", embCached}, {"redis", rs}, {"redis-cached", rsCached}}
}

func BenchmarkSessionGet(b *testing.B) {
	ctx := context.Background()
	for _, bs := range benchStores(b) {
		s := session(hashID(1), "alice", time.Now())
		if err := bs.st.PutSession(ctx, s, time.Hour); err != nil {
			b.Fatal(err)
		}
		b.Run(bs.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bs.st.GetSession(ctx, s.IDHash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUserGet(b *testing.B) {
	ctx := context.Background()
	for _, bs := range benchStores(b) {
		if err := bs.st.CreateUser(ctx, user("alice")); err != nil {
			b.Fatal(err)
		}
		b.Run(bs.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bs.st.GetUser(ctx, "alice"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSessionGetCachedParallel is the hit path under every CPU.
func BenchmarkSessionGetCachedParallel(b *testing.B) {
	ctx := context.Background()
	clk := newClock()
	// The real clock: the test clock's mutex would be the bottleneck.
	c := cache.New(openEmbedded(b, clk), cache.Options{SoleWriter: true, MaxAge: time.Hour}, time.Now)
	b.Cleanup(func() { _ = c.Close() })
	const n = 1024
	ids := make([]string, n)
	for i := range n {
		ids[i] = hashID(i)
		if err := c.PutSession(ctx, session(ids[i], "alice", clk.Now()), time.Hour); err != nil {
			b.Fatal(err)
		}
		if _, err := c.GetSession(ctx, ids[i]); err != nil { // warm
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.GetSession(ctx, ids[i%n]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
