package signin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/authgate/authgate/gateway/regulation"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
)

// Regulator reserves every proof attempt before its check and keeps
// bans (a *regulation.Regulator). See regulation.Regulator.Reserve.
type Regulator interface {
	Reserve(ctx context.Context, proof string, c regulation.Claim) (*regulation.Attempt, error)
	// Succeed resets user's failure count after a complete sign-in.
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
	return fmt.Sprintf("Too many attempts. Try again in %d %s. (An administrator can lift this at once with authgate bans lift on the server.)", n, unit)
}

// answer renders a refusal (status and public message) on the page the
// request came from.
type answer func(status int, msg string)

// reserve reserves one attempt at proving factor for user (may be "")
// from the client's address, in session s (nil at the password step),
// before anything is looked at: during a ban or past a limit the proof is
// never checked, so a refusal is no oracle, and any number of attempts
// arriving together are checked at most up to the limits. When the
// attempt is refused reserve answers the request itself (429 with
// Retry-After during a ban; a spent session is ended and sent to sign in
// again; 503 when the counters cannot be read: fail closed) and returns
// nil.
func (h *Handler) reserve(w http.ResponseWriter, r *http.Request, factor, user string, s *store.Session, page answer) *regulation.Attempt {
	// The address counts only where there is no session yet (the
	// password step): once the password is passed, failures belong to
	// the user and the session, so clients sharing one address (behind
	// a terminator, an office NAT) cannot lock each other out with
	// mistyped codes.
	c := regulation.Claim{User: user, IP: client(r).IP}
	if s != nil {
		c.Session = s.IDHash
		c.IP = netip.Addr{}
	}
	proof := factor
	if factor == factorEnroll {
		proof = factorTOTP // an enrolment proves a TOTP code
	}
	a, err := h.d.Regulator.Reserve(r.Context(), proof, c)
	if err == nil {
		return a
	}
	if be, ok := errors.AsType[*regulation.BannedError](err); ok {
		if be.Started {
			h.banStarted(be.Ban)
		}
		h.decision(r, user, "", "deny", "banned_"+be.Ban.Kind)
		h.attempt(factor, resultBanned)
		h.answerBan(w, r, be.Ban, page)
		return nil
	}
	if errors.Is(err, regulation.ErrSessionSpent) && s != nil {
		_ = h.d.Sessions.Destroy(r.Context(), s.IDHash)
		h.d.Sessions.ClearCookie(w, secure(r))
		h.decision(r, user, "", "deny", "too_many_codes")
		h.attempt(factor, resultBanned)
		d := loginData{Common: h.common(r, "Sign in"), Username: user, RD: h.afterSecondFactor(r, *s, r.PostForm.Get("rd"))}
		d.Error = msgTooMany
		h.d.Pages.Render(w, r, http.StatusUnauthorized, "login", d)
		return nil
	}
	h.log(r).Error().Err(err).Msg("regulation: attempt not reserved")
	h.attempt(factor, resultError)
	page(http.StatusServiceUnavailable, msgUnavailable)
	return nil
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

// failed records that the reserved attempt's proof was wrong. The
// answer is a failure anyway, so a store error only logs. When the
// failure started a ban it answers the request itself with the ban (429,
// Retry-After), so the user learns of it now rather than at the next
// try, and reports true.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, a *regulation.Attempt, page answer) bool {
	bans, err := a.Failed(r.Context())
	if err != nil {
		h.log(r).Error().Err(err).Msg("regulation: failure not recorded")
	}
	for _, b := range bans {
		h.banStarted(b)
	}
	if len(bans) == 0 {
		return false
	}
	b := bans[0]
	for _, x := range bans[1:] {
		if x.Until.After(b.Until) {
			b = x
		}
	}
	h.answerBan(w, r, b, page)
	return true
}

// answerBan answers 429 with Retry-After and the one ban message.
func (h *Handler) answerBan(w http.ResponseWriter, r *http.Request, b store.Ban, page answer) {
	wait := max(b.Until.Sub(h.d.Now()), time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	page(http.StatusTooManyRequests, banMessage(wait))
}

// passed gives the reserved attempt back after a right proof.
func (h *Handler) passed(r *http.Request, a *regulation.Attempt) {
	if err := a.Passed(r.Context()); err != nil {
		h.log(r).Warn().Err(err).Msg("regulation: attempt not given back")
	}
}

func (h *Handler) banStarted(b store.Ban) {
	if h.d.Metrics != nil {
		h.d.Metrics.BanStarted(b.Kind)
	}
}

// succeeded resets user's failure count after a complete sign-in.
func (h *Handler) succeeded(r *http.Request, user string) {
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
