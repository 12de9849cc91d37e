package account

import (
	"net/http"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/templates"
)

// revoke signs out one of the user's own sessions, picked by its short
// id. Only the signed-in user's sessions are searched, so an id of
// someone else's session matches nothing.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, c auth.Current) {
	ctx := r.Context()
	id := r.PostForm.Get("session")
	if !validPublicID(id) {
		h.renderOverview(w, r, c, http.StatusNotFound, "", msgSessionGone)
		return
	}
	list, err := h.d.Sessions.ListUserSessions(ctx, c.User.Name)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	var match []string
	for _, s := range list {
		if s.User == c.User.Name && publicID(s.IDHash) == id {
			match = append(match, s.IDHash)
		}
	}
	switch {
	case len(match) != 1:
		// None, or (vanishingly unlikely) ambiguous: refuse either way.
		h.renderOverview(w, r, c, http.StatusNotFound, "", msgSessionGone)
		return
	case match[0] == c.Session.IDHash:
		h.renderOverview(w, r, c, http.StatusConflict, "", msgSessionCurrent)
		return
	}
	if err := h.d.Sessions.DeleteSession(ctx, match[0]); err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	h.record(r, c, audit.SessionRevoked, "session "+id)
	redirectDone(w, r, "revoked")
}

// revokeOthers signs out every session of the user but this one, after a
// confirmation.
func (h *Handler) revokeOthers(w http.ResponseWriter, r *http.Request, c auth.Current) {
	if r.PostForm.Get("confirm") != "1" {
		h.d.Pages.Render(w, r, http.StatusOK, pageConfirm, templates.ConfirmPage{
			Common:       h.common(r, "Sign out other sessions"),
			Nav:          nav(c),
			Question:     "Sign out every other browser and device signed in to your account? This session stays signed in.",
			Action:       PathRevokeOthers,
			ConfirmLabel: "Sign out other sessions",
			CancelURL:    PathOverview,
			Danger:       true,
		})
		return
	}
	n, err := h.revokeOtherSessions(r.Context(), c.User.Name, c.Session.IDHash)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	h.record(r, c, audit.SessionsRevoked, plural(n, "other session")+" signed out")
	redirectDone(w, r, "revoked-others")
}
