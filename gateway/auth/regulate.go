package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
)

// Regulator counts failed sign-in attempts and keeps bans (a
// *regulation.Regulator).
type Regulator interface {
	// Banned returns the ban holding for user or ip, if any.
	Banned(ctx context.Context, user string, ip netip.Addr) (store.Ban, bool, error)
	// Fail records a failed attempt and returns the bans it started.
	Fail(ctx context.Context, user string, ip netip.Addr) ([]store.Ban, error)
	// Succeed resets user's failure count.
	Succeed(ctx context.Context, user string) error
}

// HashSlots bounds the password hashing running at once (a
// *password.Limiter).
type HashSlots interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// msgBusy answers a login when every hashing slot is taken.
const msgBusy = "Sign-in is busy, please try again in a moment."

// busyHold is the least time a busy answer takes.
const busyHold = 2 * time.Second

// busyRetryAfter is the Retry-After of a busy answer, in seconds.
const busyRetryAfter = 2

// banMessage is the one answer during a ban, for every user and address
// and whether the password is right or not.
func banMessage(wait time.Duration) string {
	n := max(1, int(math.Ceil(wait.Minutes())))
	unit := "minutes"
	if n == 1 {
		unit = "minute"
	}
	return fmt.Sprintf("Too many attempts. Try again in %d %s.", n, unit)
}

// answer renders a refusal (status and public message) on the page the
// request came from.
type answer func(status int, msg string)

// refuseBanned answers 429 with Retry-After when user (may be "") or the
// client's address is banned, before anything is checked: during a ban
// the password is never looked at, so a ban is no oracle. It answers 503
// when the bans cannot be read (fail closed). It reports whether it
// answered; factor names the step for the metrics.
func (h *Handler) refuseBanned(w http.ResponseWriter, r *http.Request, factor, user string, page answer) bool {
	if h.d.Regulator == nil {
		return false
	}
	b, banned, err := h.d.Regulator.Banned(r.Context(), user, client(r).IP)
	if err != nil {
		h.log(r).Error().Err(err).Msg("regulation: bans unreadable")
		h.attempt(factor, resultError)
		page(http.StatusServiceUnavailable, msgUnavailable)
		return true
	}
	if !banned {
		return false
	}
	wait := max(b.Until.Sub(h.d.Now()), time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	h.decision(r, user, "", "deny", "banned_"+b.Kind)
	h.attempt(factor, resultBanned)
	page(http.StatusTooManyRequests, banMessage(wait))
	return true
}

// hashSlot takes a hashing slot for one login attempt, or answers 503 with
// Retry-After when the gateway is saturated. release is never nil.
func (h *Handler) hashSlot(w http.ResponseWriter, r *http.Request, page answer) (release func(), ok bool) {
	if h.d.HashSlots == nil {
		return func() {}, true
	}
	start := time.Now()
	release, err := h.d.HashSlots.Acquire(r.Context())
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			h.log(r).Debug().Err(err).Msg("login refused: password hashing saturated")
		}
		// Refused at once (the queue was full): hold the answer for a
		// while, so a flood client that retries the moment it is answered
		// costs a sleeping goroutine, not a stream of refusals eating the
		// CPU that signed-in users' traffic needs.
		if held := busyHold - time.Since(start); held > 0 {
			t := time.NewTimer(held)
			select {
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
		}
		w.Header().Set("Retry-After", strconv.Itoa(busyRetryAfter))
		middleware.SetResult(r.Context(), "busy")
		h.attempt(factorPassword, resultBusy)
		page(http.StatusServiceUnavailable, msgBusy)
		return func() {}, false
	}
	return release, true
}

// failed counts a failed attempt for user (may be "") and the client's
// address. The answer is a failure anyway, so a store error only logs.
func (h *Handler) failed(r *http.Request, user string) {
	if h.d.Regulator == nil {
		return
	}
	bans, err := h.d.Regulator.Fail(r.Context(), user, client(r).IP)
	if err != nil {
		h.log(r).Error().Err(err).Msg("regulation: failure not counted")
	}
	if h.d.Metrics != nil {
		for _, b := range bans {
			h.d.Metrics.BanStarted(b.Kind)
		}
	}
}

// succeeded resets user's failure count after a complete sign-in.
func (h *Handler) succeeded(r *http.Request, user string) {
	if h.d.Regulator == nil {
		return
	}
	if err := h.d.Regulator.Succeed(r.Context(), user); err != nil {
		h.log(r).Warn().Err(err).Msg("regulation: failure count not reset")
	}
}

// errorPage renders a refusal as the error page (second-factor pages).
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request) answer {
	return func(status int, msg string) {
		h.d.Pages.RenderError(w, r, web.Errorf(status, msg, nil))
	}
}
