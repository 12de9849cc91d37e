package factor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authgate/authgate/gateway/totp"
)

// ErrTooFar is wrapped by a *TooFarError: two codes were consecutive, but
// at an offset beyond the drift scan, so the clock is not corrected.
var ErrTooFar = errors.New("factor: clock offset beyond the allowed drift")

// TooFarError reports how far off the device's clock is.
type TooFarError struct {
	// Steps is the measured offset; Max the largest one allowed.
	Steps, Max int
}

func (e *TooFarError) Error() string {
	return fmt.Sprintf("factor: device clock %+d steps off, more than the allowed %d", e.Steps, e.Max)
}

func (e *TooFarError) Unwrap() error { return ErrTooFar }

// scanWindow searches code in Step(now) ± t.scan and returns the offset
// nearest to now that matches (negative first on a tie). It always
// computes every step of the window, in constant-time chunks (CheckAt with
// the largest skew totp allows), so its cost does not depend on the code.
func (t *TOTP) scanWindow(secret []byte, code string, now time.Time) (int, bool) {
	if t.scan == 0 {
		return 0, false
	}
	o := t.opts
	centre := totp.Step(now, o.Period)
	best, found := 0, false
	for a := -t.scan; a <= t.scan; {
		s := min(totp.MaxSkew, (t.scan-a)/2)
		o.Skew = uint(s)
		step, ok := totp.CheckAt(secret, code, now, o, a+s)
		k := int(step - centre)
		if ok && (!found || abs(k) < abs(best) || abs(k) == abs(best) && k < best) {
			best, found = k, true
		}
		a += 2*s + 1
	}
	return best, found
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// resyncRange is how far Resync looks for the two codes: beyond the drift
// scan too, so a clock that is too far off is told apart from wrong codes.
const resyncRange = totp.MaxScanSteps

// Resync measures the clock offset of the user's device from two
// consecutive codes (RFC 6238 §6): code1 must match step now+k and code2
// step now+k+1. It consumes both steps, so neither code can be used again,
// and returns the drift to store: k+1, the offset of the code the device
// shows now. A pair found beyond the drift scan is refused with a
// *TooFarError; no pair at all with ErrInvalid; a step already used with
// ErrReplayed. Resync is for a signed-in user or an admin, not for
// sign-in: it is not constant-time.
func (t *TOTP) Resync(ctx context.Context, user string, sealed []byte, code1, code2 string) (int, error) {
	secret, err := t.box.Open(sealed, []byte(user))
	if err != nil {
		return 0, fmt.Errorf("factor: open secret: %w", err)
	}
	defer clear(secret)
	now := t.now()
	o := t.opts
	o.Skew = 0
	centre := totp.Step(now, o.Period)
	k, found := 0, false
	for i := 0; i <= 2*resyncRange; i++ {
		d := int(i+1) / 2
		if i%2 == 1 {
			d = -d
		}
		if _, ok := totp.CheckAt(secret, code1, now, o, d); !ok {
			continue
		}
		if _, ok := totp.CheckAt(secret, code2, now, o, d+1); ok {
			k, found = d, true
			break
		}
	}
	if !found {
		return 0, ErrInvalid
	}
	if abs(k+1) > t.scan || abs(k) > t.scan {
		return 0, &TooFarError{Steps: k + 1, Max: t.scan}
	}
	for _, s := range []int64{centre + int64(k), centre + int64(k) + 1} {
		fresh, err := t.steps.UseStep(ctx, user, s, t.stepTTL())
		if err != nil {
			return 0, fmt.Errorf("factor: record used step: %w", err)
		}
		if !fresh {
			return 0, ErrReplayed
		}
	}
	return k + 1, nil
}
