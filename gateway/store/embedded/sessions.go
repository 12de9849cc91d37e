package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/gateway/store"
)

// sessionRecord is how a session is stored.
type sessionRecord struct {
	// Expiry is the end of life in Unix nanoseconds of the store's clock.
	Expiry  int64         `json:"expiry_unix_nano"`
	Session store.Session `json:"session"`
}

func normSession(s store.Session) store.Session {
	s.PendingTOTPSecret = slices.Clone(s.PendingTOTPSecret)
	s.PasskeyChallenge = slices.Clone(s.PasskeyChallenge)
	s.TwoFactorAt = utc(s.TwoFactorAt)
	s.CreatedAt = utc(s.CreatedAt)
	s.LastSeenAt = utc(s.LastSeenAt)
	s.ExpiresAt = utc(s.ExpiresAt)
	return s
}

// getSession returns the stored record for id, or ok=false if missing.
// Expiry is left to the caller.
func getSession(tx *bolt.Tx, id []byte) (rec sessionRecord, ok bool, err error) {
	data := tx.Bucket(bucketSessions).Get(id)
	if data == nil {
		return sessionRecord{}, false, nil
	}
	if err := decode(data, &rec); err != nil {
		return sessionRecord{}, false, fmt.Errorf("session: %w", err)
	}
	return rec, true, nil
}

// PutSession creates or replaces a session that expires after ttl.
func (s *Store) PutSession(ctx context.Context, sess store.Session, ttl time.Duration) error {
	if err := s.putSession(ctx, sess, ttl, false); err != nil {
		return fmt.Errorf("embedded: put session: %w", err)
	}
	return nil
}

// ReplaceSession replaces a live session; one deleted or expired
// meanwhile stays gone and ErrNotFound is returned. The check and the
// write are one transaction.
func (s *Store) ReplaceSession(ctx context.Context, sess store.Session, ttl time.Duration) error {
	if err := s.putSession(ctx, sess, ttl, true); err != nil {
		return fmt.Errorf("embedded: replace session: %w", err)
	}
	return nil
}

// putSession writes sess; onlyIfExists makes it a replacement that never
// creates a session (ErrNotFound when there is no live one).
func (s *Store) putSession(ctx context.Context, sess store.Session, ttl time.Duration, onlyIfExists bool) error {
	if ttl <= 0 {
		return errBadTTL
	}
	if sess.IDHash == "" {
		return errors.New("empty id hash")
	}
	sess = normSession(sess)
	return s.update(ctx, func(tx *bolt.Tx) error {
		id := []byte(sess.IDHash)
		old, ok, err := getSession(tx, id)
		if err != nil {
			return err
		}
		if onlyIfExists && (!ok || expired(old.Expiry, s.now())) {
			return store.ErrNotFound
		}
		idx := tx.Bucket(bucketUserSessions)
		if ok && old.Session.User != sess.User {
			if err := idx.Delete(userKey(old.Session.User, id)); err != nil {
				return err
			}
		}
		data, err := json.Marshal(sessionRecord{Expiry: deadline(s.now(), ttl), Session: sess})
		if err != nil {
			return fmt.Errorf("encode session: %w", err)
		}
		if err := tx.Bucket(bucketSessions).Put(id, data); err != nil {
			return err
		}
		return idx.Put(userKey(sess.User, id), []byte{})
	})
}

// GetSession returns a live session; ErrNotFound if missing or expired.
func (s *Store) GetSession(ctx context.Context, idHash string) (store.Session, error) {
	var out store.Session
	err := s.view(ctx, func(tx *bolt.Tx) error {
		rec, ok, err := getSession(tx, []byte(idHash))
		if err != nil {
			return err
		}
		if !ok || expired(rec.Expiry, s.now()) {
			return store.ErrNotFound
		}
		out = rec.Session
		return nil
	})
	if err != nil {
		return store.Session{}, fmt.Errorf("embedded: get session: %w", err)
	}
	return out, nil
}

