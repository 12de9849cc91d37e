package proxy

import (
	"net/http"
	"strings"
)

// normalizeHeaderName folds a header name so that every spelling an
// upstream might read as the same header compares equal: case-insensitive,
// with '_' and '-' alike (CGI-style servers map both to HTTP_REMOTE_USER).
func normalizeHeaderName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// stripClientHeaders deletes every header whose folded name is in
// p.strip (identity headers and gatewayOwnedHeaders), whatever its
// spelling in h.
func (p *Proxy) stripClientHeaders(h http.Header) {
	for k := range h {
		if _, ok := p.strip[normalizeHeaderName(k)]; ok {
			delete(h, k)
		}
	}
}

// filterCookies removes the gateway's own cookies from the Cookie
// header(s), keeping every other cookie byte for byte, and folds what is
// left into one Cookie header.
func (p *Proxy) filterCookies(h http.Header) {
	lines := h.Values("Cookie")
	if len(lines) == 0 || len(p.stripCookies) == 0 {
		return
	}
	var b strings.Builder
	b.Grow(len(lines[0]))
	for _, line := range lines {
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			name, _, _ := strings.Cut(pair, "=")
			if _, drop := p.stripCookies[strings.TrimSpace(name)]; drop {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(pair)
		}
	}
	if b.Len() == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = []string{b.String()}
}

// filterSetCookies drops the upstream's Set-Cookie headers that a browser
// could store as one of the gateway's cookies, so a panel cannot
// overwrite or plant a gateway session or CSRF cookie:
//
//   - a cookie named like one of the gateway's cookies after trimming
//     whitespace and ignoring case (browsers compare the "__Host-" and
//     "__Secure-" prefixes in any case, and the gateway's names come
//     with both prefixes);
//   - a cookie without a name. Browsers store "=authgate_session=x" and
//     "authgate_session" (no "=") as a nameless cookie and send back only
//     its value, "authgate_session=x" or "authgate_session", which reads
//     as the gateway's own cookie.
func (p *Proxy) filterSetCookies(h http.Header) {
	lines := h.Values("Set-Cookie")
	var kept []string
	for _, line := range lines {
		if !p.gatewayCookieName(setCookieName(line)) {
			kept = append(kept, line)
		}
	}
	switch {
	case len(kept) == len(lines):
	case len(kept) == 0:
		h.Del("Set-Cookie")
	default:
		h["Set-Cookie"] = kept
	}
}

// setCookieName returns the name a browser gives the cookie of a
// Set-Cookie header (RFC 6265bis, section 5.6): the text before the first
// "=" of the part before the first ";", without surrounding whitespace;
// "" when that part has no "=".
func setCookieName(line string) string {
	pair, _, _ := strings.Cut(line, ";")
	name, _, ok := strings.Cut(pair, "=")
	if !ok {
		return ""
	}
	return strings.TrimSpace(name)
}

// gatewayCookieName reports whether a cookie called name could be taken
// for one of the gateway's cookies: no name at all, or one of the
// gateway's names in any letter case.
func (p *Proxy) gatewayCookieName(name string) bool {
	if name == "" {
		return true
	}
	for c := range p.stripCookies {
		if strings.EqualFold(name, c) {
			return true
		}
	}
	return false
}
