package embedded

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/gateway/store"
)

// banRecord is a ban with its end of life on the store's clock (the field
// name the sweeper reads).
type banRecord struct {
	Ban    store.Ban `json:"ban"`
	Expiry int64     `json:"expiry_unix_nano"`
}

// PutBan stores b under b.Key until ttl has passed.
func (s *Store) PutBan(ctx context.Context, b store.Ban, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("embedded: put ban: %w", errBadTTL)
	}
	if !store.ValidBanKey(b.Key) {
		return fmt.Errorf("embedded: put ban: %w", store.ErrBadBan)
	}
	b.Since, b.Until = utc(b.Since), utc(b.Until)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		data, err := json.Marshal(banRecord{Ban: b, Expiry: deadline(s.now(), ttl)})
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		return tx.Bucket(bucketBans).Put([]byte(b.Key), data)
	})
	if err != nil {
		return fmt.Errorf("embedded: put ban %q: %w", b.Key, err)
	}
	return nil
}

// GetBan returns the live ban with key; store.ErrNotFound if none.
func (s *Store) GetBan(ctx context.Context, key string) (store.Ban, error) {
	var b store.Ban
	err := s.view(ctx, func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketBans).Get([]byte(key))
		if data == nil {
			return store.ErrNotFound
		}
		var rec banRecord
		if err := decode(data, &rec); err != nil {
			return err
		}
		if expired(rec.Expiry, s.now()) {
			return store.ErrNotFound
		}
		b = rec.Ban
		return nil
	})
	if err != nil {
		return store.Ban{}, fmt.Errorf("embedded: get ban %q: %w", key, err)
	}
	return b, nil
}

// DeleteBan removes the ban with key; a missing ban is not an error.
func (s *Store) DeleteBan(ctx context.Context, key string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBans).Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("embedded: delete ban %q: %w", key, err)
	}
	return nil
}

// ListBans returns up to limit live bans, the one ending last first.
func (s *Store) ListBans(ctx context.Context, limit int) ([]store.Ban, error) {
	if limit <= 0 {
		return nil, errBadLimit
	}
	var recs []banRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		now := s.now()
		return tx.Bucket(bucketBans).ForEach(func(_, v []byte) error {
			var rec banRecord
			if err := decode(v, &rec); err != nil {
				return err
			}
			if !expired(rec.Expiry, now) {
				recs = append(recs, rec)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: list bans: %w", err)
	}
	slices.SortFunc(recs, func(a, b banRecord) int {
		return cmp.Or(cmp.Compare(b.Expiry, a.Expiry), cmp.Compare(a.Ban.Key, b.Ban.Key))
	})
	out := make([]store.Ban, 0, min(limit, len(recs)))
	for _, r := range recs[:min(limit, len(recs))] {
		out = append(out, r.Ban)
	}
	return out, nil
}
