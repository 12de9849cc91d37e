package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
)

// ServiceStore is the part of a store.Store that Service uses.
type ServiceStore interface {
	CreateUser(ctx context.Context, u store.User) error
	GetUser(ctx context.Context, name string) (store.User, error)
	UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error)
	DeleteUser(ctx context.Context, name string) error
	ListUsers(ctx context.Context, opts store.ListOptions) ([]store.User, error)
	ListUserSessions(ctx context.Context, user string) ([]store.Session, error)
	DeleteUserSessions(ctx context.Context, user string) (int, error)
	ListAudit(ctx context.Context, trail store.AuditTrail, limit int) ([]store.AuditEvent, error)
	ListBans(ctx context.Context, limit int) ([]store.Ban, error)
	GetBan(ctx context.Context, key string) (store.Ban, error)
	DeleteBan(ctx context.Context, key string) error
	ResetCounter(ctx context.Context, key string) error
}

// SettingsStore is the part of a *settings.Source that Service uses.
type SettingsStore interface {
	Current(ctx context.Context) (settings.Values, error)
	SetMode(ctx context.Context, mode string) error
	SetIssuer(ctx context.Context, issuer string) error
}

// Recorder records audit events (an *audit.Recorder).
type Recorder interface {
	Record(ctx context.Context, ev store.AuditEvent)
}

const (
	// listPage is how many users a scan reads from the store at a time.
	listPage = 500
	// DefaultPageSize and MaxPageSize bound Filter.PageSize.
	DefaultPageSize = 50
	MaxPageSize     = 500
	// sessionIDLen is how many hex characters of a session's IDHash
	// SessionInfo.ID shows.
	sessionIDLen = 12
)

// Filter.Status values.
const (
	StatusEnabled  = "enabled"
	StatusDisabled = "disabled"
)

// Service implements Admin directly over a store. Every change is recorded
// through the Recorder with the actor from the context (audit.WithActor),
// audit.ActorCLI when the context names none.
type Service struct {
	st            ServiceStore
	set           SettingsStore
	rec           Recorder
	defaultIssuer string
	now           func() time.Time
	// pageSize is how many users a scan reads at a time (tests shrink it).
	pageSize int
}

var _ Admin = (*Service)(nil)

// NewService returns a Service over st. set holds the gateway-wide 2FA
// settings, rec receives an audit event for every change, defaultIssuer is
// what an empty Issuer means (shown by Settings), now stamps times.
func NewService(st ServiceStore, set SettingsStore, rec Recorder, defaultIssuer string, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, set: set, rec: rec, defaultIssuer: defaultIssuer, now: now, pageSize: listPage}
}

// record audits a change made by the context's actor (the CLI if none).
func (s *Service) record(ctx context.Context, action, target, detail string) {
	ev := store.AuditEvent{Time: s.now().UTC(), Action: action, Target: target, Detail: detail}
	if name, _ := audit.ActorFrom(ctx); name == "" {
		ev.Actor = audit.ActorCLI
	}
	s.rec.Record(ctx, ev)
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
		AuthEpoch:    firstEpoch(now),
	}
	if err := s.st.CreateUser(ctx, u); err != nil {
		return fmt.Errorf("add user %q: %w", name, err)
	}
	detail := "role=" + role
	if len(groups) > 0 {
		detail += " groups=" + strings.Join(groups, ",")
	}
	s.record(ctx, audit.UserAdded, name, detail)
	return nil
}

// SetPassword implements Admin. The sessions are revoked after the new
// hash is stored, so a session opened with the old password cannot
// survive the change.
func (s *Service) SetPassword(ctx context.Context, name, passwordHash string) error {
	return s.setPassword(ctx, name, passwordHash, false)
}

// ResetPassword implements Admin: like SetPassword, but the user must
// change the (temporary) password at the next login.
func (s *Service) ResetPassword(ctx context.Context, name, passwordHash string) error {
	return s.setPassword(ctx, name, passwordHash, true)
}

func (s *Service) setPassword(ctx context.Context, name, passwordHash string, mustChange bool) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := validateHash(passwordHash); err != nil {
		return err
	}
	what, action := "set password of", audit.PasswordChanged
	if mustChange {
		what, action = "reset password of", audit.PasswordReset
	}
	now := s.now().UTC()
	_, err := s.st.UpdateUser(ctx, name, func(u *store.User) error {
		u.PasswordHash = passwordHash
		u.MustChangePassword = mustChange
		u.UpdatedAt = now
		u.AuthEpoch++ // every session of the user ends (store.User.AuthEpoch)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s user %q: %w", what, name, err)
	}
	n, err := s.st.DeleteUserSessions(ctx, name)
	if err != nil {
		s.record(ctx, action, name, "revoking sessions failed")
		return fmt.Errorf("password of user %q changed, but revoking their sessions failed (run the command again): %w", name, err)
	}
	s.record(ctx, action, name, fmt.Sprintf("%d session(s) revoked", n))
	return nil
}

