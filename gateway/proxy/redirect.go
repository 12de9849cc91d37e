package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// modifyResponse drops Set-Cookie for the gateway's cookies and rewrites
// Location and Refresh headers that point at the upstream to the public
// origin.
func (p *Proxy) modifyResponse(res *http.Response, rt *Route) error {
	p.filterSetCookies(res.Header)
	if res.Request == nil {
		return nil
	}
	st, _ := res.Request.Context().Value(forwardKey{}).(*forwardState)
	if st == nil {
		return nil
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
type redirectMapper struct {
	scheme  string              // upstream scheme
	origins map[string]struct{} // upstream host[:port], default port elided
	base    string              // escaped upstream base path; "" if none
	prefix  string              // escaped route prefix; "" for "/"
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
	if b := rt.Upstream.Path; b != "" && b != "/" {
		m.base = (&url.URL{Path: b}).EscapedPath()
		if rt.PathPrefix != "/" {
			m.prefix = (&url.URL{Path: rt.PathPrefix}).EscapedPath()
		}
	}
	return m
}

// rewrite maps loc if it is an absolute (or scheme-relative) URL on the
// upstream's origin, or a path-absolute URL under the upstream's base
// path. Foreign and relative URLs are left alone (ok false).
func (m *redirectMapper) rewrite(loc string) (string, bool) {
	u, err := url.Parse(loc)
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
		p, _ := m.mapPath(u.EscapedPath())
		if p == "" {
			p = "/"
		}
		return m.public + p + suffix(u), true
	case u.Scheme == "" && strings.HasPrefix(u.Path, "/"):
		p, ok := m.mapPath(u.EscapedPath())
		if !ok {
			return loc, false
		}
		return p + suffix(u), true
	}
	return loc, false
}

// mapPath replaces the upstream base path with the route prefix; ok is
// false when there is no base or p is not under it (p is returned as is).
func (m *redirectMapper) mapPath(p string) (string, bool) {
	if m.base == "" || !strings.HasPrefix(p, m.base) {
		return p, false
	}
	rest := p[len(m.base):]
	if rest != "" && rest[0] != '/' && rest[0] != ';' {
		return p, false
	}
	out := m.prefix + rest
	if out == "" {
		out = "/"
	}
	return out, true
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

// parseRefresh splits a Refresh header into its delay and URL.
func parseRefresh(v string) (delay, target string, ok bool) {
	i := strings.IndexAny(v, ";,")
	if i < 0 {
		return "", "", false
	}
	delay = strings.TrimSpace(v[:i])
	r := strings.TrimSpace(v[i+1:])
	if len(r) >= 3 && strings.EqualFold(r[:3], "url") {
		if after := strings.TrimSpace(r[3:]); strings.HasPrefix(after, "=") {
			r = strings.TrimSpace(after[1:])
		}
	}
	if len(r) >= 2 && (r[0] == '\'' || r[0] == '"') && r[len(r)-1] == r[0] {
		r = r[1 : len(r)-1]
	}
	if delay == "" || r == "" {
		return "", "", false
	}
	return delay, r, true
}
