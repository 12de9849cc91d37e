// Package audit records who did what: every auth and admin event goes to
// one of the store's two capped lists (the admin Audit tab, `authgate
// audit`) and to the log, with the actor and client IP taken from the
// request context. Failed sign-ins and the bans they start, which anyone
// can cause in bulk, go to their own list (store.AuditFailures), so a
// guessing run never pushes sign-ins and changes (store.AuditChanges)
// out.
package audit

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/store"
)

// How many events the store keeps in each trail (store.AuditTrail).
const (
	// KeepChanges bounds the sign-ins and changes: only signed-in users,
	// admins and the command line add to it.
	KeepChanges = 5000
	// KeepFailures bounds the failed sign-ins and ban starts: anyone can
	// add to it, a guessing run hundreds a minute.
	KeepFailures = 1000
)

// TrailOf is the trail an action is kept in: store.AuditFailures for a
// failed sign-in (LoginFailed) and a ban start (BanStarted),
// store.AuditChanges for everything else.
func TrailOf(action string) store.AuditTrail {
	switch action {
	case LoginFailed, BanStarted:
		return store.AuditFailures
	}
	return store.AuditChanges
}

// KeepOf is how many events trail keeps (KeepChanges, KeepFailures).
func KeepOf(trail store.AuditTrail) int {
	if trail == store.AuditFailures {
		return KeepFailures
	}
	return KeepChanges
}

// Actions.
const (
	Login             = "login"
	LoginFailed       = "login_failed"
	LoginRecoveryCode = "login_recovery_code"
	Logout            = "logout"
	StepUp            = "step_up"
	TOTPEnrolled      = "totp_enrolled"
	TOTPReconfigured  = "totp_reconfigured"
	TOTPRemoved       = "totp_removed"  // by the user
	TOTPDisabled      = "totp_disabled" // by an admin
	TOTPResynced      = "totp_resynced" // clock offset measured from two codes
	PasskeyAdded      = "passkey_added"
	PasskeyRenamed    = "passkey_renamed" // by the user
	PasskeyRemoved    = "passkey_removed" // by the user
	PasskeyRefused    = "passkey_refused" // a key's signature counter went backwards: possibly cloned
	RecoveryGenerated = "recovery_codes_generated"
	PasswordChanged   = "password_changed"
	PasswordReset     = "password_reset"
	RoleChanged       = "role_changed"
	SessionRevoked    = "session_revoked"
	SessionsRevoked   = "sessions_revoked"
	SettingChanged    = "setting_changed"
	UserAdded         = "user_added"
	UserDeleted       = "user_deleted"
	UsersImported     = "users_imported"
	BanStarted        = "ban_started" // too many failed attempts locked a user name or address out
	BanLifted         = "ban_lifted"  // an admin lifted a ban early
	ActorCLI          = "cli"
	maxDetailLen      = 200
	maxFieldLen       = 128
	logEventName      = "audit"
	logMessage        = "audit event"
)

// Appender is the store side of the recorder.
type Appender interface {
	AppendAudit(ctx context.Context, trail store.AuditTrail, ev store.AuditEvent, keep int) error
}

type actorKey struct{}

type actor struct{ name, ip string }

// WithActor returns ctx carrying who acts and from where; Record fills
// events' empty Actor and IP from it.
func WithActor(ctx context.Context, name, ip string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor{name: name, ip: ip})
}

// ActorFrom returns the actor stored by WithActor.
func ActorFrom(ctx context.Context) (name, ip string) {
	a, _ := ctx.Value(actorKey{}).(actor)
	return a.name, a.ip
}

// Recorder writes events to the store and the log.
type Recorder struct {
	st  Appender
	log zerolog.Logger
	now func() time.Time
}

// New returns a Recorder; now may be nil.
func New(st Appender, log zerolog.Logger, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{st: st, log: log, now: now}
}

// Record stores ev in its trail (TrailOf) and logs it. A store failure is
// logged, not returned: the action it describes has already happened, and
// the log still has it.
func (r *Recorder) Record(ctx context.Context, ev store.AuditEvent) {
	if ev.Time.IsZero() {
		ev.Time = r.now()
	}
	ev.Time = ev.Time.UTC()
	name, ip := ActorFrom(ctx)
	if ev.Actor == "" {
		ev.Actor = name
	}
	if ev.IP == "" {
		ev.IP = ip
	}
	ev.Actor = clip(ev.Actor, maxFieldLen)
	ev.Target = clip(ev.Target, maxFieldLen)
	ev.Detail = clip(ev.Detail, maxDetailLen)
	r.log.Info().Str("event", logEventName).Str("action", ev.Action).Str("actor", ev.Actor).
		Str("target", ev.Target).Str("client_ip", ev.IP).Str("detail", ev.Detail).Msg(logMessage)
	trail := TrailOf(ev.Action)
	if err := r.st.AppendAudit(context.WithoutCancel(ctx), trail, ev, KeepOf(trail)); err != nil {
		r.log.Error().Err(err).Str("action", ev.Action).Msg("audit event not stored")
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s[:n])
	return string(r[:len(r)-1]) + "…"
}
