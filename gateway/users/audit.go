package users

import (
	"context"
	"fmt"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
)

// AuditView chooses which of the store's audit trails Audit reads.
type AuditView string

// Audit views.
const (
	// AuditChanges (also "") is sign-ins, sign-outs and every change to
	// users, their factors, sessions, bans and settings: what an admin
	// looks for first, never pushed out by a guessing run.
	AuditChanges AuditView = "changes"
	// AuditFailures is failed sign-ins and the bans they started.
	AuditFailures AuditView = "failures"
	// AuditAll is both, merged by time.
	AuditAll AuditView = "all"
)

// trails returns the store trails v reads.
func (v AuditView) trails() ([]store.AuditTrail, error) {
	switch v {
	case "", AuditChanges:
		return []store.AuditTrail{store.AuditChanges}, nil
	case AuditFailures:
		return []store.AuditTrail{store.AuditFailures}, nil
	case AuditAll:
		return []store.AuditTrail{store.AuditChanges, store.AuditFailures}, nil
	}
	return nil, invalid("audit view", "audit view %q (want %s, %s or %s)", v, AuditChanges, AuditFailures, AuditAll)
}

// Audit implements Admin. limit <= 0, or above what the view's trails
// keep (audit.KeepChanges, audit.KeepFailures), means all they keep.
func (s *Service) Audit(ctx context.Context, view AuditView, since time.Time, limit int) ([]store.AuditEvent, error) {
	trails, err := view.trails()
	if err != nil {
		return nil, err
	}
	kept := 0
	for _, tr := range trails {
		kept += audit.KeepOf(tr)
	}
	if limit <= 0 || limit > kept {
		limit = kept
	}
	var merged []store.AuditEvent
	for _, tr := range trails {
		read := min(limit, audit.KeepOf(tr))
		if !since.IsZero() {
			read = audit.KeepOf(tr)
		}
		evs, err := s.st.ListAudit(ctx, tr, read)
		if err != nil {
			return nil, fmt.Errorf("read audit events (%s): %w", tr, err)
		}
		merged = mergeNewestFirst(merged, evs)
	}
	out := make([]store.AuditEvent, 0, min(len(merged), limit))
	for _, ev := range merged {
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

// mergeNewestFirst merges two newest-first lists by time, keeping each
// list's own order (its events are in the order they were stored) and
// taking a's event first on equal times.
func mergeNewestFirst(a, b []store.AuditEvent) []store.AuditEvent {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]store.AuditEvent, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].Time.After(a[0].Time) {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}
