package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// loginResult is the time from submitting the password to the first
// proxied byte, over several users' sign-ins.
type loginResult struct {
	name                           string
	n                              int
	total, password, code, proxied time.Duration // medians
	totalMax                       time.Duration
	enrolTotal                     time.Duration // median of the first sign-ins (with TOTP enrolment)
}

// loginLatency signs every login user in twice with a fresh browser: the
// first time sets up their authenticator (enrolment, recovery codes), the
// second is the everyday sign-in that is timed: POST the password, GET
// the code page, POST a TOTP code, GET the page asked for until its first
// byte arrives from the upstream. A person's typing is not part of it.
func (b *bench) loginLatency(ctx context.Context, c *candidate) (loginResult, error) {
	r := loginResult{name: c.name}
	users := c.ag.usersNamed("login")
	if len(users) == 0 {
		return r, fmt.Errorf("%s: no login users were created", c.name)
	}
	// A flood may have run just before: its queued sign-ins (each waits
	// at most password's 2 s) and the hashing slots' rests under
	// password.cpu_share end within a few seconds. Measure a quiet
	// gateway, not the flood's tail (which answers 503 busy).
	if err := sleepCtx(ctx, 5*time.Second); err != nil {
		return r, err
	}
	b.logf("%s: %d sign-ins with TOTP enrolment, then %d timed sign-ins", c.name, len(users), len(users))
	var enrol, total, pw, code, prox []time.Duration
	for _, a := range users {
		t, err := newBrowser("http://"+c.addr).signIn(ctx, a, b.up.body)
		if err != nil {
			return r, c.main.failure(fmt.Errorf("enrolling %s: %w", a.name, err))
		}
		enrol = append(enrol, t.total)
	}
	for _, a := range users {
		t, err := newBrowser("http://"+c.addr).signIn(ctx, a, b.up.body)
		if err != nil {
			return r, c.main.failure(fmt.Errorf("signing in %s: %w", a.name, err))
		}
		total = append(total, t.total)
		pw = append(pw, t.password)
		code = append(code, t.code)
		prox = append(prox, t.proxied)
	}
	r.n = len(total)
	r.total, r.password, r.code, r.proxied = medianD(total), medianD(pw), medianD(code), medianD(prox)
	r.totalMax = slices.Max(total)
	r.enrolTotal = medianD(enrol)
	return r, nil
}

func medianD(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f))
}
