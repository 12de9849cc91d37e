package users

import (
	"context"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/gateway/store"
)

// Admin is the set of user-management operations. Service implements it
// over a store, gateway/control's Client over a running server's control
// socket, with the same errors (see the package comment).
type Admin interface {
	// Add creates a user with the given password hash (argon2id PHC or
	// bcrypt), role (store.RoleAdmin or store.RoleUser) and groups.
	Add(ctx context.Context, name, passwordHash, role string, groups []string) error
	// SetPassword replaces the password hash, clears MustChangePassword and
	// revokes all of the user's sessions.
	SetPassword(ctx context.Context, name, passwordHash string) error
	// Delete removes the user and their sessions; store.ErrNotFound if the
	// user does not exist.
	Delete(ctx context.Context, name string) error
	// List returns every user in name order.
	List(ctx context.Context) ([]UserInfo, error)
	// Import adds users with the given bcrypt hashes and role user.
	// Existing users are skipped and reported, never overwritten. Entries
	// are all validated first: if any is invalid nothing is added.
	Import(ctx context.Context, entries []ImportEntry) (ImportResult, error)

	// Page lists users matching f, a page at a time, with their 2FA state
	// and live session counts (counted for the returned rows only, so a
	// page stays cheap with 10,000 users).
	Page(ctx context.Context, f Filter) (UserPage, error)
	// DisableTwoFactor removes each user's second factors (the
	// authenticator app's TOTP secret and every passkey and security
	// key) and recovery codes, and revokes all their sessions. Every name
	// is checked first: an unknown name changes nothing
	// (store.ErrNotFound). It returns the names that had any second
	// factor.
	DisableTwoFactor(ctx context.Context, names []string) ([]string, error)
	// ResetPassword sets a new (temporary) password hash, marks it to be
	// changed at next login and revokes the user's sessions.
	ResetPassword(ctx context.Context, name, passwordHash string) error
	// SetRole changes the role; demoting the last admin is refused
	// (ErrLastAdmin), and so is deleting it.
	SetRole(ctx context.Context, name, role string) error
	// Sessions lists the user's live sessions, oldest first.
	Sessions(ctx context.Context, name string) ([]SessionInfo, error)
	// RevokeSessions ends all of the user's sessions and returns how many.
	RevokeSessions(ctx context.Context, name string) (int, error)
	// Settings returns the gateway-wide 2FA settings.
	Settings(ctx context.Context) (SettingsInfo, error)
	// SetMode sets the 2FA mode (off, on, required) for every instance.
	SetMode(ctx context.Context, mode string) error
	// SetIssuer sets the Issuer for new enrolments ("" = the default).
	SetIssuer(ctx context.Context, issuer string) error
	// Audit returns up to limit events of view (AuditChanges when "")
	// newer than since (zero = all), newest first.
	Audit(ctx context.Context, view AuditView, since time.Time, limit int) ([]store.AuditEvent, error)
	// Bans lists the active sign-in bans (user names and client
	// addresses), the one ending last first, at most MaxBansListed.
	Bans(ctx context.Context) ([]BanInfo, error)
	// LiftBan lifts the bans target means (a user name, an IP address or
	// IPv6 /64, or a BanInfo.Key) and clears their failure counts. It
	// returns the lifted bans; none is store.ErrNotFound.
	LiftBan(ctx context.Context, target string) ([]BanInfo, error)
}

// Filter selects users for Page.
type Filter struct {
	// Query matches names containing it (case-insensitive).
	Query string `json:"query,omitempty"`
	// Status is "", "enabled" (any second factor set up: an
	// authenticator app or a passkey) or "disabled" (none).
	Status string `json:"status,omitempty"`
	// Page is 1-based; PageSize defaults to 50 (max 500).
	Page     int `json:"page,omitempty"`
	PageSize int `json:"page_size,omitempty"`
}

// UserPage is one page of users.
type UserPage struct {
	Users []UserInfo `json:"users"`
	// Total is the number of users matching the filter.
	Total    int `json:"total"`
	Page     int `json:"page"`
	PageSize int `json:"page_size"`
}

