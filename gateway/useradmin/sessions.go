package useradmin

import (
	"context"
	"fmt"

	"github.com/authgate/authgate/gateway/audit"
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
	if _, err := s.st.GetUser(ctx, name); err != nil {
		return 0, fmt.Errorf("revoke sessions of user %q: %w", name, err)
	}
	n, err := s.st.DeleteUserSessions(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions of user %q: %w", name, err)
	}
	s.record(ctx, audit.SessionsRevoked, name, fmt.Sprintf("%d session(s) revoked", n))
	return n, nil
}
