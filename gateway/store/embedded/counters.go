package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/gateway/store"
)

func getExpiring(b *bolt.Bucket, key []byte, now time.Time) (rec expiringRecord, live bool, err error) {
	data := b.Get(key)
	if data == nil {
		return expiringRecord{}, false, nil
	}
	if err := decode(data, &rec); err != nil {
		return expiringRecord{}, false, err
	}
	if expired(rec.Expiry, now) {
		return expiringRecord{}, false, nil
	}
	return rec, true, nil
}

func putExpiring(b *bolt.Bucket, key []byte, rec expiringRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return b.Put(key, data)
}

func stepKey(user string, step int64) []byte {
	return userKey(user, binary.BigEndian.AppendUint64(nil, uint64(step)))
}

// UseStep marks (user, step) used for ttl; false means it already was.
func (s *Store) UseStep(ctx context.Context, user string, step int64, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("embedded: use step: %w", errBadTTL)
	}
	marked := false
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSteps)
		key := stepKey(user, step)
		now := s.now()
		_, used, err := getExpiring(b, key, now)
		if err != nil || used {
			return err
		}
		marked = true
		return putExpiring(b, key, expiringRecord{Expiry: deadline(now, ttl)})
	})
	if err != nil {
		return false, fmt.Errorf("embedded: use step: %w", err)
	}
	return marked, nil
}

// Incr adds delta to key; a new (or expired) counter lives for window
// from this call, and later increments keep that expiry.
func (s *Store) Incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, error) {
	if window <= 0 {
		return 0, fmt.Errorf("embedded: incr %q: %w", key, errBadTTL)
	}
	var v int64
	err := s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		now := s.now()
		rec, live, err := getExpiring(b, []byte(key), now)
		if err != nil {
			return err
		}
		if !live {
			rec = expiringRecord{Expiry: deadline(now, window)}
		}
		rec.Value += delta
		v = rec.Value
		return putExpiring(b, []byte(key), rec)
	})
	if err != nil {
		return 0, fmt.Errorf("embedded: incr %q: %w", key, err)
	}
	return v, nil
}

// Counter returns key's value, 0 if missing or expired.
func (s *Store) Counter(ctx context.Context, key string) (int64, error) {
	var v int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		rec, _, err := getExpiring(tx.Bucket(bucketCounters), []byte(key), s.now())
		v = rec.Value
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("embedded: counter %q: %w", key, err)
	}
	return v, nil
}

// ResetCounter deletes key; a missing counter is not an error.
func (s *Store) ResetCounter(ctx context.Context, key string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCounters).Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("embedded: reset counter %q: %w", key, err)
	}
	return nil
}

// GetSetting returns a setting; ErrNotFound if never set.
func (s *Store) GetSetting(ctx context.Context, key string) (string, error) {
	var v string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketSettings).Get([]byte(key))
		if data == nil {
			return store.ErrNotFound
		}
		return decode(data, &v)
	})
	if err != nil {
		return "", fmt.Errorf("embedded: get setting %q: %w", key, err)
	}
	return v, nil
}

// SetSetting stores a setting.
func (s *Store) SetSetting(ctx context.Context, key, value string) error {
	data, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("embedded: set setting %q: %w", key, err)
	}
	err = s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSettings).Put([]byte(key), data)
	})
	if err != nil {
		return fmt.Errorf("embedded: set setting %q: %w", key, err)
	}
	return nil
}
