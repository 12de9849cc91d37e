// Package audit records who did what: every auth and admin event goes to
// the store's capped list (the admin Audit tab, `authgate audit`) and to
// the log, with the actor and client IP taken from the request context.
package audit

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/store"
)

// Keep is how many events the store keeps.
const Keep = 500

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
	AppendAudit(ctx context.Context, ev store.AuditEvent, keep int) error
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

// Record stores and logs ev. A store failure is logged, not returned: the
// action it describes has already happened, and the log still has it.
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
	if err := r.st.AppendAudit(context.WithoutCancel(ctx), ev, Keep); err != nil {
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
