package store

import (
	"context"
	"errors"
	"time"
)

// Ban kinds.
const (
	BanKindUser = "user"
	BanKindIP   = "ip"
)

// MaxBanKeyLen bounds Ban.Key: callers hash or shorten what they ban (a
// user name typed at the login form can be anything).
const MaxBanKeyLen = 128

// ErrBadBan is returned for a ban without a Key or with a Key longer than
// MaxBanKeyLen.
var ErrBadBan = errors.New("store: ban key must be 1 to 128 bytes")

// Ban is one active lock-out after too many failed sign-in attempts, of a
// user name or of a client address. It holds no password or code.
type Ban struct {
	// Key identifies the ban (e.g. "u:<hash of the name>" or
	// "ip:203.0.113.7"); one ban per key.
	Key string `json:"key"`
	// Kind is BanKindUser or BanKindIP.
	Kind string `json:"kind"`
	// Subject is what is banned, as shown to admins: the user name as
	// typed (possibly shortened), or an address or prefix.
	Subject string `json:"subject"`
	// Failures is how many failed attempts started the ban.
	Failures int64 `json:"failures"`
	// Level counts this subject's bans in a row (1 = first); repeat
	// offenders get longer bans.
	Level int       `json:"level"`
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// Bans keeps active bans, shared by every instance. A ban is live until
// the ttl given to PutBan has passed on the backend's clock; Until is
// informational (shown, and used for Retry-After).
type Bans interface {
	// PutBan creates or replaces the ban with b.Key; the backend drops it
	// after ttl (ttl > 0 required). A bad key is ErrBadBan.
	PutBan(ctx context.Context, b Ban, ttl time.Duration) error
	// GetBan returns the live ban with key, ErrNotFound if there is none.
	GetBan(ctx context.Context, key string) (Ban, error)
	// DeleteBan lifts the ban with key; a missing ban is not an error.
	DeleteBan(ctx context.Context, key string) error
	// ListBans returns up to limit live bans (limit > 0), the one that
	// ends last first. Expired and deleted bans are never returned.
	ListBans(ctx context.Context, limit int) ([]Ban, error)
}

// ValidBanKey reports whether key may name a ban.
func ValidBanKey(key string) bool {
	return key != "" && len(key) <= MaxBanKeyLen
}
