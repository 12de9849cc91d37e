package useradmin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// ServiceStore is the part of a store.Store that Service uses.
type ServiceStore interface {
	CreateUser(ctx context.Context, u store.User) error
	UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error)
	DeleteUser(ctx context.Context, name string) error
	ListUsers(ctx context.Context, opts store.ListOptions) ([]store.User, error)
	ListUserSessions(ctx context.Context, user string) ([]store.Session, error)
	DeleteUserSessions(ctx context.Context, user string) (int, error)
}

// listPage is how many users List reads from the store at a time.
const listPage = 500

// Service implements Admin directly over a store.
type Service struct {
	st  ServiceStore
	now func() time.Time
	// pageSize is how many users List reads at a time (tests shrink it).
	pageSize int
}

var _ Admin = (*Service)(nil)

// NewService returns a Service over st; now stamps CreatedAt/UpdatedAt.
func NewService(st ServiceStore, now func() time.Time) *Service {
	return &Service{st: st, now: now, pageSize: listPage}
}

// Add implements Admin.
func (s *Service) Add(ctx context.Context, name, passwordHash, role string, groups []string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := validateRole(role); err != nil {
		return err
	}
	if err := validateHash(passwordHash); err != nil {
		return err
	}
	groups, err := normalizeGroups(groups)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	u := store.User{
		Name:         name,
		PasswordHash: passwordHash,
		Role:         role,
		Groups:       groups,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	if err := s.st.CreateUser(ctx, u); err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	return nil
}

// SetPassword implements Admin. The sessions are revoked after the new
// hash is stored, so a session opened with the old password cannot
// survive the change.
func (s *Service) SetPassword(ctx context.Context, name, passwordHash string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := validateHash(passwordHash); err != nil {
		return err
	}
	now := s.now().UTC()
	_, err := s.st.UpdateUser(ctx, name, func(u *store.User) error {
		u.PasswordHash = passwordHash
		u.MustChangePassword = false
		u.UpdatedAt = now
		return nil
	})
	if err != nil {
		return fmt.Errorf("set password of user %q: %w", name, err)
	}
	if _, err := s.st.DeleteUserSessions(ctx, name); err != nil {
		return fmt.Errorf("password of user %q changed, but revoking their sessions failed (run the command again): %w", name, err)
	}
	return nil
}

// Delete implements Admin. The user goes first, so no new login can start
// while the sessions are being removed.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := s.st.DeleteUser(ctx, name); err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete user %q: %w", name, err)
		}
		// Still sweep sessions left over by an earlier, interrupted delete.
		if _, serr := s.st.DeleteUserSessions(ctx, name); serr != nil {
			return fmt.Errorf("delete user %q: %w", name, errors.Join(err, serr))
		}
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	if _, err := s.st.DeleteUserSessions(ctx, name); err != nil {
		return fmt.Errorf("user %q deleted, but removing their sessions failed: %w", name, err)
	}
	return nil
}

// List implements Admin.
func (s *Service) List(ctx context.Context) ([]UserInfo, error) {
	var out []UserInfo
	after := ""
	for {
		users, err := s.st.ListUsers(ctx, store.ListOptions{After: after, Limit: s.pageSize})
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		for _, u := range users {
			sessions, err := s.st.ListUserSessions(ctx, u.Name)
			if err != nil {
				return nil, fmt.Errorf("list sessions of user %q: %w", u.Name, err)
			}
			out = append(out, UserInfo{
				Name:      u.Name,
				Role:      u.Role,
				Groups:    append([]string(nil), u.Groups...),
				TwoFactor: u.HasTOTP(),
				CreatedAt: u.CreatedAt,
				Sessions:  len(sessions),
			})
		}
		if len(users) < s.pageSize {
			return out, nil
		}
		after = users[len(users)-1].Name
	}
}

// Import implements Admin. On a store error it returns what was done so
// far; running it again is safe since existing users are skipped.
func (s *Service) Import(ctx context.Context, entries []ImportEntry) (ImportResult, error) {
	res := ImportResult{Added: []string{}, Skipped: []string{}}
	if err := validateImport(entries); err != nil {
		return res, err
	}
	now := s.now().UTC()
	for _, e := range entries {
		err := s.st.CreateUser(ctx, store.User{
			Name:         e.Name,
			PasswordHash: e.PasswordHash,
			Role:         store.RoleUser,
			CreatedAt:    now,
			UpdatedAt:    now,
		})
		switch {
		case err == nil:
			res.Added = append(res.Added, e.Name)
		case errors.Is(err, store.ErrExists):
			res.Skipped = append(res.Skipped, e.Name)
		default:
			return res, fmt.Errorf("import user %q: %w", e.Name, err)
		}
	}
	return res, nil
}

// validateImport checks every entry and reports every problem at once.
func validateImport(entries []ImportEntry) error {
	var problems []string
	seen := make(map[string]bool, len(entries))
	for i, e := range entries {
		if err := ValidateName(e.Name); err != nil {
			problems = append(problems, fmt.Sprintf("entry %d: %s", i+1, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")))
			continue
		}
		if seen[e.Name] {
			problems = append(problems, fmt.Sprintf("entry %d: user %q appears more than once", i+1, e.Name))
			continue
		}
		seen[e.Name] = true
		if err := validateBcrypt(e.PasswordHash); err != nil {
			problems = append(problems, fmt.Sprintf("entry %d (user %q): %s", i+1, e.Name, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: nothing imported: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}