// Delete implements Admin. The user goes first, so no new login can start
// while the sessions are being removed. Deleting the last admin is
// refused with ErrLastAdmin.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	u, err := s.st.GetUser(ctx, name)
	switch {
	case err == nil:
		if u.Role == store.RoleAdmin {
			if err := s.checkOtherAdmin(ctx, name); err != nil {
				return fmt.Errorf("delete user %q: %w", name, err)
			}
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	// Count the sessions first for the audit: the store may remove them
	// together with the user.
	live, err := s.sessionCount(ctx, name)
	if err != nil {
		return fmt.Errorf("delete user %q: %w", name, err)
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
	n, err := s.st.DeleteUserSessions(ctx, name)
	if err != nil {
		s.record(ctx, audit.UserDeleted, name, "removing sessions failed")
		return fmt.Errorf("user %q deleted, but removing their sessions failed: %w", name, err)
	}
	s.record(ctx, audit.UserDeleted, name, fmt.Sprintf("%d session(s) revoked", max(live, n)))
	return nil
}

// scan calls fn for every user in name order, reading s.pageSize users at
// a time, until fn returns false.
func (s *Service) scan(ctx context.Context, fn func(store.User) bool) error {
	after := ""
	for {
		users, err := s.st.ListUsers(ctx, store.ListOptions{After: after, Limit: s.pageSize})
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		for _, u := range users {
			if !fn(u) {
				return nil
			}
		}
		if len(users) < s.pageSize {
			return nil
		}
		after = users[len(users)-1].Name
	}
}

// Import implements Admin. On a store error it returns what was done so
// far; running it again is safe since existing users are skipped. One
// audit event sums up the import (a big import must not flush the capped
// audit list).
func (s *Service) Import(ctx context.Context, entries []ImportEntry) (ImportResult, error) {
	res := ImportResult{Added: []string{}, Skipped: []string{}}
	if err := validateImport(entries); err != nil {
		return res, err
	}
	now := s.now().UTC()
	var err error
	for _, e := range entries {
		cerr := s.st.CreateUser(ctx, store.User{
			Name:         e.Name,
			PasswordHash: e.PasswordHash,
			Role:         store.RoleUser,
			CreatedAt:    now,
			UpdatedAt:    now,
			AuthEpoch:    firstEpoch(now),
		})
		if cerr == nil {
			res.Added = append(res.Added, e.Name)
			continue
		}
		if errors.Is(cerr, store.ErrExists) {
			res.Skipped = append(res.Skipped, e.Name)
			continue
		}
		err = fmt.Errorf("import user %q: %w", e.Name, cerr)
		break
	}
	if len(res.Added) > 0 || len(res.Skipped) > 0 {
		detail := fmt.Sprintf("added %d", len(res.Added))
		if len(res.Added) > 0 {
			detail += " (" + strings.Join(res.Added, ",") + ")"
		}
		detail += fmt.Sprintf(", skipped %d existing", len(res.Skipped))
		if err != nil {
			detail = "stopped by an error; " + detail
		}
		s.record(ctx, audit.UsersImported, "", detail)
	}
	return res, err
}

// validateImport checks every entry and reports every problem at once.
func validateImport(entries []ImportEntry) error {
	var problems []string
	seen := make(map[string]bool, len(entries))
	for i, e := range entries {
		if err := ValidateName(e.Name); err != nil {
			problems = append(problems, fmt.Sprintf("entry %d: %s", i+1, problem(err)))
			continue
		}
		if seen[e.Name] {
			problems = append(problems, fmt.Sprintf("entry %d: user %q appears more than once", i+1, e.Name))
			continue
		}
		seen[e.Name] = true
		if err := validateBcrypt(e.PasswordHash); err != nil {
			problems = append(problems, fmt.Sprintf("entry %d (user %q): %s", i+1, e.Name, problem(err)))
		}
	}
	if len(problems) > 0 {
		return invalid("entries", "nothing imported: %s", strings.Join(problems, "; "))
	}
	return nil
}

// problem is what an *InvalidError says, or err's message for any other
// error.
func problem(err error) string {
	if ie, ok := errors.AsType[*InvalidError](err); ok {
		return ie.Message
	}
	return err.Error()
}

// firstEpoch is a new account's AuthEpoch: the creation time, so a
// session left over from a deleted account of the same name never
// matches the new one's epoch.
func firstEpoch(now time.Time) int64 { return now.UnixNano() }
