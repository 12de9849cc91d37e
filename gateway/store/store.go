// Package store declares the storage contract every authgate backend
// fulfils: users, sessions, used TOTP steps, counters and settings.
//
// The contract (checked by storetest.Run against every backend):
//   - Get* of a missing item returns an error matching ErrNotFound.
//   - Create* of an existing item returns an error matching ErrExists.
//   - Deleting a missing item is not an error, except DeleteUser which
//     returns ErrNotFound so the CLI can tell the admin.
//   - Values returned are copies: mutating them never changes the store.
//   - Every method honours ctx cancellation where the backend can.
//   - Times are stored with at least millisecond precision, in UTC.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// Named errors; backends wrap them with %w.
var (
	ErrNotFound = errors.New("store: not found")
	ErrExists   = errors.New("store: already exists")
	// ErrConflict is returned by UpdateUser when concurrent writers kept
	// the update from committing after the backend's retries.
	ErrConflict = errors.New("store: concurrent update conflict")
)

// Roles a user can have.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// User is one account. Name is the primary key (case-sensitive, already
// validated by the caller).
type User struct {
	Name string `json:"name"`
	// PasswordHash is a PHC string ($argon2id$...) or a bcrypt hash ($2y$...).
	PasswordHash string   `json:"password_hash"`
	Role         string   `json:"role"`
	Groups       []string `json:"groups,omitempty"`
	// TOTPSecret is the sealed (encrypted) TOTP secret; empty means the user
	// has no second factor set up.
	TOTPSecret     []byte    `json:"totp_secret,omitempty"`
	TOTPEnrolledAt time.Time `json:"totp_enrolled_at,omitzero"`
	TOTPLastUsedAt time.Time `json:"totp_last_used_at,omitzero"`
	// RecoveryCodes holds the keyed hashes (see gateway/factor) of the
	// user's unused recovery codes; a used code is removed.
	RecoveryCodes   []string  `json:"recovery_codes,omitempty"`
	RecoveryCodesAt time.Time `json:"recovery_codes_at,omitzero"`
	// MustChangePassword is set when an admin resets the password.
	MustChangePassword bool `json:"must_change_password,omitempty"`
	// AuthEpoch counts the changes to how this account signs in and who
	// may act for it: password, authenticator set up / reconfigured /
	// removed, 2FA disabled by an admin, role, all sessions revoked. A
	// session remembers the epoch it was created under and is void under
	// any other (see gateway/session): bumping the epoch in the same
	// atomic update as the change ends every other session at once, on
	// every instance, whatever they are doing.
	AuthEpoch int64 `json:"auth_epoch,omitempty"`
	// TOTPDriftSteps is the clock offset of the user's authenticator, in
	// time steps (positive: the device is ahead of the server), applied to
	// every code check of this user (RFC 6238 §6): set by a resync, nudged
	// by accepted codes one step off-centre.
	TOTPDriftSteps int `json:"totp_drift_steps,omitempty"`
	// DriftSeen holds the last MaxDriftSeen failed codes that matched the
	// user's secret outside the accepted window (oldest first): evidence
	// of a clock offset, never a reason to accept a code.
	DriftSeen []DriftObservation `json:"drift_seen,omitempty"`
	// PasskeyUserID is the user handle the account's passkeys and
	// security keys were registered with (WebAuthn's user.id): random,
	// set at the first registration and kept for the life of the
	// account, so a passkey saved on a device keeps naming this account.
	PasskeyUserID []byte `json:"passkey_user_id,omitempty"`
	// Passkeys are the account's registered passkeys and security keys
	// (WebAuthn credentials), each a second factor.
	Passkeys  []Passkey `json:"passkeys,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Passkey is one registered WebAuthn credential: a passkey (a
// discoverable credential, often synced between a user's devices) or a
// security key. Nothing in it is secret: the private key never leaves
// the authenticator.
type Passkey struct {
	// ID is the credential id the authenticator chose (at most 1023
	// bytes); unique among the account's passkeys.
	ID []byte `json:"id"`
	// Name is the user's label for it ("YubiKey 5", "Laptop").
	Name string `json:"name"`
	// PublicKey is the COSE-encoded public key.
	PublicKey []byte `json:"public_key"`
	// AttestationType is the attestation the registration carried
	// ("none", "self", "basic"...).
	AttestationType string `json:"attestation_type,omitempty"`
	// Transports are the authenticator's transports as reported at
	// registration ("usb", "internal", "hybrid"...), offered back to the
	// browser on sign-in.
	Transports []string `json:"transports,omitempty"`
	// AAGUID identifies the authenticator model (all zero when it does
	// not say).
	AAGUID []byte `json:"aaguid,omitempty"`
	// SignCount is the signature counter of the last accepted use. An
	// authenticator that counts must count up: an assertion whose
	// counter is not above this one is refused (a cloned key).
	SignCount uint32 `json:"sign_count,omitempty"`
	// Discoverable: the credential is a passkey (resident key), usable
	// for passwordless sign-in.
	Discoverable bool `json:"discoverable,omitempty"`
	// BackupEligible and BackupState are the authenticator's backup
	// flags (a synced passkey is eligible); eligibility never changes.
	BackupEligible bool      `json:"backup_eligible,omitempty"`
	BackupState    bool      `json:"backup_state,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	LastUsedAt     time.Time `json:"last_used_at,omitzero"`
}

