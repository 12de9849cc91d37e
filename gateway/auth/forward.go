package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/middleware"
)

// ForwardAuthPath is the forward-auth endpoint for an existing reverse
// proxy (nginx auth_request, Traefik forwardAuth, Caddy forward_auth).
const ForwardAuthPath = "/.authgate/auth"

// Errors describing a forward-auth request the gateway cannot read.
var (
	// ErrNotForwarded: the request names no original request (no
	// X-Original-URL, no X-Forwarded-Uri), or its peer is not a trusted
	// proxy so nothing it forwarded counts.
	ErrNotForwarded = errors.New("auth: no original request forwarded by a trusted proxy")
	// ErrBadForwarded: the original request was named, but not usably.
	ErrBadForwarded = errors.New("auth: invalid forwarded original request")
)

// original is the request a proxy asks about.
type original struct {
	Method string
	Scheme string
	// Host is normalised like Client.Host (lower case, default port
	// dropped).
	Host string
	// URL carries the path (still escaped as received) and query.
	URL *url.URL
	// nginx: named by X-Original-URL. nginx's auth_request understands
	// only 2xx, 401 and 403, so a browser challenge is a 401 whose
	// Location names the login page (see configs/nginx-auth-request.conf).
	nginx bool
}

// originalRequest reads the request a trusted proxy forwarded: either
// nginx style (X-Original-URL: scheme://host/path?query) or Traefik/Caddy
// style (X-Forwarded-Proto, -Host, -Uri, -Method; Proto and Host already
// resolved into c by middleware.RealClient). Both at once are refused: a
// client could otherwise add the style its proxy does not overwrite. From
// an untrusted peer nothing is read (ErrNotForwarded).
func originalRequest(r *http.Request, c middleware.Client) (original, error) {
	if !c.ViaTrustedProxy {
		return original{}, ErrNotForwarded
	}
	origURL := r.Header.Values("X-Original-URL")
	fwdURI := r.Header.Values("X-Forwarded-Uri")
	method := r.Method
	if m := r.Header.Values("X-Forwarded-Method"); len(m) > 0 {
		if len(m) != 1 || !validMethod(m[0]) {
			return original{}, fmt.Errorf("%w: X-Forwarded-Method", ErrBadForwarded)
		}
		method = m[0]
	}
	switch {
	case len(origURL) > 0 && len(fwdURI) > 0:
		return original{}, fmt.Errorf("%w: both X-Original-URL and X-Forwarded-Uri", ErrBadForwarded)
	case len(origURL) > 0:
		if len(origURL) != 1 {
			return original{}, fmt.Errorf("%w: repeated X-Original-URL", ErrBadForwarded)
		}
		u, err := url.Parse(origURL[0])
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.Opaque != "" || u.Fragment != "" {
			return original{}, fmt.Errorf("%w: X-Original-URL is not an absolute http(s) URL", ErrBadForwarded)
		}
		host, err := middleware.NormalizeHost(u.Host, u.Scheme)
		if err != nil {
			return original{}, fmt.Errorf("%w: X-Original-URL host: %w", ErrBadForwarded, err)
		}
		return original{Method: method, Scheme: u.Scheme, Host: host, URL: &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}, nginx: true}, nil
	case len(fwdURI) > 0:
		if len(fwdURI) != 1 || !strings.HasPrefix(fwdURI[0], "/") {
			return original{}, fmt.Errorf("%w: X-Forwarded-Uri must be one origin-form request target", ErrBadForwarded)
		}
		if len(r.Header.Values("X-Forwarded-Host")) == 0 || c.Host == "" {
			// Without it c.Host would be the gateway's own address.
			return original{}, fmt.Errorf("%w: X-Forwarded-Uri without X-Forwarded-Host", ErrBadForwarded)
		}
		u, err := url.ParseRequestURI(fwdURI[0])
		if err != nil || u.Fragment != "" {
			return original{}, fmt.Errorf("%w: X-Forwarded-Uri unparsable", ErrBadForwarded)
		}
		return original{Method: method, Scheme: c.Scheme, Host: c.Host, URL: u}, nil
	default:
		return original{}, ErrNotForwarded
	}
}

