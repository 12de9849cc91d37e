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

func (s *Store) auditKey() string { return s.prefix + ":audit" }

// AppendAudit pushes ev onto a capped list (LPUSH + LTRIM in one
// transaction on a single key, so Cluster is fine).
func (s *Store) AppendAudit(ctx context.Context, ev store.AuditEvent, keep int) error {
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
		p.LPush(ctx, s.auditKey(), data)
		p.LTrim(ctx, s.auditKey(), 0, int64(keep-1))
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstore: append audit event: %w", err)
	}
	return nil
}

// ListAudit returns up to limit events, newest first.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		return nil, errBadLimit
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	raw, err := s.rdb.LRange(ctx, s.auditKey(), 0, int64(limit-1)).Result()
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
