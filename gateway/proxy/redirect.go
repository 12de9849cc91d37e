package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// modifyResponse drops Set-Cookie for the gateway's cookies, maps the
// Path of the others when the route maps paths, and rewrites Location
// and Refresh headers that point at the upstream to the public origin.
func (p *Proxy) modifyResponse(res *http.Response, rt *Route) error {
	p.filterSetCookies(res.Header)
	if res.Request == nil {
		return nil
	}
	st, _ := res.Request.Context().Value(forwardKey{}).(*forwardState)
	if st == nil {
		return nil
	}
	if cookies := res.Header["Set-Cookie"]; len(cookies) > 0 && mapsPaths(rt) {
		if pm := newPathMapping(rt); pm.on {
			for i, c := range cookies {
				cookies[i] = pm.mapSetCookiePath(c, st.path)
			}
		}
	}
	loc, ref := res.Header.Get("Location"), res.Header.Get("Refresh")
	if loc == "" && ref == "" {
		return nil // most responses: nothing to map
	}
	m := newRedirectMapper(rt, st.sentHost, st.client.Scheme, st.client.Host)
	if loc != "" {
		if n, ok := m.rewrite(loc); ok {
			res.Header.Set("Location", n)
		}
	}
	if ref != "" {
		if n, ok := m.rewriteRefresh(ref); ok {
			res.Header.Set("Refresh", n)
		}
	}
	return nil
}

// redirectMapper maps URLs the upstream produced about itself to the URLs
// the client must use (nginx "proxy_redirect default").
//
// A rewritten value never leaves the public origin. Values are read the
// way a browser reads them (browserForm), and every path the mapper
// writes goes through publicPath, so "/base//evil.example/x" under a
// route "/" becomes "/evil.example/x", never the scheme-relative
// "//evil.example/x". Values it does not rewrite (foreign hosts, other
// schemes, relative references, anything it cannot parse) are passed on
// exactly as the panel sent them: sending the browser elsewhere is then
// the panel's own choice, not something the gateway made up.
type redirectMapper struct {
	scheme  string              // upstream scheme
	origins map[string]struct{} // upstream host[:port], default port elided
	paths   pathMapping         // upstream path -> route prefix
	public  string              // public origin, "https://host[:port]"
}

func newRedirectMapper(rt *Route, sentHost, publicScheme, publicHost string) *redirectMapper {
	m := &redirectMapper{
		scheme:  rt.Upstream.Scheme,
		origins: make(map[string]struct{}, 2),
		public:  publicScheme + "://" + publicHost,
	}
	for _, h := range []string{rt.Upstream.Host, sentHost} {
		if h != "" {
			m.origins[stripDefaultPort(strings.ToLower(h), m.scheme)] = struct{}{}
		}
	}
	m.paths = newPathMapping(rt)
	return m
}

// rewrite maps loc if it is an absolute (or scheme-relative) URL on the
// upstream's origin, or a path-absolute URL under the upstream's base
// path. Foreign and relative URLs are left alone (ok false).
func (m *redirectMapper) rewrite(loc string) (string, bool) {
	u, err := url.Parse(browserForm(loc))
	if err != nil || u.Opaque != "" || u.User != nil {
		return loc, false
	}
	switch {
	case u.Host != "":
		scheme := u.Scheme
		if scheme == "" {
			scheme = m.scheme // "//host/path"
		}
		if !strings.EqualFold(scheme, m.scheme) {
			return loc, false
		}
		if _, ok := m.origins[stripDefaultPort(strings.ToLower(u.Host), m.scheme)]; !ok {
			return loc, false
		}
		p := u.EscapedPath()
		if p == "" {
			p = "/" // "http://upstream" is "http://upstream/"
		}
		p, _ = m.mapPath(p)
		return m.public + publicPath(p) + suffix(u), true
	case u.Scheme == "" && strings.HasPrefix(u.Path, "/"):
		p, ok := m.mapPath(u.EscapedPath())
		if !ok {
			return loc, false
		}
		return publicPath(p) + suffix(u), true
	}
	return loc, false
}

// mapPath replaces the upstream path with the route prefix; ok is false
// when the route does not map paths or p is not under the upstream path
// (p is returned as is).
func (m *redirectMapper) mapPath(p string) (string, bool) {
	return m.paths.back(p)
}

