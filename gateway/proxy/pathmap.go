package proxy

import (
	"net/url"
	"strings"
)

// How a route maps paths (see the package doc, "Upstream URLs with a
// path"). Everything here works on the one canonical request path
// (CanonicalPath) that Match used; nothing is decoded again.

// mapsPaths reports whether rt's upstream URL has a path ("/" included)
// that replaces the matched PathPrefix. An upstream without a path gets
// the canonical path unchanged.
func mapsPaths(rt *Route) bool {
	return rt.Upstream.Path != ""
}

// upstreamPath maps a canonical request path (under rt.PathPrefix) to
// the path sent upstream. With an upstream path B (normalised: "/" or
// without trailing slash) the matched prefix is replaced by B:
// /P/x -> B/x, /P -> B, /P/ -> B/. B "/" contributes no segment, so
// /P/x -> /x and /P -> / (never "//x"). Path parameters of the last
// prefix segment stay on the last segment of B ("/P;js=1/x" ->
// "B;js=1/x"; with B "/": "/;js=1/x"). The canonical path has no dot
// segments, so the result never leaves B.
func upstreamPath(rt *Route, canon string) string {
	if !mapsPaths(rt) {
		return canon
	}
	base := strings.TrimSuffix(rt.Upstream.Path, "/")
	out := base + restAfter(canon, segmentCount(rt.PathPrefix))
	if out == "" || out[0] != '/' {
		out = "/" + out
	}
	return out
}

// slashRedirect returns where a request for rt's path_prefix itself,
// without its trailing slash, is sent instead: the prefix with the slash
// (escaped). Only for a route that maps its prefix to another upstream
// path ("/netdata" to "http://u/"): the panel then answers with its base
// page one level up from where the browser believes it is, so the page's
// relative links ("static/app.js") would resolve beside the prefix
// instead of under it. nginx answers such a request the same way for
// "location /netdata/ { proxy_pass http://u/; }". ok is false for every
// other request, and for a route whose upstream sees the request's own
// path (no upstream path, or the same one): the panel decides there.
func slashRedirect(rt *Route, canon string) (loc string, ok bool) {
	if canon != rt.PathPrefix {
		return "", false
	}
	pm := newPathMapping(rt)
	if !pm.on || pm.prefix == "" {
		return "", false
	}
	return pm.prefix + "/", true
}

// pathMapping maps paths the upstream sends back (redirects, cookie
// paths) to public paths, in escaped form.
type pathMapping struct {
	on     bool   // the route maps paths and the mapping is not the identity
	base   string // escaped upstream path without trailing slash; "" for "/"
	prefix string // escaped route prefix; "" for "/"
}

func newPathMapping(rt *Route) pathMapping {
	b := rt.Upstream.Path
	if !mapsPaths(rt) || b == rt.PathPrefix {
		return pathMapping{}
	}
	pm := pathMapping{on: true}
	if b != "/" {
		pm.base = (&url.URL{Path: b}).EscapedPath()
	}
	if rt.PathPrefix != "/" {
		pm.prefix = (&url.URL{Path: rt.PathPrefix}).EscapedPath()
	}
	return pm
}

// back maps p, an escaped upstream path, to the public path: the base is
// replaced by the route prefix. ok is false (p returned as is) when the
// mapping is off or p does not lie under the base on whole segments. The
// result may be "" (the base itself under the route "/"); callers make
// it absolute.
func (pm pathMapping) back(p string) (string, bool) {
	if !pm.on || !strings.HasPrefix(p, pm.base) {
		return p, false
	}
	rest := p[len(pm.base):]
	if rest != "" && rest[0] != '/' && rest[0] != ';' {
		return p, false
	}
	return pm.prefix + rest, true
}

// root is the public path covering the whole route: the prefix, "/" for
// the route "/".
func (pm pathMapping) root() string {
	if pm.prefix == "" {
		return "/"
	}
	return pm.prefix
}

