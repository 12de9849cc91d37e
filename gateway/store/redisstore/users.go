package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store"
)

// updateAttempts bounds UpdateUser's optimistic retries before
// ErrConflict; with jittered backoff this outlasts dozens of writers
// racing on one user.
const updateAttempts = 100

// listBatch is how many names ListUsers reads per round trip.
const listBatch = 500

// normUser returns a deep copy of u with its times in UTC.
func normUser(u store.User) store.User {
	u = u.Clone()
	u.TOTPEnrolledAt = utc(u.TOTPEnrolledAt)
	u.TOTPLastUsedAt = utc(u.TOTPLastUsedAt)
	u.RecoveryCodesAt = utc(u.RecoveryCodesAt)
	u.CreatedAt = utc(u.CreatedAt)
	u.UpdatedAt = utc(u.UpdatedAt)
	for i := range u.Passkeys {
		u.Passkeys[i].CreatedAt = utc(u.Passkeys[i].CreatedAt)
		u.Passkeys[i].LastUsedAt = utc(u.Passkeys[i].LastUsedAt)
	}
	return u
}

func decodeUser(data []byte) (store.User, error) {
	var u store.User
	err := decode(data, &u)
	return u, err
}

// CreateUser stores a new user; ErrExists if the name is taken. The
// record is written first (SET NX), then the name joins P:users.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u = normUser(u)
	data, err := encode(u)
	if err != nil {
		return fmt.Errorf("redisstore: create user %q: %w", u.Name, err)
	}
	created, err := s.rdb.SetNX(ctx, s.userKey(u.Name), data, 0).Result()
	if err != nil {
		return fmt.Errorf("redisstore: create user %q: %w", u.Name, err)
	}
	// Also when the user exists: heals a name left out of the list by a
	// create interrupted between its two writes.
	if err := s.rdb.ZAdd(ctx, s.usersKey(), redis.Z{Member: u.Name}).Err(); err != nil {
		return fmt.Errorf("redisstore: create user %q: index name: %w", u.Name, err)
	}
	if created {
		if err := s.announceNow(ctx, msgUser, u.Name); err != nil {
			return fmt.Errorf("redisstore: create user %q: %w", u.Name, err)
		}
	}
	if !created {
		return fmt.Errorf("redisstore: create user %q: %w", u.Name, store.ErrExists)
	}
	return nil
}

// GetUser returns a user; ErrNotFound if missing.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	if err := ctx.Err(); err != nil {
		return store.User{}, err
	}
	data, err := s.rdb.Get(ctx, s.userKey(name)).Bytes()
	if errors.Is(err, redis.Nil) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("redisstore: get user %q: %w", name, err)
	}
	u, err := decodeUser(data)
	if err != nil {
		return store.User{}, fmt.Errorf("redisstore: get user %q: %w", name, err)
	}
	return u, nil
}

// UpdateUser applies fn in a WATCH/MULTI transaction, retrying when
// another writer got in first; ErrConflict once retries run out. A Name
// changed by fn is ignored: the user stays under its key.
func (s *Store) UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error) {
	if err := ctx.Err(); err != nil {
		return store.User{}, err
	}
	key := s.userKey(name)
	ordered := s.keepsOrder()
	for attempt := range updateAttempts {
		var out store.User
		var fnErr error
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			data, err := tx.Get(ctx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return store.ErrNotFound
			}
			if err != nil {
				return err
			}
			u, err := decodeUser(data)
			if err != nil {
				return err
			}
			if err := fn(&u); err != nil {
				fnErr = err
				return err
			}
			u.Name = name
			u = normUser(u)
			if data, err = encode(u); err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, data, 0)
				if ordered {
					// Inside MULTI: announced right after the write.
					s.announce(ctx, p, msgUser, name)
				}
				return nil
			})
			out = u.Clone()
			return err
		}, key)
		switch {
		case err == nil:
			if !ordered {
				if err := s.announceNow(ctx, msgUser, name); err != nil {
					return store.User{}, fmt.Errorf("redisstore: update user %q: %w", name, err)
				}
			}
			return out, nil
		case fnErr != nil:
			return store.User{}, fnErr
		case errors.Is(err, redis.TxFailedErr):
			if err := sleepCtx(ctx, backoff(attempt)); err != nil {
				return store.User{}, fmt.Errorf("redisstore: update user %q: %w", name, err)
			}
		default:
			return store.User{}, fmt.Errorf("redisstore: update user %q: %w", name, s.announceErr(err))
		}
	}
	return store.User{}, fmt.Errorf("redisstore: update user %q after %d attempts: %w", name, updateAttempts, store.ErrConflict)
}

// backoff is a jittered wait before retry attempt+1: up to 1 ms, doubling
// to at most 32 ms.
func backoff(attempt int) time.Duration {
	ceiling := time.Millisecond << min(attempt, 5)
	return rand.N(ceiling) + 100*time.Microsecond
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DeleteUser removes a user and all of their sessions; ErrNotFound if
// missing.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var del *redis.IntCmd
	var pub *redis.IntCmd
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, s.userKey(name))
		if s.keepsOrder() {
			pub = s.announce(ctx, p, msgUser, name)
		}
		return nil
	})
	n, err := del.Result()
	if err != nil {
		return fmt.Errorf("redisstore: delete user %q: %w", name, err)
	}
	if pub != nil {
		err = s.announceErr(pub.Err())
	} else {
		err = s.announceNow(ctx, msgUser, name)
	}
	if err != nil {
		return fmt.Errorf("redisstore: delete user %q: %w", name, err)
	}
	// Also when missing: heals a name left behind by an interrupted delete.
	if err := s.rdb.ZRem(ctx, s.usersKey(), name).Err(); err != nil {
		return fmt.Errorf("redisstore: delete user %q: unindex name: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: delete user %q: %w", name, store.ErrNotFound)
	}
	if _, err := s.deleteUserSessions(ctx, name); err != nil {
		return fmt.Errorf("redisstore: delete user %q: %w", name, err)
	}
	return nil
}

// ListUsers pages through users in byte order of their names, reading
// names with ZRANGEBYLEX and records with one pipelined GET per batch.
// Names whose record is gone (an interrupted delete) are skipped.
func (s *Store) ListUsers(ctx context.Context, opts store.ListOptions) ([]store.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lower := "-"
	if opts.After != "" {
		lower = "(" + opts.After
	}
	var users []store.User
	for {
		batch := listBatch
		if opts.Limit > 0 {
			batch = min(batch, opts.Limit-len(users))
		}
		names, err := s.rdb.ZRangeByLex(ctx, s.usersKey(), &redis.ZRangeBy{
			Min: lower, Max: "+", Count: int64(batch),
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: list users: %w", err)
		}
		if len(names) == 0 {
			return users, nil
		}
		cmds := make([]*redis.StringCmd, len(names))
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, name := range names {
				cmds[i] = p.Get(ctx, s.userKey(name))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("redisstore: list users: %w", err)
		}
		for i, cmd := range cmds {
			data, err := cmd.Bytes()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("redisstore: list users: %w", err)
			}
			u, err := decodeUser(data)
			if err != nil {
				return nil, fmt.Errorf("redisstore: list users: %q: %w", names[i], err)
			}
			users = append(users, u)
		}
		if len(names) < batch || (opts.Limit > 0 && len(users) >= opts.Limit) {
			return users, nil
		}
		lower = "(" + names[len(names)-1]
	}
}

// CountUsers returns the number of names in P:users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n, err := s.rdb.ZCard(ctx, s.usersKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: count users: %w", err)
	}
	return int(n), nil
}
