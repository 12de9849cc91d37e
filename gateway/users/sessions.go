package users

import (
	"context"
	"fmt"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
)

// Sessions implements Admin.
func (s *Service) Sessions(ctx context.Context, name string) ([]SessionInfo, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if _, err := s.st.GetUser(ctx, name); err != nil {
		return nil, fmt.Errorf("sessions of user %q: %w", name, err)
	}
	ss, err := s.st.ListUserSessions(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("sessions of user %q: %w", name, err)
	}
	out := make([]SessionInfo, 0, len(ss))
	for _, se := range ss {
		out = append(out, SessionInfo{
			ID:         shortID(se.IDHash),
			CreatedAt:  se.CreatedAt,
			LastSeenAt: se.LastSeenAt,
			IP:         se.IP,
			UserAgent:  se.UserAgent,
			TwoFactor:  se.TwoFactor,
		})
	}
	return out, nil
}

// shortID is the SessionInfo.ID of a session.
func shortID(idHash string) string {
	if len(idHash) > sessionIDLen {
		return idHash[:sessionIDLen]
	}
	return idHash
}

// RevokeSessions implements Admin.
func (s *Service) RevokeSessions(ctx context.Context, name string) (int, error) {
	if err := ValidateName(name); err != nil {
		return 0, err
	}
	// Counted first (a request holding one may end it the moment the
	// epoch moves); then the epoch: from that moment no session of the
	// user is valid on any instance, whatever a request holding one does
	// next; then the records go.
	live, err := s.st.ListUserSessions(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %q: %w", name, err)
	}
	if _, err := s.st.UpdateUser(ctx, name, func(u *store.User) error {
		u.AuthEpoch++
		return nil
	}); err != nil {
		return 0, fmt.Errorf("revoke sessions of user %q: %w", name, err)
	}
	deleted, err := s.st.DeleteUserSessions(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %q: %w", name, err)
	}
	n := max(len(live), deleted)
	s.record(ctx, audit.SessionsRevoked, name, fmt.Sprintf("%d session(s) revoked", n))
	return n, nil
}
