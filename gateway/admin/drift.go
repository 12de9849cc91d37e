package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/drift"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/users"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// ResyncPath resynchronises a user's authenticator from two codes.
const ResyncPath = UsersPath + "/resync"

// Drift is the clock-drift evidence and the resync (a *drift.Service).
type Drift interface {
	Report(ctx context.Context) (drift.Report, error)
	// Resync stores the offset measured from two consecutive codes of the
	// user's authenticator and audits it (actor from the context).
	Resync(ctx context.Context, user, code1, code2 string) (int, error)
	Period() uint
	MaxSteps() int
}

// Public messages of the resync.
const (
	msgResyncInvalid  = "These are not two consecutive codes of this user's authenticator. Ask for the current code, then the next one as soon as it appears."
	msgResyncReplayed = "One of these codes was already used. Wait for the next code and enter two new codes."
	msgResyncNoTOTP   = "This user has no authenticator app set up."
	msgResyncTooFar   = "The phone's clock is %s, more than the %s that can be corrected. Set the phone to automatic (network) time instead."
)

// driftReport returns the evidence, false when there is none to show.
func (h *Handler) driftReport(r *http.Request) (drift.Report, bool) {
	if h.d.Drift == nil {
		return drift.Report{}, false
	}
	rep, err := h.d.Drift.Report(r.Context())
	if err != nil {
		middleware.LoggerFrom(r.Context()).Error().Err(err).Msg("admin: drift evidence unavailable")
		return drift.Report{}, false
	}
	return rep, true
}

// driftSummary is the "Clock drift evidence" block of the Settings page.
func (h *Handler) driftSummary(r *http.Request) templates.DriftSummary {
	rep, ok := h.driftReport(r)
	if !ok {
		return templates.DriftSummary{Unavailable: true}
	}
	s := templates.DriftSummary{
		Window:       windowText(rep.Window),
		Users:        rep.Users,
		ServerLikely: rep.ServerLikely,
		Agreeing:     rep.Agreeing,
	}
	if rep.ServerLikely {
		s.ServerOffset = drift.ServerOffsetText(rep.EstimateSeconds)
	}
	for _, u := range rep.Phones() {
		s.Phones = append(s.Phones, templates.DriftPhone{User: u.Name, Advice: rep.Advice(u)})
	}
	return s
}

// windowText renders the evidence window: "24 hours", "90 minutes".
func windowText(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		n := int(d / time.Hour)
		return strconv.Itoa(n) + " " + plural(n, "hour", "hours")
	}
	n := int(d.Round(time.Minute) / time.Minute)
	return strconv.Itoa(n) + " " + plural(n, "minute", "minutes")
}

// driftNote is the clock note of one user's row.
func (h *Handler) driftNote(u users.UserInfo, rep drift.Report, ok bool) templates.DriftNote {
	if h.d.Drift == nil {
		return templates.DriftNote{}
	}
	p := h.d.Drift.Period()
	var n templates.DriftNote
	if u.DriftSteps != 0 {
		n.Applied = drift.StepsText(u.DriftSteps, p) + ", phone " + drift.OffsetText(u.DriftSteps*int(p))
	}
	if !ok {
		return n
	}
	if ud, found := rep.User(u.Name); found {
		for _, o := range ud.Seen {
			n.Offsets = append(n.Offsets, drift.StepsText(o.Steps, p))
		}
		n.Advice = rep.Advice(ud)
		n.Server = ud.Server
	}
	return n
}

// resync shows the resync form for one user, then stores the offset
// measured from the two codes the user reads out.
func (h *Handler) resync(w http.ResponseWriter, r *http.Request) {
	v := backView(r)
	name := oneUser(r)
	if name == "" || h.d.Drift == nil {
		h.renderUsers(w, r, v, http.StatusBadRequest, msgNoneChosen, "")
		return
	}
	code1, code2 := strings.TrimSpace(r.PostFormValue("code1")), strings.TrimSpace(r.PostFormValue("code2"))
	if code1 == "" && code2 == "" {
		h.renderResync(w, r, v, name, http.StatusOK, "")
		return
	}
	steps, err := h.d.Drift.Resync(r.Context(), name, code1, code2)
	if err != nil {
		log := middleware.LoggerFrom(r.Context())
		var far *factor.TooFarError
		switch {
		case errors.As(err, &far):
			p := int(h.d.Drift.Period())
			log.Warn().Str("user", name).Int("offset_steps", far.Steps).Msg("admin: resync refused: offset beyond drift_scan")
			h.renderResync(w, r, v, name, http.StatusUnprocessableEntity,
				fmt.Sprintf(msgResyncTooFar, drift.OffsetText(far.Steps*p), drift.Seconds(far.Max*p)))
		case errors.Is(err, factor.ErrInvalid):
			log.Warn().Str("user", name).Msg("admin: resync refused: codes do not match")
			h.renderResync(w, r, v, name, http.StatusUnprocessableEntity, msgResyncInvalid)
		case errors.Is(err, factor.ErrReplayed):
			log.Warn().Str("user", name).Msg("admin: resync refused: code already used")
			h.renderResync(w, r, v, name, http.StatusUnprocessableEntity, msgResyncReplayed)
		case errors.Is(err, drift.ErrNoTOTP):
			h.renderUsers(w, r, v, http.StatusConflict, msgResyncNoTOTP, "")
		default:
			h.failed(w, r, v, err)
		}
		return
	}
	http.Redirect(w, r, v.url(url.Values{"done": {"resynced"}, "user": {name}, "steps": {strconv.Itoa(steps)}}), http.StatusSeeOther)
}

func (h *Handler) renderResync(w http.ResponseWriter, r *http.Request, v view, name string, status int, errMsg string) {
	p := int(h.d.Drift.Period())
	d := templates.AccountResyncPage{
		Common:    h.common(r, "Resync clock"),
		Nav:       h.nav(r, "users"),
		User:      name,
		Action:    ResyncPath,
		Admin:     true,
		Back:      v.query(),
		CancelURL: v.url(nil),
		Period:    p,
		MaxOffset: drift.Seconds(h.d.Drift.MaxSteps() * p),
	}
	d.Error = errMsg
	h.d.Pages.Render(w, r, status, templates.PageAccountResync, d)
}

// resyncNotice is the users page's message after a resync.
func resyncNotice(name, steps string, period uint) string {
	n, err := strconv.Atoi(steps)
	if err != nil || name == "" || n < -2*86400 || n > 2*86400 {
		return ""
	}
	return fmt.Sprintf("The clock of %s's authenticator is resynchronised: codes are now checked at %s.", name, drift.StepsText(n, period))
}
