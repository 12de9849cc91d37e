package totp

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	ptotp "github.com/pquerna/otp/totp"
)

// MaxScanSteps caps how far either side a drift scan may search (one day
// at 30 s): the largest two_factor.drift_scan and the resync range.
const MaxScanSteps = 2880

// maxCodeInput bounds the raw input a check looks at, spaces included.
const maxCodeInput = 32

// ErrBeforeEpoch is returned by Code for times before the Unix epoch.
var ErrBeforeEpoch = errors.New("totp: time before the Unix epoch")

// Step returns the RFC 6238 time step of t: floor(unix seconds / period).
// A period of 0 means DefaultPeriod.
func Step(t time.Time, period uint) int64 {
	if period == 0 {
		period = DefaultPeriod
	}
	p := int64(period)
	s := t.Unix()
	q := s / p
	if s%p != 0 && s < 0 {
		q--
	}
	return q
}

// Code returns the code for secret at time t.
func Code(secret []byte, t time.Time, o Options) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	if len(secret) < MinSecretSize {
		return "", ErrSecretTooShort
	}
	if t.Unix() < 0 {
		return "", ErrBeforeEpoch
	}
	alg, _ := parseAlgorithm(o.Algorithm)
	code, err := ptotp.GenerateCodeCustom(EncodeSecret(secret), t, ptotp.ValidateOpts{
		Period:    o.Period,
		Digits:    otp.Digits(o.Digits),
		Algorithm: alg,
	})
	if err != nil {
		return "", fmt.Errorf("totp: generating code: %w", err)
	}
	return code, nil
}

// Check reports whether code is valid for secret at time t, accepting the
// steps Step(t)-Skew..Step(t)+Skew, and returns the matched step for replay
// protection (the caller must accept each step at most once per user, as
// factor.TOTP does with the store's set-if-absent). It is CheckAt with no
// drift offset.
func Check(secret []byte, code string, t time.Time, o Options) (step int64, ok bool) {
	return CheckAt(secret, code, t, o, 0)
}

// CheckAt is Check around a centre shifted by offsetSteps (a stored
// per-user clock drift): it accepts Step(t)+offsetSteps ± Skew.
//
// The code is normalised first: ASCII spaces anywhere ("123 456", as apps
// display it) and surrounding tabs/newlines are dropped; what remains must
// be exactly o.Digits ASCII digits, otherwise the check fails without
// computing anything. Every candidate step is then computed (HOTP, RFC
// 4226, by pquerna/otp) and compared in constant time, whichever matches;
// if several match, the one nearest the centre wins (earlier first on a
// tie). Invalid options, a secret shorter than MinSecretSize and steps
// before the epoch never match.
func CheckAt(secret []byte, code string, t time.Time, o Options, offsetSteps int) (step int64, ok bool) {
	alg, valid := o.valid()
	if !valid || len(secret) < MinSecretSize {
		return 0, false
	}
	want, parsed := normaliseCode(code, o.Digits)
	if !parsed {
		return 0, false
	}
	key, opts := EncodeSecret(secret), hotpOptions(alg, o.Digits)
	centre := Step(t, o.Period) + int64(offsetSteps)
	for i := 0; i <= 2*int(o.Skew); i++ {
		cand := centre + delta(i)
		if cand < 0 {
			continue
		}
		got, err := hotp.GenerateCodeCustom(key, uint64(cand), opts)
		if err != nil {
			return 0, false
		}
		// No early return: every candidate costs the same whichever
		// one matches.
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 && !ok {
			step, ok = cand, true
		}
	}
	return step, ok
}

func hotpOptions(alg otp.Algorithm, digits int) hotp.ValidateOpts {
	return hotp.ValidateOpts{Digits: otp.Digits(digits), Algorithm: alg}
}

// delta maps 0,1,2,3,4,... to 0,-1,+1,-2,+2,...
func delta(i int) int64 {
	d := int64(i+1) / 2
	if i%2 == 1 {
		return -d
	}
	return d
}

// normaliseCode returns code's digits if, without ASCII spaces and
// surrounding whitespace, it is exactly digits ASCII digits.
func normaliseCode(code string, digits int) (string, bool) {
	if len(code) > maxCodeInput {
		return "", false
	}
	code = strings.ReplaceAll(strings.Trim(code, " \t\r\n"), " ", "")
	if len(code) != digits {
		return "", false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return "", false
		}
	}
	return code, true
}
