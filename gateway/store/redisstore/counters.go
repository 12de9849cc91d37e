package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store"
)

// UseStep marks (user, step) used for ttl with SET NX PX; false means it
// already was (a replay).
func (s *Store) UseStep(ctx context.Context, user string, step int64, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, fmt.Errorf("redisstore: use step: %w", errBadTTL)
	}
	err := s.rdb.SetArgs(ctx, s.stepKey(user, step), 1, redis.SetArgs{
		Mode: "NX",
		TTL:  time.Duration(ms(ttl)) * time.Millisecond,
	}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: use step: %w", err)
	}
	return true, nil
}

// Incr adds delta to key; a new counter expires after window, and later
// increments keep that expiry.
func (s *Store) Incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if window <= 0 {
		return 0, fmt.Errorf("redisstore: incr %q: %w", key, errBadTTL)
	}
	v, err := incrScript.Run(ctx, s.rdb, []string{s.counterKey(key)}, delta, ms(window)).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: incr %q: %w", key, err)
	}
	return v, nil
}

// Counter returns key's value, 0 if missing or expired.
func (s *Store) Counter(ctx context.Context, key string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	v, err := s.rdb.Get(ctx, s.counterKey(key)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: counter %q: %w", key, err)
	}
	return v, nil
}

// ResetCounter deletes key; a missing counter is not an error.
func (s *Store) ResetCounter(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.rdb.Del(ctx, s.counterKey(key)).Err(); err != nil {
		return fmt.Errorf("redisstore: reset counter %q: %w", key, err)
	}
	return nil
}

// GetSetting returns a setting; ErrNotFound if never set.
func (s *Store) GetSetting(ctx context.Context, key string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	v, err := s.rdb.HGet(ctx, s.settingsKey(), key).Result()
	if errors.Is(err, redis.Nil) {
		err = store.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: get setting %q: %w", key, err)
	}
	return v, nil
}

// SetSetting stores a setting.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.settingsKey(), key, value).Err(); err != nil {
		return fmt.Errorf("redisstore: set setting %q: %w", key, err)
	}
	return nil
}
