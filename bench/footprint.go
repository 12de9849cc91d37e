package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
)

// sessionsPerUser spreads the synthetic sessions over users (each user
// has an index of their sessions in both stores).
const sessionsPerUser = 10

// footprintResult is what -sessions more sessions cost a store.
type footprintResult struct {
	name     string
	sessions int
	// payload is the JSON size of the template: a session made by a real
	// sign-in (password + TOTP), copied with new ids.
	payload int
	write   time.Duration
	// Redis: MEMORY USAGE of the real sign-in's session that was copied
	// and of a sample of the copies, and the growth of INFO used_memory.
	realKeyBytes      float64
	sampleKeys        int
	sampleKeyBytes    float64
	usedMemoryDelta   int64
	redisBytesPerSess float64
	// Embedded: the bbolt file size and the bytes its pages hold.
	fileBefore, fileAfter   int64
	inuseBefore, inuseAfter int64
}

func (b *bench) footprint(ctx context.Context, c *candidate) (footprintResult, error) {
	// One more everyday sign-in (password + code) of the benchmark user,
	// whose session the written ones copy.
	if _, err := newBrowser("http://"+c.addr).signIn(ctx, c.ag.users[benchUser], b.up.body); err != nil {
		return footprintResult{}, c.main.failure(fmt.Errorf("signing in %s: %w", benchUser, err))
	}
	if c.ag.store == "redis" {
		return b.redisFootprint(ctx, c)
	}
	return b.embeddedFootprint(ctx, c)
}

// writeSessions stores n copies of tmpl under new ids, spread over users,
// with `workers` writers at once, and returns up to 1,000 of the ids.
func writeSessions(ctx context.Context, st store.Sessions, tmpl store.Session, n, workers int) ([]string, time.Duration, error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	sample := make([][]string, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				s := tmpl
				var id [32]byte
				if _, err := rand.Read(id[:]); err != nil {
					errs <- err
					return
				}
				sum := sha256.Sum256(id[:])
				s.IDHash = hex.EncodeToString(sum[:])
				s.User = fmt.Sprintf("u%07d", i/sessionsPerUser)
				if err := st.PutSession(ctx, s, time.Hour); err != nil {
					errs <- err
					return
				}
				if len(sample[w])*workers < 1000 {
					sample[w] = append(sample[w], s.IDHash)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, 0, err
	}
	var ids []string
	for _, s := range sample {
		ids = append(ids, s...)
	}
	return ids, time.Since(start), nil
}

// sessionTemplate returns a complete session made by a real sign-in
// (password + TOTP), preferring an everyday one: the session right after
// enrolment also carries the new recovery codes (sealed) for a while.
func sessionTemplate(ctx context.Context, st store.Sessions, users []string) (store.Session, int, error) {
	var fallback *store.Session
	for _, u := range users {
		ss, err := st.ListUserSessions(ctx, u)
		if err != nil {
			return store.Session{}, 0, err
		}
		for _, s := range ss {
			if s.Stage != store.StageFull || !s.TwoFactor {
				continue
			}
			if len(s.RecoveryCodesSealed) == 0 {
				data, err := json.Marshal(s)
				return s, len(data), err
			}
			if fallback == nil {
				fallback = &s
			}
		}
	}
	if fallback == nil {
		return store.Session{}, 0, errors.New("no complete session of a signed-in user in the store")
	}
	data, err := json.Marshal(*fallback)
	return *fallback, len(data), err
}

// userNames lists the instance's accounts, sorted.
func userNames(ag *authgateInstance) []string {
	var names []string
	for n := range ag.users {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (b *bench) redisFootprint(ctx context.Context, c *candidate) (footprintResult, error) {
	r := footprintResult{name: c.name, sessions: b.o.sessions}
	rdb := redis.NewClient(&redis.Options{Addr: c.ag.redis.addr})
	st := redisstore.New(rdb, redisstore.Options{})
	defer st.Close()
	tmpl, payload, err := sessionTemplate(ctx, st, userNames(c.ag))
	if err != nil {
		return r, err
	}
	r.payload = payload
	// The key layout is redisstore's: <prefix>:s:<id hash>.
	key := func(id string) string { return redisstore.DefaultKeyPrefix + ":s:" + id }
	if r.realKeyBytes, err = meanMemoryUsage(ctx, rdb, []string{key(tmpl.IDHash)}); err != nil {
		return r, err
	}
	before, err := usedMemory(ctx, rdb)
	if err != nil {
		return r, err
	}
	b.logf("%s: writing %d sessions through redisstore", c.name, r.sessions)
	ids, took, err := writeSessions(ctx, st, tmpl, r.sessions, 32)
	if err != nil {
		return r, err
	}
	r.write = took
	after, err := usedMemory(ctx, rdb)
	if err != nil {
		return r, err
	}
	r.usedMemoryDelta = after - before
	r.redisBytesPerSess = float64(r.usedMemoryDelta) / float64(r.sessions)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = key(id)
	}
	r.sampleKeys = len(keys)
	r.sampleKeyBytes, err = meanMemoryUsage(ctx, rdb, keys)
	return r, err
}

func meanMemoryUsage(ctx context.Context, rdb *redis.Client, keys []string) (float64, error) {
	var sum int64
	for _, k := range keys {
		n, err := rdb.MemoryUsage(ctx, k, 0).Result()
		if errors.Is(err, redis.Nil) {
			return 0, fmt.Errorf("MEMORY USAGE: no key %s: redisstore's key layout changed", k)
		}
		if err != nil {
			return 0, fmt.Errorf("MEMORY USAGE %s: %w", k, err)
		}
		sum += n
	}
	return float64(sum) / float64(len(keys)), nil
}

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO memory has no used_memory")
}

// embeddedFootprint stops authgate-embedded (bbolt allows one process)
// and writes into a copy of its database file in /dev/shm, where the
// fsync of each of the writes costs nothing; the file's layout and size
// do not depend on the file system.
func (b *bench) embeddedFootprint(ctx context.Context, c *candidate) (footprintResult, error) {
	r := footprintResult{name: c.name, sessions: b.o.sessions}
	c.main.stop(20 * time.Second)
	dir := os.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dir = "/dev/shm"
	}
	tmp, err := os.MkdirTemp(dir, "authgate-bench-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "authgate.db")
	if err := copyFile(filepath.Join(c.ag.dataDir, "authgate.db"), path); err != nil {
		return r, err
	}
	if r.fileBefore, r.inuseBefore, err = boltUsage(path); err != nil {
		return r, err
	}
	st, err := embedded.Open(path, embedded.Options{})
	if err != nil {
		return r, err
	}
	tmpl, payload, err := sessionTemplate(ctx, st, userNames(c.ag))
	if err != nil {
		_ = st.Close()
		return r, err
	}
	r.payload = payload
	b.logf("%s: writing %d sessions through the embedded store (a copy in %s)", c.name, r.sessions, dir)
	_, r.write, err = writeSessions(ctx, st, tmpl, r.sessions, 8)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return r, err
	}
	r.fileAfter, r.inuseAfter, err = boltUsage(path)
	return r, err
}

// boltUsage returns a bbolt file's size and the bytes its branch and
// leaf pages hold, over every bucket.
func boltUsage(path string) (size, inuse int64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return 0, 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, bk *bolt.Bucket) error {
			s := bk.Stats()
			inuse += int64(s.BranchInuse + s.LeafInuse)
			return nil
		})
	})
	return fi.Size(), inuse, err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
