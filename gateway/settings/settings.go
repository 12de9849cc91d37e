// Package settings holds the gateway-wide values an admin can change at run
// time (2FA mode, Issuer). They live in the store so every instance sees a
// change; the config file gives only the initial values.
package settings

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// Store keys.
const (
	KeyMode   = "two_factor.mode"
	KeyIssuer = "two_factor.issuer"
)

// Two-factor modes.
const (
	ModeOff      = "off"
	ModeOn       = "on"
	ModeRequired = "required"
)

// ErrInvalid marks a value that is not allowed: a rejected change (an
// *InvalidError) or a corrupt stored value.
var ErrInvalid = errors.New("settings: invalid value")

// InvalidError is a value SetMode or SetIssuer refuses. It matches
// ErrInvalid.
type InvalidError struct {
	// Key is the setting (KeyMode, KeyIssuer).
	Key string
	// Message says what is wrong, e.g. "issuer longer than 64 characters".
	Message string
}

func (e *InvalidError) Error() string { return ErrInvalid.Error() + ": " + e.Message }

// Unwrap makes the error match ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Values is one snapshot of the settings.
type Values struct {
	Mode string
	// ModeStored: Mode was set on the Settings page or with the command
	// line (it is in the store and wins over the config file); false:
	// it is the config file's two_factor.mode.
	ModeStored bool
	// Issuer as set by the admin; empty means the default (DefaultIssuer).
	Issuer string
}

// Backend is the part of the store settings need.
type Backend interface {
	GetSetting(ctx context.Context, key string) (string, error)
	SetSetting(ctx context.Context, key, value string) error
}

// Source reads settings through a short cache so a request costs no store
// round trip, while a change made on any instance is seen within MaxAge.
type Source struct {
	st       Backend
	initial  Values
	maxAge   time.Duration
	now      func() time.Time
	mu       sync.Mutex
	cached   Values
	cachedAt time.Time
	valid    bool
}

// New returns a Source. initial holds the config file's values, used for
// keys the store does not have yet. maxAge <= 0 means 2 seconds.
func New(st Backend, initial Values, maxAge time.Duration, now func() time.Time) *Source {
	if maxAge <= 0 {
		maxAge = 2 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Source{st: st, initial: initial, maxAge: maxAge, now: now}
}

// ValidMode reports whether m is a known mode.
func ValidMode(m string) bool {
	return m == ModeOff || m == ModeOn || m == ModeRequired
}

// Current returns the settings. A store error is returned (callers fail
// closed) unless a cached value no older than 10×maxAge exists.
func (s *Source) Current(ctx context.Context) (Values, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.valid && now.Sub(s.cachedAt) < s.maxAge {
		return s.cached, nil
	}
	v, err := s.load(ctx)
	if err != nil {
		if s.valid && now.Sub(s.cachedAt) < 10*s.maxAge {
			return s.cached, nil
		}
		return Values{}, err
	}
	s.cached, s.cachedAt, s.valid = v, now, true
	return v, nil
}

func (s *Source) load(ctx context.Context) (Values, error) {
	v := s.initial
	mode, err := s.st.GetSetting(ctx, KeyMode)
	switch {
	case err == nil:
		if !ValidMode(mode) {
			return Values{}, fmt.Errorf("settings: stored %s %q: %w", KeyMode, mode, ErrInvalid)
		}
		v.Mode, v.ModeStored = mode, true
	case !errors.Is(err, store.ErrNotFound):
		return Values{}, fmt.Errorf("settings: read %s: %w", KeyMode, err)
	}
	issuer, err := s.st.GetSetting(ctx, KeyIssuer)
	switch {
	case err == nil:
		v.Issuer = issuer
	case !errors.Is(err, store.ErrNotFound):
		return Values{}, fmt.Errorf("settings: read %s: %w", KeyIssuer, err)
	}
	return v, nil
}

// SetMode stores a new mode for every instance.
func (s *Source) SetMode(ctx context.Context, mode string) error {
	if !ValidMode(mode) {
		return &InvalidError{Key: KeyMode, Message: fmt.Sprintf("mode %q (want off, on or required)", mode)}
	}
	return s.set(ctx, KeyMode, mode)
}

// SetIssuer stores a new Issuer (empty = default). It affects new
// enrolments only: existing authenticator entries keep working.
func (s *Source) SetIssuer(ctx context.Context, issuer string) error {
	if len(issuer) > 64 {
		return &InvalidError{Key: KeyIssuer, Message: "issuer longer than 64 characters"}
	}
	for _, r := range issuer {
		if r < 0x20 || r == 0x7f || r == ':' {
			return &InvalidError{Key: KeyIssuer, Message: "issuer must not contain control characters or ':'"}
		}
	}
	return s.set(ctx, KeyIssuer, issuer)
}

func (s *Source) set(ctx context.Context, key, value string) error {
	if err := s.st.SetSetting(ctx, key, value); err != nil {
		return fmt.Errorf("settings: write %s: %w", key, err)
	}
	s.mu.Lock()
	s.valid = false
	s.mu.Unlock()
	return nil
}
