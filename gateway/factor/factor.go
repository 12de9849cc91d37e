package factor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/authgate/authgate/gateway/totp"
)

// Errors of a code check. Callers show the same public message for all of
// them; the distinction is for the log.
var (
	ErrInvalid = errors.New("factor: code does not match")
	// ErrDrifted is an ErrInvalid whose code matched the secret at a
	// clock offset outside the accepted window: proof of the secret
	// from a device (or server) with a wrong clock, not a guess.
	ErrDrifted  = fmt.Errorf("%w at the current time, only at a clock offset", ErrInvalid)
	ErrReplayed = errors.New("factor: code already used")
)

// Observer receives drift evidence: a failed code of user that matched
// steps time steps from the server's step at time at. Observe is called
// on the request path and must not block (queue the work).
type Observer interface {
	Observe(user string, steps int, at time.Time)
}

// StepStore records used TOTP steps.
type StepStore interface {
	UseStep(ctx context.Context, user string, step int64, ttl time.Duration) (bool, error)
}

// Box seals secrets at rest; aad binds a secret to its user.
type Box interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// TOTP checks and issues TOTP secrets.
type TOTP struct {
	box   Box
	steps StepStore
	opts  totp.Options
	now   func() time.Time
	rand  io.Reader
	// scan is how many steps either side of now a failed code is searched
	// for drift evidence, and the largest offset a resync or a stored
	// drift may have (0: no scan, no drift).
	scan int
	obs  Observer
}

// Option configures a TOTP.
type Option func(*TOTP)

// WithDriftScan searches failed codes up to steps time steps either side
// of the server's time for drift evidence (reported to obs, which may be
// nil), and allows stored drifts and resyncs up to that many steps.
func WithDriftScan(steps int, obs Observer) Option {
	return func(t *TOTP) {
		t.scan = max(0, min(steps, totp.MaxScanSteps))
		t.obs = obs
	}
}

// NewTOTP returns a TOTP checker. now and rnd may be nil.
func NewTOTP(box Box, steps StepStore, opts totp.Options, now func() time.Time, rnd io.Reader, o ...Option) *TOTP {
	if now == nil {
		now = time.Now
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	t := &TOTP{box: box, steps: steps, opts: opts, now: now, rand: rnd}
	for _, f := range o {
		f(t)
	}
	return t
}

// Options returns the TOTP parameters in force.
func (t *TOTP) Options() totp.Options { return t.opts }

// DriftScanSteps is the largest drift (in steps) checks and resyncs allow.
func (t *TOTP) DriftScanSteps() int { return t.scan }

// stepTTL keeps a used step recorded past the whole acceptance window,
// wherever a later drift (at most scan steps either way) may put it.
func (t *TOTP) stepTTL() time.Duration {
	return time.Duration(t.opts.Period) * time.Second * time.Duration(2*int(t.opts.Skew)+2*t.scan+2)
}

// Result is an accepted code.
type Result struct {
	// Step is the time step the code matched (consumed).
	Step int64
	// Offset is Step minus the server's current step.
	Offset int
	// Drift is the drift to store for the user: the drift the check was
	// centred on, moved one step towards Offset when the code matched off
	// centre (RFC 6238 §6). Store it only if the stored drift is still
	// the one passed to Check.
	Drift int
}

// Check verifies code against the user's sealed secret in the window
// centred on the user's drift (±skew steps), and consumes its time step,
// so the same code is accepted once, on any instance (the store's
// set-if-absent decides, not a read before a write).
//
// A code that fails is searched in the wide drift-scan window; a match
// there is reported to the Observer as evidence and still fails with
// ErrInvalid. The whole window is computed for every failure, whatever
// it finds, so a drifted code costs the same as a wrong one.
func (t *TOTP) Check(ctx context.Context, user string, sealed []byte, drift int, code string) (Result, error) {
	secret, err := t.box.Open(sealed, []byte(user))
	if err != nil {
		return Result{}, fmt.Errorf("factor: open secret: %w", err)
	}
	defer clear(secret)
	now := t.now()
	drift = max(-t.scan, min(drift, t.scan))
	step, ok := totp.CheckAt(secret, code, now, t.opts, drift)
	if !ok {
		k, found := t.scanWindow(secret, code, now)
		if !found {
			return Result{}, ErrInvalid
		}
		if t.obs != nil {
			t.obs.Observe(user, k, now)
		}
		return Result{}, ErrDrifted
	}
	fresh, err := t.steps.UseStep(ctx, user, step, t.stepTTL())
	if err != nil {
		return Result{}, fmt.Errorf("factor: record used step: %w", err)
	}
	if !fresh {
		return Result{}, ErrReplayed
	}
	off := int(step - totp.Step(now, t.opts.Period))
	nd := drift
	switch {
	case off > drift:
		nd++
	case off < drift:
		nd--
	}
	return Result{Step: step, Offset: off, Drift: max(-t.scan, min(nd, t.scan))}, nil
}

// NewSecret makes a new random secret sealed for user.
func (t *TOTP) NewSecret(user string) ([]byte, error) {
	secret, err := totp.NewSecret(t.rand)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	return t.box.Seal(secret, []byte(user))
}

// Enrolment is what a user needs to add a secret to an authenticator app.
type Enrolment struct {
	Issuer     string
	KeyURL     string // otpauth://totp/...
	KeyGrouped string // base32 in groups of four
	QRDataURI  string // data:image/png;base64,...
}

// Describe opens a sealed secret and renders it for the set-up page.
func (t *TOTP) Describe(user, issuer string, sealed []byte) (Enrolment, error) {
	secret, err := t.box.Open(sealed, []byte(user))
	if err != nil {
		return Enrolment{}, fmt.Errorf("factor: open secret: %w", err)
	}
	defer clear(secret)
	key, err := totp.NewKey(issuer, user, secret, t.opts)
	if err != nil {
		return Enrolment{}, err
	}
	qr, err := totp.QRCodeDataURI(key, 256)
	if err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Issuer: issuer, KeyURL: key.URL(), KeyGrouped: totp.GroupKey(totp.EncodeSecret(secret)), QRDataURI: qr}, nil
}