// publicPath makes p (an escaped path) safe to write after the public
// origin or on its own as a Location: it starts with exactly one "/".
//
// Without this, a base path mapped onto the route "/" turns the panel's
// own "/base//evil.example/x" into "//evil.example/x", which a browser
// reads as a link to evil.example; "/base;@evil.example/x" would become
// "https://panel.example;@evil.example/x" (user "panel.example;" at
// evil.example). Leading slashes are collapsed into one rather than the
// redirect being refused: the gateway canonicalises "//evil.example/x" to
// "/evil.example/x" when the browser follows it anyway, so the browser
// lands where the doubled path would have gone, on the public origin.
// Backslashes, tabs and newlines, which browsers also read as (or drop
// around) slashes, are gone by now: browserForm removed them before
// parsing and EscapedPath percent-encodes every other control byte.
// Percent-encoded slashes ("/%2F/x") are no risk: browsers never decode
// them when resolving a URL.
func publicPath(p string) string {
	return "/" + strings.TrimLeft(p, "/")
}

func suffix(u *url.URL) string {
	var b strings.Builder
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteString("?")
		b.WriteString(u.RawQuery)
	}
	if u.Fragment != "" {
		b.WriteString("#")
		b.WriteString(u.EscapedFragment())
	}
	return b.String()
}

// tabsAndNewlines are removed from URLs by browsers wherever they are.
var tabsAndNewlines = strings.NewReplacer("\t", "", "\n", "", "\r", "")

// browserForm returns v as a browser's URL parser reads it (WHATWG URL
// Standard, for the http and https schemes): leading and trailing C0
// controls and spaces are dropped, tabs and newlines are removed
// wherever they are, and before the query or fragment a backslash counts
// as a slash. Deciding on what Go's parser sees instead would treat
// "/\evil.example" or "/\t/evil.example" as paths where the browser sees
// the host evil.example.
func browserForm(v string) string {
	v = strings.TrimFunc(v, func(r rune) bool { return r <= ' ' })
	v = tabsAndNewlines.Replace(v)
	end := strings.IndexAny(v, "?#")
	if end < 0 {
		end = len(v)
	}
	return strings.ReplaceAll(v[:end], `\`, "/") + v[end:]
}

// rewriteRefresh maps the URL of a Refresh header ("5; url=http://...",
// also "5;URL='...'" and "5, url=...") and writes it back as
// "<delay>; url=<url>".
func (m *redirectMapper) rewriteRefresh(v string) (string, bool) {
	delay, target, ok := parseRefresh(v)
	if !ok {
		return v, false
	}
	n, ok := m.rewrite(target)
	if !ok {
		return v, false
	}
	return delay + "; url=" + n, true
}

// parseRefresh splits a Refresh header into its delay and URL the way
// browsers do (the HTML Standard's "shared declarative refresh steps"),
// so the URL the gateway rewrites is the one the browser would follow:
// the delay is the leading digits (digits and dots after them are
// ignored; "" before a dot means 0); then whitespace, one ";" or "," and
// whitespace; then an optional "url" "=" (any case, whitespace around the
// "="); then the URL, which ends at its closing quote if it starts with
// one. ok is false when a browser would ignore the header or there is no
// URL (a plain reload).
func parseRefresh(v string) (delay, target string, ok bool) {
	isSpace := func(c byte) bool { return strings.IndexByte("\t\n\f\r ", c) >= 0 }
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	i := 0
	skip := func(in func(byte) bool) {
		for i < len(v) && in(v[i]) {
			i++
		}
	}
	skip(isSpace)
	start := i
	skip(isDigit)
	delay = v[start:i]
	if delay == "" {
		if i >= len(v) || v[i] != '.' {
			return "", "", false
		}
		delay = "0"
	}
	skip(func(c byte) bool { return isDigit(c) || c == '.' })
	if i < len(v) {
		if v[i] != ';' && v[i] != ',' && !isSpace(v[i]) {
			return "", "", false
		}
		skip(isSpace)
		if i < len(v) && (v[i] == ';' || v[i] == ',') {
			i++
		}
		skip(isSpace)
	}
	target = v[i:]
	if len(v)-i >= 3 && strings.EqualFold(v[i:i+3], "url") {
		j := i + 3
		for j < len(v) && isSpace(v[j]) {
			j++
		}
		if j < len(v) && v[j] == '=' {
			i = j + 1
			skip(isSpace)
			target = v[i:]
		}
	}
	if target != "" && (target[0] == '\'' || target[0] == '"') {
		if end := strings.IndexByte(target[1:], target[0]); end >= 0 {
			target = target[1 : 1+end]
		} else {
			target = target[1:]
		}
	}
	if target == "" {
		return "", "", false
	}
	return delay, target, true
}
