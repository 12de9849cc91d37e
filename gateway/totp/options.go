package totp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pquerna/otp"
)

// Defaults compatible with every common authenticator app.
const (
	DefaultPeriod    = 30
	DefaultDigits    = 6
	DefaultAlgorithm = "SHA1"
	DefaultSkew      = 1
)

// Bounds enforced by Options.Validate.
const (
	MinDigits = 6
	MaxDigits = 8
	MaxPeriod = 3600 // seconds
	MaxSkew   = 10   // steps either side
)

// ErrInvalidOptions is wrapped by every error from Options.Validate.
var ErrInvalidOptions = errors.New("totp: invalid options")

// Options are the TOTP parameters shared by the server and the user's app.
type Options struct {
	// Period is the length of a time step in seconds (1..MaxPeriod).
	Period uint
	// Digits is the code length (MinDigits..MaxDigits).
	Digits int
	// Algorithm is the HMAC hash: SHA1, SHA256 or SHA512 (case-insensitive).
	Algorithm string
	// Skew is how many steps either side of the current one are accepted.
	Skew uint
}

// DefaultOptions returns 30-second, 6-digit, SHA1 codes with one step of
// skew either side.
func DefaultOptions() Options {
	return Options{Period: DefaultPeriod, Digits: DefaultDigits, Algorithm: DefaultAlgorithm, Skew: DefaultSkew}
}

// Validate reports every problem with o at once; each wraps ErrInvalidOptions.
func (o Options) Validate() error {
	var errs []error
	if o.Period < 1 || o.Period > MaxPeriod {
		errs = append(errs, fmt.Errorf("%w: period %d must be between 1 and %d seconds", ErrInvalidOptions, o.Period, MaxPeriod))
	}
	if o.Digits < MinDigits || o.Digits > MaxDigits {
		errs = append(errs, fmt.Errorf("%w: digits %d must be between %d and %d", ErrInvalidOptions, o.Digits, MinDigits, MaxDigits))
	}
	if _, ok := parseAlgorithm(o.Algorithm); !ok {
		errs = append(errs, fmt.Errorf("%w: algorithm %q must be SHA1, SHA256 or SHA512", ErrInvalidOptions, o.Algorithm))
	}
	if o.Skew > MaxSkew {
		errs = append(errs, fmt.Errorf("%w: skew %d must be at most %d steps", ErrInvalidOptions, o.Skew, MaxSkew))
	}
	return errors.Join(errs...)
}

// valid is Validate without building errors (used on the hot path).
func (o Options) valid() (otp.Algorithm, bool) {
	alg, ok := parseAlgorithm(o.Algorithm)
	if !ok || o.Period < 1 || o.Period > MaxPeriod || o.Digits < MinDigits || o.Digits > MaxDigits || o.Skew > MaxSkew {
		return 0, false
	}
	return alg, true
}

// canonicalAlgorithm returns the upper-case algorithm name.
func (o Options) canonicalAlgorithm() string {
	if alg, ok := parseAlgorithm(o.Algorithm); ok {
		return alg.String()
	}
	return strings.ToUpper(o.Algorithm)
}

func parseAlgorithm(s string) (otp.Algorithm, bool) {
	switch {
	case strings.EqualFold(s, "SHA1"):
		return otp.AlgorithmSHA1, true
	case strings.EqualFold(s, "SHA256"):
		return otp.AlgorithmSHA256, true
	case strings.EqualFold(s, "SHA512"):
		return otp.AlgorithmSHA512, true
	}
	return 0, false
}
