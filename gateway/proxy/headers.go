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

// maxFoldedHeader bounds the header names stripIdentity folds on the
// stack; a longer name cannot be an identity header (none is that long).
const maxFoldedHeader = 64

// stripIdentity deletes every header whose folded name is an identity
// header, whatever its spelling in h. It folds each name into a stack
// buffer, so it allocates nothing.
func (p *Proxy) stripIdentity(h http.Header) {
	var buf [maxFoldedHeader]byte
	for k := range h {
		if len(k) > len(buf) || len(k) > p.longestStrip {
			continue
		}
		for i := 0; i < len(k); i++ {
			c := k[i]
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c == '_':
				c = '-'
			}
			buf[i] = c
		}
		if _, ok := p.strip[string(buf[:len(k)])]; ok {
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

// filterSetCookies drops Set-Cookie headers for the gateway's own cookies
// so an upstream cannot overwrite or plant a gateway session.
func (p *Proxy) filterSetCookies(h http.Header) {
	lines := h.Values("Set-Cookie")
	if len(lines) == 0 || len(p.stripCookies) == 0 {
		return
	}
	kept := lines[:0:0]
	for _, line := range lines {
		name, _, _ := strings.Cut(line, "=")
		if _, drop := p.stripCookies[strings.TrimSpace(name)]; drop {
			continue
		}
		kept = append(kept, line)
	}
	if len(kept) == 0 {
		h.Del("Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}