// validMethod: an RFC 9110 token (the rule header names follow too) of
// reasonable length.
func validMethod(m string) bool {
	return len(m) <= 32 && httpguts.ValidHeaderFieldName(m)
}

// ForwardAuth answers a proxy's question "may this request pass?" for the
// original request it forwards (see originalRequest), applying the same
// route policy as ServeHTTP to the original host and canonical path,
// with the session cookie from the forwarded Cookie header:
//
//   - allowed: 200, no body, the route's identity headers (empty on a
//     bypass route);
//   - not (fully) signed in: 401, except a browser navigation (GET/HEAD
//     asking for HTML), which gets the gateway page on the original host
//     (login with rd = the original URL, verify, enrol, password change):
//     as a 302 for Traefik/Caddy, as a 401 carrying that Location for
//     nginx (X-Original-URL), whose auth_request cannot pass a 3xx;
//   - 403 (allow lists), 404 (no route), 503 (store down) as pages;
//   - peer not a trusted proxy, or no original request named: 401;
//     original request named but unreadable or its path refused: 400.
//
// A half-authenticated session never gets a 200.
func (g *Gate) ForwardAuth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	c := Client(r)
	o, err := originalRequest(r, c)
	if err != nil {
		if errors.Is(err, ErrNotForwarded) {
			g.log(r).Warn().Bool("trusted_peer", c.ViaTrustedProxy).Str("peer", c.Peer.String()).
				Msg("forward auth: no original request from a trusted proxy; denying (check trusted_proxies and the proxy's headers)")
			g.decision(r, "", "", "challenge", "not_forwarded")
			unauthorized(w)
			return
		}
		g.log(r).Warn().Err(err).Msg("forward auth: unusable original request")
		g.decision(r, "", "", "deny", "bad_forwarded")
		g.d.Errors.RenderError(w, r, badRequest(err))
		return
	}
	p, err := proxy.CanonicalPath(o.URL)
	if err != nil {
		g.decision(r, "", "", "deny", "bad_path")
		g.d.Errors.RenderError(w, r, badRequest(err))
		return
	}
	v := g.authorize(r, target{Host: o.Host, Path: p, Secure: o.Scheme == "https"})
	switch v.kind {
	case verdictAllow:
		// Both identity headers are always sent, empty when there is no
		// user (bypass) or no group: a proxy copying them then replaces
		// whatever the client sent instead of keeping it (or, like Caddy
		// 2.6, inserting an unresolved placeholder).
		user, groups := "", ""
		if v.id != nil {
			user, groups = v.id.User, strings.Join(v.id.Groups, ",")
		}
		w.Header().Set(v.route.UserHeader, user)
		w.Header().Set(v.route.GroupsHeader, groups)
		w.WriteHeader(http.StatusOK)
	case verdictChallenge:
		if !browserNavigation(o.Method, r.Header) {
			unauthorized(w)
			return
		}
		login := url.URL{Scheme: o.Scheme, Host: o.Host, Path: v.page}
		if v.keepRD {
			back := url.URL{Scheme: o.Scheme, Host: o.Host, Path: p, RawQuery: o.URL.RawQuery}
			login.RawQuery = "rd=" + url.QueryEscape(back.String())
		}
		w.Header().Set("Location", login.String())
		if o.nginx {
			unauthorized(w)
			return
		}
		w.WriteHeader(http.StatusFound)
	default:
		g.d.Errors.RenderError(w, r, v.err)
	}
}

// unauthorized writes the plain 401 of a challenge (as ServeHTTP's).
func unauthorized(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("401 Unauthorized: sign in at /.authgate/login\n"))
}
