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

// ServeHTTP gates every request outside /.authgate/: it finds the route,
// checks the session against the route's policy and forwards, or
// challenges. Any error denies.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := proxy.CanonicalPath(r.URL)
	if err != nil {
		g.decision(r, "", "", "deny", "bad_path")
		g.d.Errors.RenderError(w, r, badRequest(err))
		return
	}
	c := Client(r)
	v := g.authorize(r, target{Host: c.Host, Path: p, Secure: c.Scheme == "https"})
	switch v.kind {
	case verdictAllow:
		if v.id != nil && g.d.Streams != nil {
			// A request with a session runs only while the session
			// passes (streams.go).
			g.forwardWatched(w, r, v, target{Host: c.Host, Path: p, Secure: c.Scheme == "https"}, c)
			return
		}
		g.d.Upstreams.Forward(w, r, v.route, v.id)
	case verdictChallenge:
		rd := ""
		if v.keepRD {
			rd = p
			if r.URL.RawQuery != "" {
				rd += "?" + r.URL.RawQuery
			}
		}
		g.challenge(w, r, v.page, rd)
	default:
		g.d.Errors.RenderError(w, r, v.err)
	}
}

// target is the request being authorised: where it goes, by the
// gateway's own reading (ServeHTTP) or as a trusted proxy forwarded it
// (ForwardAuth).
type target struct {
	// Host is the public host (Client.Host form).
	Host string
	// Path is the CanonicalPath of the request.
	Path string
	// Secure: the request came over https (picks the cookie name).
	Secure bool
}

type verdictKind int

const (
	// verdictAllow: pass, asserting id (nil on a bypass route).
	verdictAllow verdictKind = iota + 1
	// verdictChallenge: send the user to page (browsers) or 401.
	verdictChallenge
	// verdictError: answer err (400, 403, 404 or 503).
	verdictError
)

// verdict is the outcome of authorize: the one policy decision shared by
// ServeHTTP and ForwardAuth.
type verdict struct {
	kind  verdictKind
	route *proxy.Route
	id    *proxy.Identity
	// page is the gateway page of a challenge; keepRD says whether the
	// original URL goes along as rd.
	page   string
	keepRD bool
	err    *web.Error
}

func deny(err *web.Error) verdict { return verdict{kind: verdictError, err: err} }

func challengeTo(page string, keepRD bool) verdict {
	return verdict{kind: verdictChallenge, page: page, keepRD: keepRD}
}

// authorize applies the route policy for t to the session cookie of r and
// logs the decision. Any error denies; a session short of what the route
// needs is challenged, never allowed.
func (g *Gate) authorize(r *http.Request, t target) verdict {
	if IsGatewayPath(t.Path) {
		return deny(notFound())
	}
	rt, ok := g.d.Upstreams.Match(t.Host, t.Path)
	if !ok {
		return deny(notFound())
	}
	middleware.SetRouteName(r.Context(), rt.Name)
	if rt.Policy == policyBypass {
		return verdict{kind: verdictAllow, route: rt}
	}

	sg, err := g.SignedIn(r, t.Secure)
	if err != nil {
		if !errors.Is(err, session.ErrNoSession) {
			return deny(unavailable(err))
		}
		g.decision(r, "", rt.Name, "challenge", "no_session")
		return challengeTo(LoginPage, true)
	}
	s, u := sg.Session, sg.User
	if s.Stage != store.StageFull {
		g.decision(r, s.User, rt.Name, "challenge", "second_factor_pending")
		return challengeTo(VerifyPage, false)
	}
	if u.MustChangePassword {
		// An admin reset the password: nothing is reached with the
		// temporary one until it is changed.
		g.decision(r, u.Name, rt.Name, "challenge", "password_change_required")
		return challengeTo(PasswordPage, true)
	}
	if rt.Policy != policyPassword {
		if sg.Mode != settings.ModeOff && !s.TwoFactor {
			next := EnrollPage
			if u.HasSecondFactor() {
				next = VerifyPage
			}
			g.decision(r, u.Name, rt.Name, "challenge", "second_factor_required")
			return challengeTo(next, true)
		}
	}
	if !allowed(rt, u) {
		g.decision(r, u.Name, rt.Name, "deny", "not_in_allow_list")
		return deny(web.Errorf(http.StatusForbidden, "Your account may not use this application.", nil))
	}
	g.decision(r, u.Name, rt.Name, "allow", "session")
	return verdict{kind: verdictAllow, route: rt, id: &proxy.Identity{User: u.Name, Groups: u.Groups}}
}

const (
	policyBypass   = "bypass"
	policyPassword = "password"
)

// challenge sends browsers to a gateway page and answers other clients
// (API calls, XHR, POSTs) with a plain 401.
func (g *Gate) challenge(w http.ResponseWriter, r *http.Request, page, rd string) {
	if wantsHTML(r) {
		target := page
		if rd != "" {
			target += "?rd=" + url.QueryEscape(rd)
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	unauthorized(w)
}

// wantsHTML: a navigation by a browser.
func wantsHTML(r *http.Request) bool { return browserNavigation(r.Method, r.Header) }

// browserNavigation reports whether a request with this method and these
// headers is a browser loading a page (GET/HEAD asking for HTML, not a
// WebSocket upgrade).
func browserNavigation(method string, h http.Header) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	if strings.EqualFold(h.Get("Upgrade"), "websocket") {
		return false
	}
	return strings.Contains(h.Get("Accept"), "text/html")
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

func isNoSession(err error) bool { return errors.Is(err, session.ErrNoSession) }
