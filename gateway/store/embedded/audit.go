package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/authgate/authgate/gateway/store"
)

var errBadLimit = errors.New("embedded: limit must be positive")

// AppendAudit stores ev under the bucket's next sequence number (so keys
// sort oldest first) and deletes the oldest entries beyond keep.
func (s *Store) AppendAudit(ctx context.Context, ev store.AuditEvent, keep int) error {
	if keep <= 0 {
		return errBadLimit
	}
	ev.Time = utc(ev.Time)
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("embedded: encode audit event: %w", err)
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		key := make([]byte, 8)
		binary.BigEndian.PutUint64(key, seq)
		if err := b.Put(key, data); err != nil {
			return err
		}
		// Trim from the oldest end while over the cap.
		for n := b.Stats().KeyN + 1; n > keep; n-- {
			c := b.Cursor()
			k, _ := c.First()
			if k == nil {
				break
			}
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListAudit returns up to limit events, newest first.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		return nil, errBadLimit
	}
	var out []store.AuditEvent
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var ev store.AuditEvent
			if err := decode(v, &ev); err != nil {
				return err
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
