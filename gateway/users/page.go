package users

import (
	"context"
	"fmt"
	"strings"

	"github.com/authgate/authgate/gateway/store"
)

// info describes u without secrets.
func info(u store.User, sessions int) UserInfo {
	return UserInfo{
		Name:               u.Name,
		Role:               u.Role,
		Groups:             append([]string(nil), u.Groups...),
		TwoFactor:          u.HasSecondFactor(),
		TOTP:               u.HasTOTP(),
		Passkeys:           passkeyInfos(u.Passkeys),
		CreatedAt:          u.CreatedAt,
		Sessions:           sessions,
		TOTPEnrolledAt:     u.TOTPEnrolledAt,
		TOTPLastUsedAt:     u.TOTPLastUsedAt,
		RecoveryLeft:       len(u.RecoveryCodes),
		MustChangePassword: u.MustChangePassword,
		DriftSteps:         u.TOTPDriftSteps,
		DriftSeen:          append([]store.DriftObservation(nil), u.DriftSeen...),
	}
}

// passkeyInfos describes the passkeys without their ids and keys (nil
// when there are none).
func passkeyInfos(ps []store.Passkey) []PasskeyInfo {
	if len(ps) == 0 {
		return nil
	}
	out := make([]PasskeyInfo, len(ps))
	for i, p := range ps {
		out[i] = PasskeyInfo{Name: p.Name, CreatedAt: p.CreatedAt, LastUsedAt: p.LastUsedAt, Discoverable: p.Discoverable}
	}
	return out
}

// List implements Admin.
func (s *Service) List(ctx context.Context) ([]UserInfo, error) {
	var users []store.User
	if err := s.scan(ctx, func(u store.User) bool { users = append(users, u); return true }); err != nil {
		return nil, err
	}
	out := make([]UserInfo, 0, len(users))
	for _, u := range users {
		n, err := s.sessionCount(ctx, u.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, info(u, n))
	}
	return out, nil
}

func (s *Service) sessionCount(ctx context.Context, name string) (int, error) {
	ss, err := s.st.ListUserSessions(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("list sessions of user %q: %w", name, err)
	}
	return len(ss), nil
}

// Page implements Admin. It scans the users in batches, keeping only the
// requested page; sessions are counted for the returned rows only. A page
// past the end is empty (Total still counts every match).
func (s *Service) Page(ctx context.Context, f Filter) (UserPage, error) {
	f, err := normalizeFilter(f)
	if err != nil {
		return UserPage{}, err
	}
	q := strings.ToLower(f.Query)
	first := (f.Page - 1) * f.PageSize
	page := UserPage{Users: []UserInfo{}, Page: f.Page, PageSize: f.PageSize}
	var rows []store.User
	err = s.scan(ctx, func(u store.User) bool {
		if q != "" && !strings.Contains(strings.ToLower(u.Name), q) {
			return true
		}
		switch f.Status {
		case StatusEnabled:
			if !u.HasSecondFactor() {
				return true
			}
		case StatusDisabled:
			if u.HasSecondFactor() {
				return true
			}
		}
		if page.Total >= first && len(rows) < f.PageSize {
			rows = append(rows, u)
		}
		page.Total++
		return true
	})
	if err != nil {
		return UserPage{}, err
	}
	for _, u := range rows {
		n, err := s.sessionCount(ctx, u.Name)
		if err != nil {
			return UserPage{}, err
		}
		page.Users = append(page.Users, info(u, n))
	}
	return page, nil
}

// normalizeFilter applies the defaults and checks the status.
func normalizeFilter(f Filter) (Filter, error) {
	f.Query = strings.TrimSpace(f.Query)
	switch f.Status {
	case "", StatusEnabled, StatusDisabled:
	default:
		return f, invalid("status", "status %q: must be %q, %q or empty", f.Status, StatusEnabled, StatusDisabled)
	}
	if f.Page < 1 {
		f.Page = 1
	}
	if f.PageSize <= 0 {
		f.PageSize = DefaultPageSize
	}
	f.PageSize = min(f.PageSize, MaxPageSize)
	// Keep (Page-1)*PageSize far from overflowing on absurd input.
	f.Page = min(f.Page, 1<<20)
	return f, nil
}