// GetSessionTTL is GetSession that also says how long the store keeps
// the session from now (its TTL left), so a cache in front of the store
// never serves it longer.
func (s *Store) GetSessionTTL(ctx context.Context, idHash string) (store.Session, time.Duration, error) {
	var out store.Session
	var ttl time.Duration
	err := s.view(ctx, func(tx *bolt.Tx) error {
		rec, ok, err := getSession(tx, []byte(idHash))
		if err != nil {
			return err
		}
		now := s.now()
		if !ok || expired(rec.Expiry, now) {
			return store.ErrNotFound
		}
		out, ttl = rec.Session, time.Duration(rec.Expiry-now.UnixNano())
		return nil
	})
	if err != nil {
		return store.Session{}, 0, fmt.Errorf("embedded: get session: %w", err)
	}
	return out, ttl, nil
}

// DeleteSession removes a session; a missing one is not an error.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return deleteSession(tx, []byte(idHash))
	})
	if err != nil {
		return fmt.Errorf("embedded: delete session: %w", err)
	}
	return nil
}

// TakeSession reads and deletes a live session in one transaction: of
// concurrent takes of one session exactly one gets it, the others get
// ErrNotFound.
func (s *Store) TakeSession(ctx context.Context, idHash string) (store.Session, error) {
	var out store.Session
	err := s.update(ctx, func(tx *bolt.Tx) error {
		id := []byte(idHash)
		rec, ok, err := getSession(tx, id)
		if err != nil {
			return err
		}
		if !ok || expired(rec.Expiry, s.now()) {
			return store.ErrNotFound // an expired one is left to the sweep
		}
		out = rec.Session
		return deleteSession(tx, id)
	})
	if err != nil {
		return store.Session{}, fmt.Errorf("embedded: take session: %w", err)
	}
	return out, nil
}

// deleteSession removes a session and its index entry.
func deleteSession(tx *bolt.Tx, id []byte) error {
	rec, ok, err := getSession(tx, id)
	if err != nil || !ok {
		return err
	}
	if err := tx.Bucket(bucketUserSessions).Delete(userKey(rec.Session.User, id)); err != nil {
		return err
	}
	return tx.Bucket(bucketSessions).Delete(id)
}

// ListUserSessions returns the user's live sessions, oldest first.
func (s *Store) ListUserSessions(ctx context.Context, user string) ([]store.Session, error) {
	var out []store.Session
	err := s.view(ctx, func(tx *bolt.Tx) error {
		now := s.now()
		prefix := userKey(user, nil)
		c := tx.Bucket(bucketUserSessions).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rec, ok, err := getSession(tx, k[len(prefix):])
			if err != nil {
				return err
			}
			if !ok || rec.Session.User != user || expired(rec.Expiry, now) {
				continue
			}
			out = append(out, rec.Session)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: list sessions of %q: %w", user, err)
	}
	slices.SortFunc(out, func(a, b store.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.IDHash, b.IDHash))
	})
	return out, nil
}

// DeleteUserSessions removes all of the user's sessions and returns how
// many were live.
func (s *Store) DeleteUserSessions(ctx context.Context, user string) (int, error) {
	var n int
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		n, err = deleteUserSessions(tx, user, s.now())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("embedded: delete sessions of %q: %w", user, err)
	}
	return n, nil
}

func deleteUserSessions(tx *bolt.Tx, user string, now time.Time) (int, error) {
	prefix := userKey(user, nil)
	idx := tx.Bucket(bucketUserSessions)
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, slices.Clone(k))
	}
	live := 0
	for _, k := range keys {
		id := k[len(prefix):]
		rec, ok, err := getSession(tx, id)
		if err != nil {
			return 0, err
		}
		if ok && rec.Session.User == user {
			if !expired(rec.Expiry, now) {
				live++
			}
			if err := tx.Bucket(bucketSessions).Delete(id); err != nil {
				return 0, err
			}
		}
		if err := idx.Delete(k); err != nil {
			return 0, err
		}
	}
	return live, nil
}