// Clone returns a deep copy.
func (p Passkey) Clone() Passkey {
	c := p
	c.ID = slices.Clone(p.ID)
	c.PublicKey = slices.Clone(p.PublicKey)
	c.Transports = slices.Clone(p.Transports)
	c.AAGUID = slices.Clone(p.AAGUID)
	return c
}

// MarshalJSON stores the times in UTC whatever their zone (the
// contract's "times in UTC").
func (p Passkey) MarshalJSON() ([]byte, error) {
	type plain Passkey
	q := plain(p)
	q.CreatedAt = utcTime(q.CreatedAt)
	q.LastUsedAt = utcTime(q.LastUsedAt)
	return json.Marshal(q)
}

func utcTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// MaxDriftSeen is how many drift observations a user keeps.
const MaxDriftSeen = 5

// DriftObservation is one failed code that matched at Steps time steps
// from the server's current step (positive: the device is ahead).
type DriftObservation struct {
	At    time.Time `json:"at"`
	Steps int       `json:"steps"`
}

// MarshalJSON stores At in UTC whatever its zone, so every backend keeps
// the contract's "times in UTC" for observations too.
func (o DriftObservation) MarshalJSON() ([]byte, error) {
	type plain DriftObservation
	p := plain(o)
	if !p.At.IsZero() {
		p.At = p.At.UTC()
	}
	return json.Marshal(p)
}

// HasTOTP reports whether the user has an authenticator app set up.
func (u User) HasTOTP() bool { return len(u.TOTPSecret) > 0 }

// HasSecondFactor reports whether the user has any second factor: an
// authenticator app or at least one passkey / security key.
func (u User) HasSecondFactor() bool { return u.HasTOTP() || len(u.Passkeys) > 0 }

// PasskeyIndex returns the index in u.Passkeys of the credential id, or
// -1.
func (u User) PasskeyIndex(id []byte) int {
	return slices.IndexFunc(u.Passkeys, func(p Passkey) bool { return bytes.Equal(p.ID, id) })
}

// Clone returns a deep copy.
func (u User) Clone() User {
	c := u
	c.Groups = append([]string(nil), u.Groups...)
	c.RecoveryCodes = append([]string(nil), u.RecoveryCodes...)
	if len(u.RecoveryCodes) == 0 {
		c.RecoveryCodes = nil
	}
	c.TOTPSecret = append([]byte(nil), u.TOTPSecret...)
	if len(u.TOTPSecret) == 0 {
		c.TOTPSecret = nil
	}
	if len(u.Groups) == 0 {
		c.Groups = nil
	}
	c.DriftSeen = append([]DriftObservation(nil), u.DriftSeen...)
	if len(u.DriftSeen) == 0 {
		c.DriftSeen = nil
	}
	c.PasskeyUserID = slices.Clone(u.PasskeyUserID)
	c.Passkeys = nil
	for _, p := range u.Passkeys {
		c.Passkeys = append(c.Passkeys, p.Clone())
	}
	return c
}

