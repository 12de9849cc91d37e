package account

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/drift"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/templates"
)

// PathResync resynchronises the user's own authenticator.
const PathResync = "/.authgate/account/2fa/resync"

// Resyncer stores the clock offset measured from two consecutive codes of
// the user's authenticator, and audits it (a *drift.Service).
type Resyncer interface {
	Resync(ctx context.Context, user, code1, code2 string) (int, error)
	Period() uint
	MaxSteps() int
}

// Public messages of the resync page.
const (
	msgResyncInvalid  = "These are not two consecutive codes of your authenticator. Enter the current code, then the next one as soon as it appears."
	msgResyncReplayed = "One of these codes was already used. Wait for the next code and enter two new codes."
	msgResyncTooFar   = "Your phone's clock is %s, more than the %s that can be corrected. Set your phone to automatic (network) time instead."
)

func (h *Handler) resyncPage(w http.ResponseWriter, r *http.Request, c auth.Current) {
	if !c.User.HasTOTP() || h.d.Resync == nil {
		redirectDone(w, r, "not-enrolled")
		return
	}
	h.renderResync(w, r, c, http.StatusOK, "")
}

func (h *Handler) renderResync(w http.ResponseWriter, r *http.Request, c auth.Current, status int, errMsg string) {
	p := h.d.Resync.Period()
	d := templates.AccountResyncPage{
		Common:    h.common(r, "Resync your authenticator's clock"),
		Nav:       nav(c),
		User:      c.User.Name,
		Action:    PathResync,
		CancelURL: PathOverview,
		Period:    int(p),
		MaxOffset: drift.Seconds(h.d.Resync.MaxSteps() * int(p)),
	}
	if n := c.User.TOTPDriftSteps; n != 0 {
		d.Applied = drift.StepsText(n, p) + ", phone " + drift.OffsetText(n*int(p))
	}
	d.Error = errMsg
	h.d.Pages.Render(w, r, status, templates.PageAccountResync, d)
}

// resyncSubmit checks the password, then measures and stores the offset
// from the two codes. Wrong passwords and codes count towards the
// account pages' failure limit.
func (h *Handler) resyncSubmit(w http.ResponseWriter, r *http.Request, c auth.Current) {
	ctx := r.Context()
	u := c.User
	if !u.HasTOTP() || h.d.Resync == nil {
		redirectDone(w, r, "not-enrolled")
		return
	}
	// Two proofs, each reserved before its check: the password, then the
	// two codes.
	a, refused := h.reserve(w, r, c, proofPassword)
	if a == nil {
		if refused != nil {
			h.renderResync(w, r, c, refused.status, refused.msg)
		}
		return
	}
	ok, busy := h.verifyPassword(r, a, c, r.PostForm.Get("password"))
	if busy {
		h.renderResync(w, r, c, http.StatusServiceUnavailable, msgBusy)
		return
	}
	if !ok {
		h.renderResync(w, r, c, http.StatusForbidden, msgBadCurrent)
		return
	}
	if a, refused = h.reserve(w, r, c, proofTOTP); a == nil {
		if refused != nil {
			h.renderResync(w, r, c, refused.status, refused.msg)
		}
		return
	}
	code1, code2 := strings.TrimSpace(r.PostForm.Get("code1")), strings.TrimSpace(r.PostForm.Get("code2"))
	steps, err := h.d.Resync.Resync(ctx, u.Name, code1, code2)
	var far *factor.TooFarError
	switch {
	case err == nil:
	case errors.As(err, &far):
		_ = a.Cancel(ctx) // the codes are the user's, only too far apart
		p := int(h.d.Resync.Period())
		h.log(r).Warn().Str("user", u.Name).Int("offset_steps", far.Steps).Msg("account: resync refused: offset beyond drift_scan")
		h.renderResync(w, r, c, http.StatusUnprocessableEntity,
			fmt.Sprintf(msgResyncTooFar, drift.OffsetText(far.Steps*p), drift.Seconds(far.Max*p)))
		return
	case errors.Is(err, factor.ErrInvalid):
		h.proofFailed(r, a, u.Name, "resync_codes")
		h.renderResync(w, r, c, http.StatusUnprocessableEntity, msgResyncInvalid)
		return
	case errors.Is(err, factor.ErrReplayed):
		h.proofFailed(r, a, u.Name, "resync_replayed")
		h.renderResync(w, r, c, http.StatusUnprocessableEntity, msgResyncReplayed)
		return
	case errors.Is(err, drift.ErrNoTOTP):
		_ = a.Cancel(ctx)
		redirectDone(w, r, "not-enrolled")
		return
	default:
		h.proofFailed(r, a, u.Name, "resync_error") // undecided counts: a failing store is no way around the limit
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	h.proofPassed(r, a, u.Name)
	h.log(r).Info().Str("user", u.Name).Int("offset_steps", steps).Msg("account: authenticator clock resynchronised")
	redirectDone(w, r, "resynced")
}
