package users

import (
	"context"
	"errors"
	"fmt"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
)

// SetRole implements Admin. Demoting the last admin is refused; two
// concurrent demotions that would together leave no admin are both undone.
// A changed role ends the user's sessions at once, so no session keeps
// privileges granted under the old role.
func (s *Service) SetRole(ctx context.Context, name, role string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := validateRole(role); err != nil {
		return err
	}
	u, err := s.st.GetUser(ctx, name)
	if err != nil {
		return fmt.Errorf("set role of user %q: %w", name, err)
	}
	if u.Role == role {
		return nil
	}
	demote := u.Role == store.RoleAdmin
	if demote {
		if err := s.checkOtherAdmin(ctx, name); err != nil {
			return fmt.Errorf("set role of user %q: %w", name, err)
		}
	}
	old := u.Role
	if err := s.writeRole(ctx, name, role); err != nil {
		return err
	}
	if demote {
		// Another demotion may have raced with this one: if no admin is
		// left now, restore this one and refuse.
		ok, err := s.adminExists(ctx, "")
		if err == nil && !ok {
			err = fmt.Errorf("%w: another admin was demoted at the same time", ErrLastAdmin)
		}
		if err != nil {
			if rerr := s.writeRole(ctx, name, old); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return fmt.Errorf("set role of user %q: %w", name, err)
		}
	}
	n, err := s.st.DeleteUserSessions(ctx, name)
	if err != nil {
		s.record(ctx, audit.RoleChanged, name, fmt.Sprintf("role=%s (was %s); revoking sessions failed", role, old))
		return fmt.Errorf("role of user %q changed, but revoking their sessions failed (run `authgate sessions revoke %s`): %w", name, name, err)
	}
	s.record(ctx, audit.RoleChanged, name, fmt.Sprintf("role=%s (was %s), %d session(s) revoked", role, old, n))
	return nil
}

func (s *Service) writeRole(ctx context.Context, name, role string) error {
	now := s.now().UTC()
	_, err := s.st.UpdateUser(ctx, name, func(u *store.User) error {
		u.Role = role
		u.UpdatedAt = now
		u.AuthEpoch++ // every session of the user ends (store.User.AuthEpoch)
		return nil
	})
	if err != nil {
		return fmt.Errorf("set role of user %q: %w", name, err)
	}
	return nil
}

// checkOtherAdmin returns ErrLastAdmin unless an admin other than name
// exists.
func (s *Service) checkOtherAdmin(ctx context.Context, name string) error {
	ok, err := s.adminExists(ctx, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %q is the only admin", ErrLastAdmin, name)
	}
	return nil
}

// adminExists reports whether a user other than except has the admin
// role (except "" counts every user).
func (s *Service) adminExists(ctx context.Context, except string) (bool, error) {
	found := false
	err := s.scan(ctx, func(u store.User) bool {
		if u.Role == store.RoleAdmin && u.Name != except {
			found = true
			return false
		}
		return true
	})
	return found, err
}
