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

// auditBucket is the bucket of one trail.
func auditBucket(trail store.AuditTrail) ([]byte, error) {
	switch trail {
	case store.AuditChanges:
		return bucketAudit, nil
	case store.AuditFailures:
		return bucketAuditFailed, nil
	}
	return nil, fmt.Errorf("embedded: %w %q", store.ErrBadAuditTrail, trail)
}

// AppendAudit stores ev in the trail's bucket under its next sequence
// number (so keys sort oldest first) and deletes the entries more than
// keep sequence numbers old.
func (s *Store) AppendAudit(ctx context.Context, trail store.AuditTrail, ev store.AuditEvent, keep int) error {
	name, err := auditBucket(trail)
	if err != nil {
		return err
	}
	if keep <= 0 {
		return errBadLimit
	}
	ev.Time = utc(ev.Time)
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("embedded: encode audit event: %w", err)
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		key := make([]byte, 8)
		binary.BigEndian.PutUint64(key, seq)
		if err := b.Put(key, data); err != nil {
			return err
		}
		// Trim from the oldest end: keys are sequence numbers, so the
		// newest keep are those above seq-keep. This touches only the
		// entries it deletes (usually one), not the whole bucket.
		c := b.Cursor()
		for k, _ := c.First(); k != nil && len(k) == 8 && binary.BigEndian.Uint64(k)+uint64(keep) <= seq; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListAudit returns up to limit events of trail, newest first.
func (s *Store) ListAudit(ctx context.Context, trail store.AuditTrail, limit int) ([]store.AuditEvent, error) {
	name, err := auditBucket(trail)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, errBadLimit
	}
	var out []store.AuditEvent
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(name).Cursor()
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
