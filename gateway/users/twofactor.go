package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
)

// DisableTwoFactor implements Admin. Names are deduplicated; all of them
// are checked before anything changes.
func (s *Service) DisableTwoFactor(ctx context.Context, names []string) ([]string, error) {
	names, err := s.existingUsers(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("disable 2FA: %w", err)
	}
	had := []string{}
	now := s.now().UTC()
	for _, name := range names {
		var hadTOTP bool
		_, err := s.st.UpdateUser(ctx, name, func(u *store.User) error {
			hadTOTP = u.HasTOTP()
			u.TOTPSecret = nil
			u.TOTPEnrolledAt = time.Time{}
			u.TOTPLastUsedAt = time.Time{}
			u.TOTPDriftSteps, u.DriftSeen = 0, nil
			u.RecoveryCodes = nil
			u.RecoveryCodesAt = time.Time{}
			u.UpdatedAt = now
			u.AuthEpoch++ // every session of the user ends (store.User.AuthEpoch)
			return nil
		})
		if err != nil {
			return had, fmt.Errorf("disable 2FA of user %q: %w", name, err)
		}
		if hadTOTP {
			had = append(had, name)
		}
		n, err := s.st.DeleteUserSessions(ctx, name)
		if err != nil {
			s.record(ctx, audit.TOTPDisabled, name, "revoking sessions failed")
			return had, fmt.Errorf("2FA of user %q disabled, but revoking their sessions failed (run the command again): %w", name, err)
		}
		detail := fmt.Sprintf("%d session(s) revoked", n)
		if !hadTOTP {
			detail = "2FA was not set up; " + detail
		}
		s.record(ctx, audit.TOTPDisabled, name, detail)
	}
	return had, nil
}

// existingUsers validates and deduplicates names (keeping order) and
// checks that every one exists, naming all that do not.
func (s *Service) existingUsers(ctx context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, invalid("user names", "no user names given")
	}
	var out []string
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if err := ValidateName(name); err != nil {
			return nil, err
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, name)
	}
	var missing UnknownUsersError
	for _, name := range out {
		_, err := s.st.GetUser(ctx, name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			missing.Names = append(missing.Names, name)
		case err != nil:
			return nil, fmt.Errorf("read user %q: %w", name, err)
		}
	}
	if len(missing.Names) > 0 {
		return nil, &missing
	}
	return out, nil
}
