package auth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
)

// Gate handles every request outside /.authgate/: it finds the route,
// checks the session against the route's policy and forwards, or
// challenges. Any error denies.
func (h *Handler) Gate(w http.ResponseWriter, r *http.Request) {
	p, err := proxy.CanonicalPath(r.URL)
	if err != nil {
		h.decision(r, "", "", "deny", "bad_path")
		h.d.Pages.RenderError(w, r, badRequest(err))
		return
	}
	if IsGatewayPath(p) {
		h.d.Pages.RenderError(w, r, notFound())
		return
	}
	c := client(r)
	rt, ok := h.d.Upstreams.Match(c.Host, p)
	if !ok {
		h.d.Pages.RenderError(w, r, notFound())
		return
	}
	middleware.SetRouteName(r.Context(), rt.Name)
	if rt.Policy == policyBypass {
		h.d.Upstreams.Forward(w, r, rt, nil)
		return
	}
	original := p
	if r.URL.RawQuery != "" {
		original += "?" + r.URL.RawQuery
	}

	_, s, err := h.d.Sessions.FromRequest(r, secure(r))
	if err != nil {
		if !errors.Is(err, session.ErrNoSession) {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
		h.decision(r, "", rt.Name, "challenge", "no_session")
		h.challenge(w, r, "/.authgate/login", original)
		return
	}
	if s.Stage != store.StageFull {
		h.decision(r, s.User, rt.Name, "challenge", "second_factor_pending")
		h.challenge(w, r, "/.authgate/verify", "")
		return
	}
	u, err := h.d.Users.GetUser(r.Context(), s.User)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
		_ = h.d.Sessions.Destroy(r.Context(), s.IDHash)
		h.decision(r, s.User, rt.Name, "challenge", "user_gone")
		h.challenge(w, r, "/.authgate/login", original)
		return
	}
	if u.MustChangePassword {
		// An admin reset the password: nothing is reached with the
		// temporary one until it is changed.
		h.decision(r, u.Name, rt.Name, "challenge", "password_change_required")
		h.challenge(w, r, PasswordPage, original)
		return
	}
	if rt.Policy != policyPassword {
		vals, err := h.d.Settings.Current(r.Context())
		if err != nil {
			h.d.Pages.RenderError(w, r, unavailable(err))
			return
		}
		if vals.Mode != settings.ModeOff && !s.TwoFactor {
			next := "/.authgate/enroll"
			if u.HasTOTP() {
				next = "/.authgate/verify"
			}
			h.decision(r, u.Name, rt.Name, "challenge", "second_factor_required")
			h.challenge(w, r, next, original)
			return
		}
	}
	if !allowed(rt, u) {
		h.decision(r, u.Name, rt.Name, "deny", "not_in_allow_list")
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusForbidden, "Your account may not use this application.", nil))
		return
	}
	h.decision(r, u.Name, rt.Name, "allow", "session")
	h.d.Upstreams.Forward(w, r, rt, &proxy.Identity{User: u.Name, Groups: u.Groups})
}

const (
	policyBypass   = "bypass"
	policyPassword = "password"
)

// challenge sends browsers to a gateway page and answers other clients
// (API calls, XHR, POSTs) with a plain 401.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, page, rd string) {
	if wantsHTML(r) {
		target := page
		if rd != "" {
			target += "?rd=" + url.QueryEscape(rd)
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("401 Unauthorized: sign in at /.authgate/login\n"))
}

// wantsHTML: a navigation by a browser.
func wantsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// allowed applies the route's allow lists; empty lists allow every user.
func allowed(rt *proxy.Route, u store.User) bool {
	if len(rt.AllowUsers) == 0 && len(rt.AllowGroups) == 0 {
		return true
	}
	if slices.Contains(rt.AllowUsers, u.Name) {
		return true
	}
	for _, g := range u.Groups {
		if slices.Contains(rt.AllowGroups, g) {
			return true
		}
	}
	return false
}

func badRequest(err error) *web.Error {
	return web.Errorf(http.StatusBadRequest, "The request could not be understood.", err)
}

func isNoSession(err error) bool { return errors.Is(err, session.ErrNoSession) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
