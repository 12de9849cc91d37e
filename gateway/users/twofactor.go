package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
)

// DisableTwoFactor implements Admin. Names are deduplicated; all of them
// are checked before anything changes. The user handle of the passkeys
// (store.User.PasskeyUserID) stays: it names the account, not a key.
func (s *Service) DisableTwoFactor(ctx context.Context, names []string) ([]string, error) {
	names, err := s.existingUsers(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("disable 2FA: %w", err)
	}
	had := []string{}
	now := s.now().UTC()
	for _, name := range names {
		var hadTOTP bool
		var hadKeys int
		_, err := s.st.UpdateUser(ctx, name, func(u *store.User) error {
			hadTOTP, hadKeys = u.HasTOTP(), len(u.Passkeys)
			u.TOTPSecret = nil
			u.TOTPEnrolledAt = time.Time{}
			u.TOTPLastUsedAt = time.Time{}
			u.TOTPDriftSteps, u.DriftSeen = 0, nil
			u.Passkeys = nil
			u.RecoveryCodes = nil
			u.RecoveryCodesAt = time.Time{}
			u.UpdatedAt = now
			u.AuthEpoch++ // every session of the user ends (store.User.AuthEpoch)
			return nil
		})
		if err != nil {
			return had, fmt.Errorf("disable 2FA of user %q: %w", name, err)
		}
		removed := removedFactors(hadTOTP, hadKeys)
		if removed != "" {
			had = append(had, name)
		} else {
			removed = "2FA was not set up"
		}
		n, err := s.st.DeleteUserSessions(ctx, name)
		if err != nil {
			s.record(ctx, audit.TOTPDisabled, name, removed+"; revoking sessions failed")
			return had, fmt.Errorf("2FA of user %q disabled, but revoking their sessions failed (run the command again): %w", name, err)
		}
		s.record(ctx, audit.TOTPDisabled, name, fmt.Sprintf("%s; %d session(s) revoked", removed, n))
	}
	return had, nil
}

// removedFactors says which second factors a disable removed, for the
// audit trail: "authenticator app and 2 passkeys removed"; "" when none.
func removedFactors(totp bool, passkeys int) string {
	var parts []string
	if totp {
		parts = append(parts, "authenticator app")
	}
	switch {
	case passkeys == 1:
		parts = append(parts, "1 passkey")
	case passkeys > 1:
		parts = append(parts, fmt.Sprintf("%d passkeys", passkeys))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, " and ") + " removed"
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
