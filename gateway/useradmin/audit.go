package useradmin

import (
	"context"

	"github.com/rs/zerolog"
)

// Audited wraps a with an audit log: every change is logged with the
// action and the user name (and role/groups where they apply), at info on
// success and warn on failure. Hashes are never logged. List is not a
// change and is not logged.
func Audited(a Admin, logger zerolog.Logger) Admin {
	return &audited{next: a, log: logger}
}

type audited struct {
	next Admin
	log  zerolog.Logger
}

func (a *audited) event(err error) *zerolog.Event {
	if err != nil {
		return a.log.Warn().Err(err).Str("result", "failed")
	}
	return a.log.Info().Str("result", "ok")
}

func (a *audited) Add(ctx context.Context, name, passwordHash, role string, groups []string) error {
	err := a.next.Add(ctx, name, passwordHash, role, groups)
	a.event(err).Str("action", "user_add").Str("user", name).Str("role", role).
		Strs("groups", groups).Msg("audit: add user")
	return err
}

func (a *audited) SetPassword(ctx context.Context, name, passwordHash string) error {
	err := a.next.SetPassword(ctx, name, passwordHash)
	a.event(err).Str("action", "user_set_password").Str("user", name).
		Msg("audit: set password and revoke sessions")
	return err
}

func (a *audited) Delete(ctx context.Context, name string) error {
	err := a.next.Delete(ctx, name)
	a.event(err).Str("action", "user_delete").Str("user", name).
		Msg("audit: delete user and sessions")
	return err
}

func (a *audited) List(ctx context.Context) ([]UserInfo, error) {
	return a.next.List(ctx)
}

func (a *audited) Import(ctx context.Context, entries []ImportEntry) (ImportResult, error) {
	res, err := a.next.Import(ctx, entries)
	for _, name := range res.Added {
		a.log.Info().Str("action", "user_import").Str("user", name).Str("result", "ok").
			Msg("audit: import user")
	}
	for _, name := range res.Skipped {
		a.log.Info().Str("action", "user_import").Str("user", name).Str("result", "skipped_exists").
			Msg("audit: import user skipped, already exists")
	}
	a.event(err).Str("action", "user_import").Int("entries", len(entries)).
		Int("added", len(res.Added)).Int("skipped", len(res.Skipped)).Msg("audit: import users")
	return res, err
}
