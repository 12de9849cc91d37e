package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store"
)

// DefaultKeyPrefix namespaces keys when Options.KeyPrefix is empty.
const DefaultKeyPrefix = "authgate"

// errBadTTL is returned for a ttl or window that is not positive.
var errBadTTL = errors.New("redisstore: ttl must be positive")

var _ store.Store = (*Store)(nil)

// Options tunes New.
type Options struct {
	// KeyPrefix namespaces every key; default "authgate". It must not
	// contain '{' or '}' (they would change the keys' hash slots).
	KeyPrefix string
}

// Store is a Redis-backed store.Store. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string

	closeOnce sync.Once
	closeErr  error
}

// New returns a store over client. The store owns the client from now on:
// Close closes it.
func New(client redis.UniversalClient, opts Options) *Store {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	return &Store{rdb: client, prefix: opts.KeyPrefix}
}

func (s *Store) usersKey() string             { return s.prefix + ":users" }
func (s *Store) userKey(name string) string   { return s.prefix + ":{u:" + name + "}:user" }
func (s *Store) indexKey(name string) string  { return s.prefix + ":{u:" + name + "}:sessions" }
func (s *Store) sessionKey(id string) string  { return s.prefix + ":s:" + id }
func (s *Store) counterKey(key string) string { return s.prefix + ":c:" + key }
func (s *Store) settingsKey() string          { return s.prefix + ":settings" }
func (s *Store) stepKey(u string, n int64) string {
	return s.prefix + ":{u:" + u + "}:step:" + strconv.FormatInt(n, 10)
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Close closes the client. Calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.rdb.Close(); err != nil {
			s.closeErr = fmt.Errorf("redisstore: close: %w", err)
		}
	})
	return s.closeErr
}

// ms converts a positive duration to whole milliseconds, at least 1.
func ms(d time.Duration) int64 {
	return max(1, int64((d+time.Millisecond-1)/time.Millisecond))
}

func encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return data, nil
}

func decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode stored value: %w", err)
	}
	return nil
}

// utc normalises a time for storage: UTC, zero stays zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