// SessionInfo describes a live session without its id: ID is a short
// prefix of the stored SHA-256, enough to pick one to revoke.
type SessionInfo struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	IP         string    `json:"ip,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	TwoFactor  bool      `json:"two_factor"`
}

// SettingsInfo is the gateway-wide 2FA settings.
type SettingsInfo struct {
	Mode string `json:"mode"`
	// ModeSource says where Mode comes from (ModeFromSettings or
	// ModeFromFile).
	ModeSource string `json:"mode_source"`
	// Issuer as set ("" = default); DefaultIssuer is what "" means.
	Issuer        string `json:"issuer"`
	DefaultIssuer string `json:"default_issuer"`
}

// UserInfo is what List shows of a user. It carries no secrets.
type UserInfo struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Groups []string `json:"groups,omitempty"`
	// TwoFactor: the user has a second factor, an authenticator app or
	// at least one passkey (store.User.HasSecondFactor); TOTP and
	// Passkeys say which.
	TwoFactor bool `json:"two_factor"`
	// TOTP: an authenticator app is set up.
	TOTP bool `json:"totp,omitempty"`
	// Passkeys are the user's passkeys and security keys, in the order
	// they were registered.
	Passkeys  []PasskeyInfo `json:"passkeys,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	// Sessions is the number of live sessions.
	Sessions       int       `json:"sessions"`
	TOTPEnrolledAt time.Time `json:"totp_enrolled_at,omitzero"`
	TOTPLastUsedAt time.Time `json:"totp_last_used_at,omitzero"`
	// RecoveryLeft is the number of unused recovery codes.
	RecoveryLeft       int  `json:"recovery_left"`
	MustChangePassword bool `json:"must_change_password,omitempty"`
	// DriftSteps is the clock correction applied to the user's codes (in
	// steps; positive: the phone is ahead); DriftSeen the offsets of the
	// user's last refused codes that matched at a clock offset.
	DriftSteps int                      `json:"drift_steps,omitempty"`
	DriftSeen  []store.DriftObservation `json:"drift_seen,omitempty"`
}

// PasskeyInfo is what UserInfo shows of one passkey or security key:
// never its credential id or public key.
type PasskeyInfo struct {
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// Discoverable: a passkey (usable without a user name); else a
	// security key that only serves as a second factor.
	Discoverable bool `json:"discoverable,omitempty"`
}

// ImportEntry is one user to import, e.g. one line of an htpasswd file.
type ImportEntry struct {
	Name string `json:"name"`
	// PasswordHash must be a bcrypt hash ($2a$, $2b$ or $2y$).
	PasswordHash string `json:"password_hash"`
}

// ImportResult reports what Import did, names in input order.
type ImportResult struct {
	Added []string `json:"added"`
	// Skipped users already existed and were left untouched.
	Skipped []string `json:"skipped"`
}

const maxNameLen = 64

// ValidateName checks a user or group name: 1–64 characters of
// [A-Za-z0-9._@-], not starting with '.' or '-'.
func ValidateName(name string) error {
	return validateIdent("user name", name)
}

func validateIdent(what, s string) error {
	const rule = "must be 1-64 characters of A-Z a-z 0-9 . _ @ -, not starting with . or -"
	if s == "" || len(s) > maxNameLen {
		return invalid(what, "%s %q: %s", what, s, rule)
	}
	if s[0] == '.' || s[0] == '-' {
		return invalid(what, "%s %q: %s", what, s, rule)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '@' || c == '-'
		if !ok {
			return invalid(what, "%s %q: %s", what, s, rule)
		}
	}
	return nil
}

func validateRole(role string) error {
	if role != store.RoleAdmin && role != store.RoleUser {
		return invalid("role", "role %q: must be %q or %q", role, store.RoleAdmin, store.RoleUser)
	}
	return nil
}

// normalizeGroups validates groups and drops duplicates, keeping order.
func normalizeGroups(groups []string) ([]string, error) {
	var out []string
	seen := make(map[string]bool, len(groups))
	for _, g := range groups {
		if err := validateIdent("group", g); err != nil {
			return nil, err
		}
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out, nil
}

// validateHash accepts an argon2id PHC string or a bcrypt hash. It exists
// so that a plaintext password passed by mistake is never stored.
func validateHash(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		// $argon2id$v=19$m=...,t=...,p=...$salt$hash
		parts := strings.Split(hash, "$")
		if len(parts) != 6 || strings.ContainsAny(hash, " \t\r\n") {
			return invalid("password hash", "password hash is not a valid argon2id PHC string")
		}
		for _, p := range parts[2:] {
			if p == "" {
				return invalid("password hash", "password hash is not a valid argon2id PHC string")
			}
		}
		return nil
	case isBcrypt(hash):
		return validateBcrypt(hash)
	default:
		return invalid("password hash", "password hash must be argon2id ($argon2id$...) or bcrypt ($2a$, $2b$, $2y$...)")
	}
}

func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

// validateBcrypt accepts only a well-formed bcrypt hash (what htpasswd -B
// writes).
func validateBcrypt(hash string) error {
	if !isBcrypt(hash) {
		return invalid("password hash", "password hash must be bcrypt ($2a$, $2b$, $2y$...)")
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil || len(hash) != 60 {
		return invalid("password hash", "password hash is not a valid bcrypt hash")
	}
	return nil
}
