package redisstore

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// The backup file: JSON lines. The first is a backupHeader, then one
// backupRecord per key (its name relative to the prefix, its DUMP payload
// and remaining TTL), then a record with End set and the number of keys,
// so a cut-off file is told from a complete one.
const (
	backupFormat  = "authgate-redis-backup"
	backupVersion = 1
)

// ErrNotBackup is returned by Restore for input that is not a complete
// authgate Redis backup of a version it reads.
var ErrNotBackup = errors.New("redisstore: not an authgate Redis backup")

// ErrHasUsers is returned by Restore when the prefix already holds users
// and RestoreOptions.Force is not set.
var ErrHasUsers = errors.New("redisstore: the key prefix already holds users")

type backupHeader struct {
	Format    string    `json:"format"`
	Version   int       `json:"version"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	// Skipped names what a backup leaves out.
	Skipped string `json:"skipped"`
}

type backupRecord struct {
	// Key is the key's name after the prefix (":settings"); KeyBytes holds
	// it instead when it is not UTF-8.
	Key      string `json:"key,omitempty"`
	KeyBytes []byte `json:"key_bytes,omitempty"`
	// PTTL is the remaining time to live in ms; 0: none.
	PTTL int64  `json:"pttl_ms,omitempty"`
	Dump []byte `json:"dump,omitempty"`
	// End marks the last line; Keys is then the number of records.
	End  bool `json:"end,omitempty"`
	Keys int  `json:"keys,omitempty"`
}

func (r backupRecord) name() string {
	if r.KeyBytes != nil {
		return string(r.KeyBytes)
	}
	return r.Key
}

const skippedDoc = "sessions, session indexes, sign-in failure counters, bans, certificate locks"

// volatile reports whether a key (its name after the prefix) is left out
// of backups and restores: sessions and their per-user indexes (a restore
// may revert a revocation or an AuthEpoch bump: no session may come
// back), sign-in failure counters and bans, certmagic's locks, and
// Restore's own scratch keys.
func volatile(rel string) bool {
	switch {
	case strings.HasPrefix(rel, ":s:"), strings.HasPrefix(rel, ":c:"),
		strings.HasPrefix(rel, ":{bans}:"), strings.HasPrefix(rel, ":{certmagic}:lock:"),
		strings.HasPrefix(rel, restoreCheckInfix):
		return true
	case strings.HasPrefix(rel, ":{u:") && strings.HasSuffix(rel, "}:sessions"):
		return true
	}
	return false
}

// restoreCheckInfix names Restore's scratch copy of the backup's settings.
const restoreCheckInfix = ":restore-check:"

// userOf returns NAME for a user key ":{u:NAME}:user".
func userOf(rel string) (string, bool) {
	name, ok := strings.CutPrefix(rel, ":{u:")
	if !ok {
		return "", false
	}
	name, ok = strings.CutSuffix(name, "}:user")
	return name, ok && name != ""
}

// globEscape escapes the glob metacharacters of a MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// scanPrefix calls fn with every batch of keys under the prefix ("P:*",
// never another prefix that merely starts with P), on every master of a
// Cluster; fn calls never overlap.
func (s *Store) scanPrefix(ctx context.Context, fn func(keys []string) error) error {
	match := globEscape(s.prefix) + ":*"
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, match, 500).Result()
			if err != nil {
				return fmt.Errorf("scan: %w", err)
			}
			if len(keys) > 0 {
				mu.Lock()
				err := fn(keys)
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, s.rdb)
}

// BackupInfo says what Backup wrote.
type BackupInfo struct {
	Keys, Users int
	// Skipped counts the keys left out (sessions, counters, bans...).
	Skipped int
}

// Backup writes a logical dump of the keys under the prefix to w: DUMP
// and PTTL of each, found with SCAN on every master. It runs while
// gateways serve; each key is copied as it is at its turn, so a change
// made meanwhile may or may not be in the dump. Sessions, failure
// counters and bans are left out (see volatile).
func (s *Store) Backup(ctx context.Context, w io.Writer, now time.Time) (BackupInfo, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var info BackupInfo
	err := enc.Encode(backupHeader{Format: backupFormat, Version: backupVersion, Prefix: s.prefix, CreatedAt: now.UTC(), Skipped: skippedDoc})
	if err != nil {
		return info, fmt.Errorf("redisstore: backup: %w", err)
	}
	err = s.scanPrefix(ctx, func(keys []string) error {
		var kept []string
		for _, k := range keys {
			if volatile(k[len(s.prefix):]) {
				info.Skipped++
				continue
			}
			kept = append(kept, k)
		}
		if len(kept) == 0 {
			return nil
		}
		dumps := make([]*redis.StringCmd, len(kept))
		ttls := make([]*redis.DurationCmd, len(kept))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range kept {
				dumps[i] = p.Dump(ctx, k)
				ttls[i] = p.PTTL(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("dump: %w", err)
		}
		for i, k := range kept {
			payload, err := dumps[i].Result()
			if errors.Is(err, redis.Nil) {
				continue // deleted since the scan
			}
			if err != nil {
				return fmt.Errorf("dump %s: %w", k, err)
			}
			rec := backupRecord{Dump: []byte(payload)}
			if rel := k[len(s.prefix):]; utf8.ValidString(rel) {
				rec.Key = rel
			} else {
				rec.KeyBytes = []byte(rel)
			}
			switch ttl, err := ttls[i].Result(); {
			case err != nil:
				return fmt.Errorf("pttl %s: %w", k, err)
			case ttl == -2: // expired since the DUMP
				continue
			case ttl > 0:
				rec.PTTL = ms(ttl)
			}
			if _, ok := userOf(rec.name()); ok {
				info.Users++
			}
			info.Keys++
			if err := enc.Encode(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = enc.Encode(backupRecord{End: true, Keys: info.Keys})
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return info, fmt.Errorf("redisstore: backup: %w", err)
	}
	return info, nil
}

// BackupFile describes a backup read by ReadBackup.
type BackupFile struct {
	// Prefix is the prefix the backup was made under; CreatedAt when.
	Prefix    string
	CreatedAt time.Time
	// Keys and Users count what it holds.
	Keys, Users int
	records     []backupRecord
}

// ReadBackup reads and checks a whole backup: its header, every record,
// and the end line with the right count. Any problem is an error
// matching ErrNotBackup that says what is wrong.
func ReadBackup(r io.Reader) (*BackupFile, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var h backupHeader
	if err := dec.Decode(&h); err != nil || h.Format != backupFormat {
		return nil, fmt.Errorf("%w: no %q header line", ErrNotBackup, backupFormat)
	}
	if h.Version < 1 || h.Version > backupVersion {
		return nil, fmt.Errorf("%w: format version %d (this authgate reads up to %d)", ErrNotBackup, h.Version, backupVersion)
	}
	f := &BackupFile{Prefix: h.Prefix, CreatedAt: h.CreatedAt}
	for {
		var rec backupRecord
		if err := dec.Decode(&rec); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: cut off after %d key(s) (no end line)", ErrNotBackup, len(f.records))
			}
			return nil, fmt.Errorf("%w: record %d: %v", ErrNotBackup, len(f.records)+1, err)
		}
		if rec.End {
			if rec.Keys != len(f.records) {
				return nil, fmt.Errorf("%w: the end line counts %d key(s), the file holds %d", ErrNotBackup, rec.Keys, len(f.records))
			}
			break
		}
		name := rec.name()
		if !strings.HasPrefix(name, ":") || len(rec.Dump) == 0 || rec.PTTL < 0 {
			return nil, fmt.Errorf("%w: record %d is malformed", ErrNotBackup, len(f.records)+1)
		}
		if _, ok := userOf(name); ok {
			f.Users++
		}
		f.records = append(f.records, rec)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the end line", ErrNotBackup)
	}
	f.Keys = len(f.records)
	return f, nil
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Force replaces the data of a prefix that already holds users.
	Force bool
	// Check, when set, vets the backup's settings (the secret key check)
	// before anything changes.
	Check func(settings map[string]string) error
}

// RestoreInfo says what Restore did.
type RestoreInfo struct {
	// Keys restored, Users among them; Deleted keys that were under the
	// prefix before.
	Keys, Users, Deleted int
}

// Restore replaces every key under the store's prefix with the backup's
// (RESTORE ... REPLACE, with their TTLs; volatile keys are skipped), so
// the prefix holds exactly the backup afterwards, without sessions: keys
// outside the prefix are never touched. A backup made under another
// prefix is restored under this one.
//
// It refuses, changing nothing, when opts.Check rejects the backup's
// settings, and when the prefix holds users unless opts.Force. When it is
// done it publishes a "flush" invalidation: every gateway's cache drops
// what it holds. A failure part-way leaves the prefix partly restored;
// running Restore again with Force finishes it.
func (s *Store) Restore(ctx context.Context, f *BackupFile, opts RestoreOptions) (RestoreInfo, error) {
	var info RestoreInfo
	if opts.Check != nil {
		settings, err := s.backupSettings(ctx, f)
		if err != nil {
			return info, err
		}
		if err := opts.Check(settings); err != nil {
			return info, err
		}
	}
	if !opts.Force {
		n, err := s.rdb.ZCard(ctx, s.usersKey()).Result()
		if err != nil {
			return info, fmt.Errorf("redisstore: restore: count users: %w", err)
		}
		if n > 0 {
			return info, fmt.Errorf("%w: %d user(s) under %q", ErrHasUsers, n, s.prefix+":")
		}
	}
	var err error
	if info.Deleted, err = s.deletePrefix(ctx); err != nil {
		return info, fmt.Errorf("redisstore: restore: clear the prefix: %w", err)
	}
	// The users index is rebuilt from the user keys restored, so it
	// matches them even if users came or went while the dump ran.
	var names []redis.Z
	var batch []backupRecord
	flush := func() error {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, r := range batch {
				p.RestoreReplace(ctx, s.prefix+r.name(), time.Duration(r.PTTL)*time.Millisecond, string(r.Dump))
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	for _, r := range f.records {
		rel := r.name()
		if volatile(rel) || rel == s.usersKey()[len(s.prefix):] {
			continue
		}
		if name, ok := userOf(rel); ok {
			names = append(names, redis.Z{Member: name})
			info.Users++
		}
		batch = append(batch, r)
		info.Keys++
		if len(batch) == 100 {
			if err := flush(); err != nil {
				return info, fmt.Errorf("redisstore: restore (part-way; run it again with --force): %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return info, fmt.Errorf("redisstore: restore (part-way; run it again with --force): %w", err)
	}
	if len(names) > 0 {
		if err := s.rdb.ZAdd(ctx, s.usersKey(), names...).Err(); err != nil {
			return info, fmt.Errorf("redisstore: restore (part-way; run it again with --force): users index: %w", err)
		}
	}
	if err := s.AnnounceFlush(ctx); err != nil {
		return info, fmt.Errorf("redisstore: restored, but %w: restart the gateways so they drop their caches", err)
	}
	return info, nil
}

// backupSettings reads the settings hash of the backup: its DUMP payload
// is restored to a scratch key under the prefix, read and deleted.
func (s *Store) backupSettings(ctx context.Context, f *BackupFile) (map[string]string, error) {
	rel := s.settingsKey()[len(s.prefix):]
	for _, r := range f.records {
		if r.name() != rel {
			continue
		}
		var id [8]byte
		_, _ = rand.Read(id[:])
		tmp := s.prefix + restoreCheckInfix + hex.EncodeToString(id[:])
		if err := s.rdb.Restore(ctx, tmp, time.Minute, string(r.Dump)).Err(); err != nil {
			return nil, fmt.Errorf("%w: its settings do not load into this Redis (%v)", ErrNotBackup, err)
		}
		defer s.rdb.Del(context.WithoutCancel(ctx), tmp)
		m, err := s.rdb.HGetAll(ctx, tmp).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: restore: read the backup's settings: %w", err)
		}
		return m, nil
	}
	return map[string]string{}, nil
}

// deletePrefix deletes every key under the prefix and returns how many.
func (s *Store) deletePrefix(ctx context.Context) (int, error) {
	n := 0
	err := s.scanPrefix(ctx, func(keys []string) error {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Del(ctx, k) // one key per command: a Cluster routes each
			}
			return nil
		})
		n += len(keys)
		return err
	})
	return n, err
}
