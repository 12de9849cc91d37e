package drift

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
)

// Store is what the Service reads and updates.
type Store interface {
	UserLister
	GetUser(ctx context.Context, name string) (store.User, error)
	UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error)
}

// Resyncer measures a device's offset from two consecutive codes and
// consumes them (a *factor.TOTP).
type Resyncer interface {
	Resync(ctx context.Context, user string, sealed []byte, code1, code2 string) (int, error)
	DriftScanSteps() int
}

// Auditor records the resync (an *audit.Recorder; the actor comes from
// the context).
type Auditor interface {
	Record(ctx context.Context, ev store.AuditEvent)
}

// Named errors of Resync (besides the factor's ErrInvalid, ErrReplayed
// and *TooFarError, passed through wrapped).
var (
	ErrNoTOTP = errors.New("drift: user has no second factor")
	// ErrChanged: the user's secret changed while the codes were checked.
	ErrChanged = errors.New("drift: the user's authenticator changed meanwhile")
)

// Service reports drift evidence and resynchronises devices.
type Service struct {
	st    Store
	codes Resyncer
	audit Auditor
	o     Options
	now   func() time.Time
}

// NewService returns a Service; now may be nil.
func NewService(st Store, codes Resyncer, a Auditor, o Options, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, codes: codes, audit: a, o: o.withDefaults(), now: now}
}

// Period is the TOTP period in seconds.
func (s *Service) Period() uint { return s.o.Period }

// MaxSteps is the largest offset a resync accepts, in steps.
func (s *Service) MaxSteps() int { return s.codes.DriftScanSteps() }

// Report analyses every user's recent evidence.
func (s *Service) Report(ctx context.Context) (Report, error) {
	return Analyze(ctx, s.st, s.now(), s.o)
}

// Resync measures the offset of the user's device from two consecutive
// codes, stores it as the user's drift (applied to every later check),
// clears the user's evidence (it is now explained) and audits it. The
// actor is the context's (audit.WithActor).
func (s *Service) Resync(ctx context.Context, user, code1, code2 string) (int, error) {
	u, err := s.st.GetUser(ctx, user)
	if err != nil {
		return 0, fmt.Errorf("drift: resync %q: %w", user, err)
	}
	if !u.HasTOTP() {
		return 0, fmt.Errorf("drift: resync %q: %w", user, ErrNoTOTP)
	}
	steps, err := s.codes.Resync(ctx, user, u.TOTPSecret, code1, code2)
	if err != nil {
		return 0, fmt.Errorf("drift: resync %q: %w", user, err)
	}
	before := u.TOTPDriftSteps
	_, err = s.st.UpdateUser(ctx, user, func(x *store.User) error {
		if !bytes.Equal(x.TOTPSecret, u.TOTPSecret) {
			return ErrChanged
		}
		before = x.TOTPDriftSteps
		x.TOTPDriftSteps = steps
		x.DriftSeen = nil
		x.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("drift: store drift of %q: %w", user, err)
	}
	s.audit.Record(ctx, store.AuditEvent{
		Action: audit.TOTPResynced, Target: user,
		Detail: fmt.Sprintf("device clock %s, was %s", StepsText(steps, s.o.Period), StepsText(before, s.o.Period)),
	})
	return steps, nil
}
