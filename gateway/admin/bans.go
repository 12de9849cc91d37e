package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/templates"
)

// Paths of the Bans tab.
const (
	BansPath    = Prefix + "/bans"
	LiftBanPath = BansPath + "/lift"
)

// Bans lists and lifts sign-in bans (a *users.Service); lifts are
// audited there with the actor from the request context.
type Bans interface {
	Bans(ctx context.Context) ([]users.BanInfo, error)
	LiftBan(ctx context.Context, target string) ([]users.BanInfo, error)
}

const (
	msgBansUnreadable = "The bans cannot be read right now. Please try again."
	msgBanLifted      = "The ban was lifted."
	msgBanGone        = "That ban had already ended or was lifted."
)

func (h *Handler) bansPage(w http.ResponseWriter, r *http.Request) {
	notice := ""
	switch r.URL.Query().Get("done") {
	case "lifted":
		notice = msgBanLifted
	case "gone":
		notice = msgBanGone
	}
	h.renderBans(w, r, http.StatusOK, notice, "")
}

func (h *Handler) renderBans(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string) {
	if h.d.Bans == nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusNotFound, "There is no such page in the admin area.", nil))
		return
	}
	bs, err := h.d.Bans.Bans(r.Context())
	if err != nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, msgBansUnreadable, err))
		return
	}
	now := h.d.Now()
	rows := make([]templates.AdminBanRow, 0, len(bs))
	for _, b := range bs {
		rows = append(rows, templates.AdminBanRow{
			Key:      b.Key,
			IsUser:   b.Kind == store.BanKindUser,
			Subject:  b.Subject,
			Failures: b.Failures,
			Level:    b.Level,
			Since:    formatSeconds(b.Since),
			Until:    formatSeconds(b.Until),
			ISOTime:  b.Until.UTC().Format(time.RFC3339),
			Left:     timeLeft(b.Until.Sub(now)),
		})
	}
	c := h.common(r, "Bans")
	c.Notice, c.Error = notice, errMsg
	h.d.Pages.Render(w, r, status, templates.PageAdminBans, templates.AdminBansPage{
		Common: c,
		Nav:    h.nav(r, "bans"),
		Bans:   rows,
		Max:    users.MaxBansListed,
	})
}

// liftBan lifts the ban whose key the form posts. No confirmation: lifting
// only gives a user or address its attempts back.
func (h *Handler) liftBan(w http.ResponseWriter, r *http.Request) {
	if h.d.Bans == nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusNotFound, "There is no such page in the admin area.", nil))
		return
	}
	key := r.PostFormValue("key")
	if key == "" || len(key) > store.MaxBanKeyLen {
		h.renderBans(w, r, http.StatusBadRequest, "", msgInvalid)
		return
	}
	_, err := h.d.Bans.LiftBan(r.Context(), key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		http.Redirect(w, r, BansPath+"?done=gone", http.StatusSeeOther)
	case errors.Is(err, users.ErrInvalid):
		h.renderBans(w, r, http.StatusBadRequest, "", msgInvalid)
	case err != nil:
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, "The ban could not be lifted. Please try again.", err))
	default:
		http.Redirect(w, r, BansPath+"?done=lifted", http.StatusSeeOther)
	}
}

// timeLeft shows a remaining duration coarsely: "45 s", "14 min", "3 h 20 min".
func timeLeft(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	default:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
}
