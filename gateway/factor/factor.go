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
	ErrInvalid  = errors.New("factor: code does not match")
	ErrReplayed = errors.New("factor: code already used")
)

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
}

// NewTOTP returns a TOTP checker. now and rnd may be nil.
func NewTOTP(box Box, steps StepStore, opts totp.Options, now func() time.Time, rnd io.Reader) *TOTP {
	if now == nil {
		now = time.Now
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	return &TOTP{box: box, steps: steps, opts: opts, now: now, rand: rnd}
}

// Options returns the TOTP parameters in force.
func (t *TOTP) Options() totp.Options { return t.opts }

// stepTTL keeps a used step recorded past the whole acceptance window.
func (t *TOTP) stepTTL() time.Duration {
	return time.Duration(t.opts.Period) * time.Second * time.Duration(2*t.opts.Skew+2)
}

// Check verifies code against the user's sealed secret and consumes its
// time step, so the same code is accepted once, on any instance (the
// store's set-if-absent decides, not a read before a write).
func (t *TOTP) Check(ctx context.Context, user string, sealed []byte, code string) (int64, error) {
	secret, err := t.box.Open(sealed, []byte(user))
	if err != nil {
		return 0, fmt.Errorf("factor: open secret: %w", err)
	}
	step, ok := totp.Check(secret, code, t.now(), t.opts)
	clear(secret)
	if !ok {
		return 0, ErrInvalid
	}
	fresh, err := t.steps.UseStep(ctx, user, step, t.stepTTL())
	if err != nil {
		return 0, fmt.Errorf("factor: record used step: %w", err)
	}
	if !fresh {
		return 0, ErrReplayed
	}
	return step, nil
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
	u := totp.KeyURL(issuer, user, secret, t.opts)
	qr, err := totp.QRCodeDataURI(u, 256)
	if err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Issuer: issuer, KeyURL: u, KeyGrouped: totp.GroupKey(totp.EncodeSecret(secret)), QRDataURI: qr}, nil
}
