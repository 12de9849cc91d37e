package signin

import (
	"net/http"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
)

// logoutPage is a confirm form: a GET never ends a session (so a link or
// image on another site cannot log the user out).
func (h *Handler) logoutPage(w http.ResponseWriter, r *http.Request) {
	_, s, err := h.currentSession(r)
	if err != nil {
		http.Redirect(w, r, auth.LoginPage, http.StatusSeeOther)
		return
	}
	d := logoutData{Common: h.common(r, "Sign out"), User: s.User}
	d.Brand.Host = "" // not signing in: the title and logo only
	h.d.Pages.Render(w, r, http.StatusOK, "logout", d)
}

func (h *Handler) logoutSubmit(w http.ResponseWriter, r *http.Request) {
	if _, s, err := h.currentSession(r); err == nil {
		if err := h.d.Sessions.Destroy(r.Context(), s.IDHash); err != nil {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
		h.decision(r, s.User, "", "logout", "user_request")
		h.audit(r, audit.Logout, s.User, "")
	}
	h.d.Sessions.ClearCookie(w, secure(r))
	http.Redirect(w, r, auth.LoginPage+"?signed_out=1", http.StatusSeeOther)
}