// cookiePath maps the Path attribute of an upstream cookie (cp; "" when
// the cookie has none or one a browser ignores) set in answer to the
// upstream request path upPath (decoded, as sent). The aim: the browser
// sends the cookie for exactly the public paths whose upstream path the
// panel's Path covers.
//
//   - No Path: the path a browser would default to (RFC 6265, section
//     5.1.4) for upPath, mapped as below, so a cookie the panel set for
//     "/" on the request /P (upstream "/") does not fall back to the
//     public "/".
//   - The upstream base itself (B, or "/" when B is "/"): the route
//     prefix, "/P" (covers /P and /P/...; "/P/" would miss /P, which
//     maps to B).
//   - Under the base: mapped like a redirect, B/x -> /P/x, B/ -> /P/.
//   - Anything else (an ancestor of B such as "/", or an unrelated path):
//     the route prefix too. The browser then sends it for every request
//     of the route (for an ancestor that is what the panel meant; an
//     unrelated path was never sent through this route at all), and
//     browsers do not send a panel's cookie to routes outside P or to
//     the gateway's own pages.
func (pm pathMapping) cookiePath(cp, upPath string) string {
	if cp == "" {
		cp = defaultCookiePath((&url.URL{Path: upPath}).EscapedPath())
		// A ";" taken from the request path would end the Path attribute
		// and start another ("/x;Domain=example.com/y"): use the path
		// above its segment instead.
		if i := strings.IndexByte(cp, ';'); i >= 0 {
			cp = cp[:strings.LastIndexByte(cp[:i], '/')+1]
		}
	}
	mapped, ok := pm.back(cp)
	if !ok || mapped == pm.prefix || pm.base == "" && cp == "/" || len(mapped) > maxCookiePath {
		// Outside B, B itself, "/" for B "/", or too long for browsers.
		return pm.root()
	}
	return mapped
}

// defaultCookiePath is the default-path of RFC 6265, section 5.1.4, for
// an escaped request path.
func defaultCookiePath(p string) string {
	if p == "" || p[0] != '/' {
		return "/"
	}
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/"
	}
	return p[:i]
}

// maxCookiePath is the longest Path attribute value browsers accept
// (RFC 6265bis, section 5.6); a longer one is ignored.
const maxCookiePath = 1024

// mapSetCookiePath rewrites the Path of one Set-Cookie header line under
// pm for the upstream request path upPath. The name=value pair and every
// other attribute are kept byte for byte; every Path attribute is removed
// and one "Path=" with the mapped value is appended (browsers use the
// last one). "__Host-" cookies are returned unchanged: browsers store
// them only with Path=/.
func (pm pathMapping) mapSetCookiePath(line, upPath string) string {
	if hasPrefixFold(setCookieName(line), "__Host-") {
		return line
	}
	pair, attrs, hasAttrs := strings.Cut(line, ";")
	var b strings.Builder
	b.Grow(len(line) + len(pm.prefix) + 8)
	b.WriteString(pair)
	cp := ""
	for av := range strings.SplitSeq(attrs, ";") {
		if !hasAttrs {
			break
		}
		name, value, _ := strings.Cut(av, "=")
		if strings.EqualFold(strings.TrimSpace(name), "path") {
			// The last Path counts; one that does not start with "/" (or is
			// too long) means the default path, like no Path at all.
			cp = strings.TrimSpace(value)
			if !strings.HasPrefix(cp, "/") || len(cp) > maxCookiePath {
				cp = ""
			}
			continue
		}
		b.WriteByte(';')
		b.WriteString(av)
	}
	b.WriteString("; Path=")
	b.WriteString(pm.cookiePath(cp, upPath))
	return b.String()
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// DescribePaths says in one line what r does to request paths, for
// "authgate config check", e.g.
//
//	/netdata/… → http://127.0.0.1:19999/… (prefix replaced; /netdata → /)
//
// r need not be normalised; a route New would refuse gets "" (config
// check reports its problems instead).
func (r Route) DescribePaths() string {
	nr, err := normalizeRoute(r, 0)
	if err != nil {
		return ""
	}
	host := nr.Host
	from := host + strings.TrimSuffix(nr.PathPrefix, "/") + "/…"
	origin := nr.Upstream.Scheme + "://" + nr.Upstream.Host
	if !mapsPaths(&nr) {
		return from + " → " + origin + strings.TrimSuffix(nr.PathPrefix, "/") + "/… (path unchanged)"
	}
	base := strings.TrimSuffix(nr.Upstream.Path, "/")
	to := origin + base + "/…"
	if base == strings.TrimSuffix(nr.PathPrefix, "/") {
		return from + " → " + to + " (path unchanged)"
	}
	if nr.PathPrefix == "/" {
		return from + " → " + to + " (upstream path prepended)"
	}
	return from + " → " + to + " (prefix replaced; " + host + nr.PathPrefix + " redirected to " + nr.PathPrefix + "/)"
}
