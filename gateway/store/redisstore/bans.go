package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store"
)

// Bans live under one hash tag, {bans}: each ban is its own key with a
// TTL, and a sorted set indexes them by expiry (the server's clock) for
// listing. Every ban key and the index share a hash slot, so the scripts
// and the MGET of a listing are Cluster-safe, with no SCAN of every node.
func (s *Store) banKey(key string) string { return s.prefix + ":{bans}:b:" + key }
func (s *Store) banIndexKey() string      { return s.prefix + ":{bans}:index" }

// PutBan stores b under b.Key for ttl and indexes it.
func (s *Store) PutBan(ctx context.Context, b store.Ban, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("redisstore: put ban: %w", errBadTTL)
	}
	if !store.ValidBanKey(b.Key) {
		return fmt.Errorf("redisstore: put ban: %w", store.ErrBadBan)
	}
	b.Since, b.Until = utc(b.Since), utc(b.Until)
	data, err := encode(b)
	if err != nil {
		return fmt.Errorf("redisstore: put ban %q: %w", b.Key, err)
	}
	err = putBanScript.Run(ctx, s.rdb, []string{s.banKey(b.Key), s.banIndexKey()}, data, ms(ttl), b.Key).Err()
	if err != nil {
		return fmt.Errorf("redisstore: put ban %q: %w", b.Key, err)
	}
	return nil
}

// GetBan returns the live ban with key; store.ErrNotFound if none.
func (s *Store) GetBan(ctx context.Context, key string) (store.Ban, error) {
	if err := ctx.Err(); err != nil {
		return store.Ban{}, err
	}
	data, err := s.rdb.Get(ctx, s.banKey(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Ban{}, fmt.Errorf("redisstore: get ban %q: %w", key, err)
	}
	var b store.Ban
	if err := decode(data, &b); err != nil {
		return store.Ban{}, fmt.Errorf("redisstore: get ban %q: %w", key, err)
	}
	return b, nil
}

// DeleteBan removes the ban and its index entry; a missing ban is fine.
func (s *Store) DeleteBan(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.banKey(key))
		p.ZRem(ctx, s.banIndexKey(), key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: delete ban %q: %w", key, err)
	}
	return nil
}

// ListBans returns up to limit live bans, the one ending last first.
// Index entries whose ban is gone (deleted meanwhile) are skipped.
func (s *Store) ListBans(ctx context.Context, limit int) ([]store.Ban, error) {
	if limit <= 0 {
		return nil, errBadLimit
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	members, err := listBansScript.Run(ctx, s.rdb, []string{s.banIndexKey()}, limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list bans: %w", err)
	}
	if len(members) == 0 {
		return []store.Ban{}, nil
	}
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = s.banKey(m)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list bans: %w", err)
	}
	out := make([]store.Ban, 0, len(vals))
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // expired or deleted since the index was read
		}
		var b store.Ban
		if err := decode([]byte(str), &b); err != nil {
			return nil, fmt.Errorf("redisstore: list bans: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}
