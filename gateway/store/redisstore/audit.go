package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store"
)

var errBadLimit = errors.New("redisstore: limit must be positive")

// auditKey is the list of one trail. The changes trail keeps the key of
// the one list there was before failures got their own.
func (s *Store) auditKey(trail store.AuditTrail) (string, error) {
	switch trail {
	case store.AuditChanges:
		return s.prefix + ":audit", nil
	case store.AuditFailures:
		return s.prefix + ":audit:failures", nil
	}
	return "", fmt.Errorf("redisstore: %w %q", store.ErrBadAuditTrail, trail)
}

// AppendAudit pushes ev onto the trail's capped list (LPUSH + LTRIM in
// one transaction on a single key, so Cluster is fine).
func (s *Store) AppendAudit(ctx context.Context, trail store.AuditTrail, ev store.AuditEvent, keep int) error {
	key, err := s.auditKey(trail)
	if err != nil {
		return err
	}
	if keep <= 0 {
		return errBadLimit
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ev.Time = ev.Time.UTC()
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("redisstore: encode audit event: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, data)
		p.LTrim(ctx, key, 0, int64(keep-1))
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: append audit event: %w", err)
	}
	return nil
}

// ListAudit returns up to limit events of trail, newest first.
func (s *Store) ListAudit(ctx context.Context, trail store.AuditTrail, limit int) ([]store.AuditEvent, error) {
	key, err := s.auditKey(trail)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, errBadLimit
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw, err := s.rdb.LRange(ctx, key, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list audit events: %w", err)
	}
	out := make([]store.AuditEvent, 0, len(raw))
	for _, r := range raw {
		var ev store.AuditEvent
		if err := json.Unmarshal([]byte(r), &ev); err != nil {
			return nil, fmt.Errorf("redisstore: decode audit event: %w", err)
		}
		out = append(out, ev)
	}
	return out, nil
}
