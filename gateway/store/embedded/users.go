package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/gateway/store"
)

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

func putUser(b *bolt.Bucket, u store.User) error {
	data, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode user: %w", err)
	}
	return b.Put([]byte(u.Name), data)
}

func decodeUser(data []byte) (store.User, error) {
	var u store.User
	if err := decode(data, &u); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// CreateUser stores a new user; ErrExists if the name is taken.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	u = normUser(u)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b.Get([]byte(u.Name)) != nil {
			return store.ErrExists
		}
		return putUser(b, u)
	})
	if err != nil {
		return fmt.Errorf("embedded: create user %q: %w", u.Name, err)
	}
	return nil
}

// GetUser returns a user; ErrNotFound if missing.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	var u store.User
	err := s.view(ctx, func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketUsers).Get([]byte(name))
		if data == nil {
			return store.ErrNotFound
		}
		var err error
		u, err = decodeUser(data)
		return err
	})
	if err != nil {
		return store.User{}, fmt.Errorf("embedded: get user %q: %w", name, err)
	}
	return u, nil
}

// UpdateUser applies fn inside one write transaction. A Name changed by
// fn is ignored: the user stays under its key.
func (s *Store) UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error) {
	var out store.User
	var fnErr error
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		data := b.Get([]byte(name))
		if data == nil {
			return store.ErrNotFound
		}
		u, err := decodeUser(data)
		if err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			fnErr = err
			return err // rolls the transaction back
		}
		u.Name = name
		u = normUser(u)
		if err := putUser(b, u); err != nil {
			return err
		}
		out = u.Clone()
		return nil
	})
	if fnErr != nil {
		return store.User{}, fnErr
	}
	if err != nil {
		return store.User{}, fmt.Errorf("embedded: update user %q: %w", name, err)
	}
	return out, nil
}

// DeleteUser removes a user and all of their sessions; ErrNotFound if
// missing.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b.Get([]byte(name)) == nil {
			return store.ErrNotFound
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		_, err := deleteUserSessions(tx, name, s.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("embedded: delete user %q: %w", name, err)
	}
	return nil
}

// ListUsers pages through users in byte order of their names.
func (s *Store) ListUsers(ctx context.Context, opts store.ListOptions) ([]store.User, error) {
	var users []store.User
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsers).Cursor()
		var k, v []byte
		if opts.After == "" {
			k, v = c.First()
		} else {
			after := []byte(opts.After)
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if opts.Limit > 0 && len(users) >= opts.Limit {
				break
			}
			u, err := decodeUser(v)
			if err != nil {
				return fmt.Errorf("user %q: %w", k, err)
			}
			users = append(users, u)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: list users: %w", err)
	}
	return users, nil
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.view(ctx, func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketUsers).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("embedded: count users: %w", err)
	}
	return n, nil
}
