package useradmin

import (
	"context"
	"fmt"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
)

// Audit implements Admin. limit <= 0 or above audit.Keep means
// audit.Keep (all the store keeps).
func (s *Service) Audit(ctx context.Context, since time.Time, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 || limit > audit.Keep {
		limit = audit.Keep
	}
	read := limit
	if !since.IsZero() {
		read = audit.Keep
	}
	evs, err := s.st.ListAudit(ctx, read)
	if err != nil {
		return nil, fmt.Errorf("read audit events: %w", err)
	}
	out := make([]store.AuditEvent, 0, min(len(evs), limit))
	for _, ev := range evs {
		if len(out) == limit {
			break
		}
		if !since.IsZero() && !ev.Time.After(since) {
			// Not break: instances' clocks may differ slightly, so the
			// list is only roughly in time order.
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}
