package session

import (
	"errors"
	"fmt"

	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
)

// The states of a session and what each may reach. A session is in
// exactly one of them; the gate, the sign-in pages, the account pages and
// the admin area all decide from it (and the user record), never from
// how the request got there.
//
//	state          Stage    TwoFactor  reaches
//	-------------  -------  ---------  ------------------------------------------------
//	code owed      pending  false      the sign-in pages only (verify, recovery, enrol)
//	password only  full     false      password routes; two_factor routes and the admin
//	                                   area only in mode off; its own account pages, but
//	                                   no authenticator change on an account that has one
//	second factor  full     true       everything its user's role and allow lists permit
//
// A user whose password was reset (User.MustChangePassword) reaches only
// the password page, whatever the state.
//
// A session is void, whatever its state, when (Valid):
//   - its UserEpoch is not its user's AuthEpoch: the account's password,
//     authenticator, 2FA state or role changed, or all its sessions were
//     revoked, after it was created;
//   - it has not passed a second factor and the 2FA mode is now stricter
//     than when it was created (off < on < required);
//   - it is past its absolute or idle end (Manager.Get).
//
// The only moves to a new id (Rotate, checked by CheckTransition):
//
//	code owed      -> second factor   a code, recovery code or enrolment accepted
//	password only  -> second factor   a step-up code accepted
//	password only  -> password only   this session changed its own password or set
//	second factor  -> second factor   up / reconfigured / removed its own authenticator;
//	second factor  -> password only   the user epoch moves on with the change
//
// Nothing moves back to "code owed", no move changes the user, and the
// epoch never goes backwards. A move starts by taking the stored record;
// if it is gone or changed, the move fails and the user signs in again.

// Signed is a session checked against its user (Valid): what a handler
// acts on.
type Signed struct {
	// ID is the cookie value (for callers that rotate the session).
	ID      string
	Session store.Session
	User    store.User
	// Mode is the 2FA mode the session was judged under.
	Mode string
}

// Errors of Valid; both are ErrNoSession to callers that only need to
// refuse.
var (
	ErrAccountChanged = fmt.Errorf("%w: the account changed after the session was created", ErrNoSession)
	ErrModeRaised     = fmt.Errorf("%w: two-factor mode raised and the session has not passed a second factor", ErrNoSession)
	errBadTransition  = errors.New("session: transition not allowed")
)

// Valid reports whether session s may still act for user u under the
// current 2FA mode: nil, or an error matching ErrNoSession that says
// why not. u must be the user s.User as read now.
func Valid(s store.Session, u store.User, mode string) error {
	if s.User != u.Name || s.UserEpoch != u.AuthEpoch {
		return ErrAccountChanged
	}
	if !s.TwoFactor && modeRank(mode) > modeRank(s.Mode) {
		return ErrModeRaised
	}
	return nil
}

// modeRank orders the modes by strictness; an unknown or empty mode
// (a session from before modes were recorded) counts as off.
func modeRank(mode string) int {
	switch mode {
	case settings.ModeRequired:
		return 2
	case settings.ModeOn:
		return 1
	default:
		return 0
	}
}

// CheckTransition reports whether moving a session from "from" to "to"
// is one of the allowed moves (see the table above).
func CheckTransition(from, to store.Session) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %s -> %s: %s", errBadTransition, stateName(from), stateName(to), why)
	}
	switch {
	case to.User != from.User:
		return bad("the user changed")
	case to.UserEpoch < from.UserEpoch:
		return bad("the user epoch went backwards")
	case to.Stage != store.StageFull:
		return bad("only a complete session can result")
	case from.Stage == store.StagePending && !to.TwoFactor:
		return bad("a pending session completes only with a second factor")
	case from.Stage != store.StagePending && from.Stage != store.StageFull:
		return bad("unknown stage")
	case from.TwoFactor == to.TwoFactor || to.TwoFactor:
		return nil // same factor state, or a factor passed
	case to.UserEpoch == from.UserEpoch:
		// Dropping the second factor happens only with the removal of
		// the account's authenticator, which moves the epoch on.
		return bad("a second factor is dropped only with an account change")
	}
	return nil
}

func stateName(s store.Session) string {
	switch {
	case s.Stage == store.StagePending:
		return "code owed"
	case s.Stage == store.StageFull && s.TwoFactor:
		return "second factor"
	case s.Stage == store.StageFull:
		return "password only"
	}
	return "unknown"
}
