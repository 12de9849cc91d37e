package account

import (
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/templates"
)

var errPasswordMoved = errors.New("account: password changed meanwhile")

func (h *Handler) passwordPage(w http.ResponseWriter, r *http.Request, c auth.Current) {
	h.renderPassword(w, r, c, h.nextURL(r, r.URL.Query().Get("rd")), http.StatusOK, "")
}

func (h *Handler) renderPassword(w http.ResponseWriter, r *http.Request, c auth.Current, rd string, status int, errMsg string) {
	d := templates.PasswordPage{
		Common:    h.common(r, "Change password"),
		Nav:       nav(c),
		User:      c.User.Name,
		Forced:    c.User.MustChangePassword,
		RD:        rd,
		MinLength: h.o.MinPasswordLen,
	}
	d.Error = errMsg
	h.d.Pages.Render(w, r, status, templates.PagePassword, d)
}

// passwordSubmit changes the password: the current (or temporary)
// password is required. This session stays signed in under a new id; the
// user's other sessions are signed out.
func (h *Handler) passwordSubmit(w http.ResponseWriter, r *http.Request, c auth.Current) {
	ctx := r.Context()
	u := c.User
	rd := h.nextURL(r, r.PostForm.Get("rd"))
	current := r.PostForm.Get("current_password")
	next := r.PostForm.Get("new_password")
	repeat := r.PostForm.Get("new_password_repeat")

	switch {
	case utf8.RuneCountInString(next) < h.o.MinPasswordLen:
		h.renderPassword(w, r, c, rd, http.StatusUnprocessableEntity, fmt.Sprintf(msgPasswordShort, h.o.MinPasswordLen))
		return
	case len(next) > maxPasswordLen || !utf8.ValidString(next):
		h.renderPassword(w, r, c, rd, http.StatusUnprocessableEntity, msgPasswordLong)
		return
	case next != repeat:
		h.renderPassword(w, r, c, rd, http.StatusUnprocessableEntity, msgPasswordRepeat)
		return
	}
	a, refused := h.reserve(w, r, c, proofPassword)
	if a == nil {
		if refused != nil {
			h.renderPassword(w, r, c, rd, refused.status, refused.msg)
		}
		return
	}
	ok, busy := h.verifyPassword(r, a, c, current)
	if busy {
		h.renderPassword(w, r, c, rd, http.StatusServiceUnavailable, msgBusy)
		return
	}
	if !ok {
		h.renderPassword(w, r, c, rd, http.StatusForbidden, msgBadCurrent)
		return
	}
	if next == current {
		h.renderPassword(w, r, c, rd, http.StatusUnprocessableEntity, msgPasswordSame)
		return
	}
	hash, err := h.d.Passwords.Hash(next)
	if errors.Is(err, password.ErrBusy) {
		h.renderPassword(w, r, c, rd, http.StatusServiceUnavailable, msgBusy)
		return
	}
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	now := h.now()
	ns, _, ok := h.changeAndMoveOn(w, r, c, func(x *store.User) error {
		// The password verified above must still be the stored one.
		if x.PasswordHash != u.PasswordHash {
			return errPasswordMoved
		}
		x.PasswordHash = hash
		x.MustChangePassword = false
		x.UpdatedAt = now
		return nil
	}, nil)
	if !ok {
		return
	}
	n, err := h.revokeOtherSessions(ctx, u.Name, ns.IDHash)
	if err != nil {
		h.log(r).Error().Err(err).Str("user", u.Name).Msg("account: other sessions not all revoked after a password change")
	}
	detail := plural(n, "other session") + " signed out"
	if u.MustChangePassword {
		detail = "temporary password replaced; " + detail
	}
	h.record(r, c, audit.PasswordChanged, detail)
	if u.MustChangePassword && rd != "" {
		http.Redirect(w, r, rd, http.StatusSeeOther)
		return
	}
	redirectDone(w, r, "password")
}