// ListOptions pages through users in ascending name order.
type ListOptions struct {
	// After returns only users whose name sorts strictly after this one.
	After string
	// Limit caps the number returned; 0 means no limit.
	Limit int
}

// Users stores accounts.
type Users interface {
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, name string) (User, error)
	// UpdateUser atomically applies fn to the current user and stores the
	// result (fn may run more than once under contention; it must be pure).
	// If fn returns an error nothing is written and that error is returned.
	UpdateUser(ctx context.Context, name string, fn func(*User) error) (User, error)
	DeleteUser(ctx context.Context, name string) error
	ListUsers(ctx context.Context, opts ListOptions) ([]User, error)
	CountUsers(ctx context.Context) (int, error)
}

// Session stages.
const (
	// StagePending: the password was accepted, a second factor (verify or
	// enrolment) is still owed. Such a session reaches no route.
	StagePending = "pending"
	// StageFull: the login is complete.
	StageFull = "full"
)

// Session is the server-side state of one login. The store never sees the
// session id itself, only its SHA-256 (IDHash, lowercase hex).
type Session struct {
	IDHash string `json:"id_hash"`
	User   string `json:"user"`
	Stage  string `json:"stage"`
	// TwoFactor is true when a second factor was verified for this session.
	TwoFactor   bool      `json:"two_factor,omitempty"`
	TwoFactorAt time.Time `json:"two_factor_at,omitzero"`
	CreatedAt   time.Time `json:"created_at"`
	LastSeenAt  time.Time `json:"last_seen_at"`
	// ExpiresAt is the absolute end of life (max_lifetime).
	ExpiresAt time.Time `json:"expires_at"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	// PendingTOTPSecret holds a sealed secret during enrolment until the
	// user confirms it with a valid code.
	PendingTOTPSecret []byte `json:"pending_totp_secret,omitempty"`
	// PasskeyChallenge holds the sealed state of the passkey ceremony
	// this session began (gateway/passkey): its challenge, for whom and
	// until when. A ceremony is finished only by the request that moves
	// the session on (Move), which clears it, so each challenge is
	// answered at most once.
	PasskeyChallenge []byte `json:"passkey_challenge,omitempty"`
	// RecoveryCodesSealed holds recovery codes just generated on the
	// account page, sealed (never in clear), so the user can download them
	// for a short while after they were shown once.
	RecoveryCodesSealed []byte `json:"recovery_codes_sealed,omitempty"`
	// AdminResultSealed holds the one-time result of an admin action that
	// must not travel in a URL (a temporary password), sealed, between the
	// action's POST and the page it redirects to, which removes it. Only
	// this session can read it.
	AdminResultSealed []byte `json:"admin_result_sealed,omitempty"`
	// Redirect is where to send the user after the pending stage.
	Redirect string `json:"redirect,omitempty"`
	// UserEpoch is the user's AuthEpoch when this session was created
	// (or last moved on by a change it made itself).
	UserEpoch int64 `json:"user_epoch,omitempty"`
	// Mode is the gateway's 2FA mode when the session was created. A
	// session that has not passed a second factor ends when the mode is
	// raised above it.
	Mode string `json:"mode,omitempty"`
}

// Sessions stores sessions by IDHash.
//
// A session that was deleted (logout, revoke, rotation) or expired must
// never come back: only PutSession creates one, and it is used only with
// a new random id. Every later write of an existing session goes through
// ReplaceSession, which never re-creates a missing one, and every
// transition to a new id starts with TakeSession, which exactly one of
// several concurrent callers wins.
type Sessions interface {
	// PutSession creates or replaces a session; the backend drops it after
	// ttl (ttl > 0 required). Used only to create a session under a new id.
	PutSession(ctx context.Context, s Session, ttl time.Duration) error
	// ReplaceSession writes s over the live session with s.IDHash, to be
	// dropped after ttl (ttl > 0 required). If there is no live session
	// with that id (deleted or expired, even a moment ago) nothing is
	// written and ErrNotFound is returned. The check and the write are
	// atomic.
	ReplaceSession(ctx context.Context, s Session, ttl time.Duration) error
	GetSession(ctx context.Context, idHash string) (Session, error)
	// TakeSession atomically reads and deletes the live session with
	// idHash and returns it; ErrNotFound if there is none. Of concurrent
	// takes of one session exactly one succeeds.
	TakeSession(ctx context.Context, idHash string) (Session, error)
	DeleteSession(ctx context.Context, idHash string) error
	// ListUserSessions returns the user's live sessions (expired ones are
	// never returned), oldest first.
	ListUserSessions(ctx context.Context, user string) ([]Session, error)
	// DeleteUserSessions removes all of the user's sessions and returns how
	// many were live.
	DeleteUserSessions(ctx context.Context, user string) (int, error)
}

// Steps records TOTP time steps already used, so a code is accepted once.
type Steps interface {
	// UseStep atomically marks (user, step) as used for ttl. It returns true
	// if this call marked it, false if it was already used (a replay).
	UseStep(ctx context.Context, user string, step int64, ttl time.Duration) (bool, error)
}

// Counters are named integers that expire, for rate limits and metrics.
type Counters interface {
	// Incr adds delta and returns the new value; a new counter expires
	// after window (the expiry is not extended by later increments).
	Incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, error)
	// Counter returns the current value, 0 if missing or expired.
	Counter(ctx context.Context, key string) (int64, error)
	ResetCounter(ctx context.Context, key string) error
}

// Settings are gateway-wide values shared by every instance.
type Settings interface {
	GetSetting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
}

// AuditEvent is one entry of the audit trail: who did what to whom, when,
// from where. It never holds a password, code, secret or session id.
type AuditEvent struct {
	Time time.Time `json:"time"`
	// Actor is the user who acted; "" for an anonymous client, "cli" for
	// the command line.
	Actor  string `json:"actor,omitempty"`
	Action string `json:"action"`
	// Target is the user or setting acted on.
	Target string `json:"target,omitempty"`
	IP     string `json:"ip,omitempty"`
	// Detail is a short, non-secret explanation (e.g. a failure reason).
	Detail string `json:"detail,omitempty"`
}

// AuditTrail names one of the audit lists. Each is capped on its own, so
// a flood of one kind of event never pushes the other kind out.
type AuditTrail string

const (
	// AuditChanges holds successful sign-ins and sign-outs and every
	// change to users, their factors, sessions, bans and settings: what
	// only a signed-in user, an admin or the command line can cause.
	AuditChanges AuditTrail = "changes"
	// AuditFailures holds failed sign-ins and the bans they start: what
	// anyone who can reach the login page can cause in bulk.
	AuditFailures AuditTrail = "failures"
)

// AuditTrails lists every trail.
var AuditTrails = []AuditTrail{AuditChanges, AuditFailures}

// Valid reports whether t is one of AuditTrails.
func (t AuditTrail) Valid() bool { return t == AuditChanges || t == AuditFailures }

// ErrBadAuditTrail is returned for a trail that is not one of
// AuditTrails.
var ErrBadAuditTrail = errors.New("store: unknown audit trail")

// Audit keeps the newest audit events in capped lists, one per
// AuditTrail, shared by all instances.
type Audit interface {
	// AppendAudit records ev in trail and drops that trail's oldest
	// events beyond keep (keep > 0 required). Other trails are not
	// touched. An unknown trail is ErrBadAuditTrail.
	AppendAudit(ctx context.Context, trail AuditTrail, ev AuditEvent, keep int) error
	// ListAudit returns up to limit events of trail (limit > 0), newest
	// first. An unknown trail is ErrBadAuditTrail.
	ListAudit(ctx context.Context, trail AuditTrail, limit int) ([]AuditEvent, error)
}

// Store is everything a backend provides.
type Store interface {
	Users
	Sessions
	Steps
	Counters
	Settings
	Audit
	Bans
	// Ping checks the backend is reachable.
	Ping(ctx context.Context) error
	Close() error
}
