package proxy

import (
	"net/url"
	"strconv"
	"strings"
)

// This file is the tests' model of a browser following a redirect,
// written from the WHATWG URL Standard and the HTML Standard's refresh
// steps independently of redirect.go, so the redirect tests and fuzz
// targets judge the gateway's output by where a browser would really go.
// It was checked against Node's WHATWG URL implementation on the payloads
// in testdata/open_redirects.txt.

// browserOrigin returns the origin ("https://host[:port]", default port
// left out) a browser navigates to when it follows ref on the page base,
// or a value that is no http(s) origin ("javascript:", "invalid") when it
// would not land on a web origin. Hosts are compared percent-decoded and
// lower-cased, without IDNA mapping: enough to tell the public origin from
// every other.
func browserOrigin(ref string, base *url.URL) string {
	s := strings.TrimFunc(ref, func(r rune) bool { return r <= ' ' })
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	slash := func(c byte) bool { return c == '/' || c == '\\' }
	twoSlashes := func(s string) bool { return len(s) >= 2 && slash(s[0]) && slash(s[1]) }

	scheme, rest := "", s
	if i := schemeEnd(s); i > 0 {
		scheme, rest = strings.ToLower(s[:i]), s[i+1:]
	}
	switch {
	case scheme == "" || scheme == base.Scheme:
		// A relative reference, or "https:..." on an https page: only two
		// slashes (either kind) start an authority; anything else is a
		// path on the page's own origin.
		if twoSlashes(rest) {
			return authorityOrigin(base.Scheme, rest)
		}
		return authorityOrigin(base.Scheme, "//"+base.Host)
	case scheme == "http" || scheme == "https":
		// Another special scheme than the page's: any number of slashes,
		// even none, precede the authority.
		return authorityOrigin(scheme, rest)
	}
	return scheme + ":"
}

// schemeEnd returns the index of the ":" ending a URL scheme at the start
// of s, or -1.
func schemeEnd(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return i
		default:
			return -1
		}
	}
	return -1
}

// authorityOrigin reads the authority that follows any slashes at the
// start of rest ("special authority ignore slashes state").
func authorityOrigin(scheme, rest string) string {
	rest = strings.TrimLeft(rest, `/\`)
	if i := strings.IndexAny(rest, `/\?#`); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i:], "]") {
		host, port = rest[:i], rest[i+1:]
	}
	host, err := url.PathUnescape(host)
	forbidden := func(r rune) bool { return r <= ' ' || r == 0x7f || strings.ContainsRune("#%/:<>?@\\^|", r) }
	if err != nil || host == "" || !strings.HasPrefix(host, "[") && strings.ContainsFunc(host, forbidden) {
		return "invalid" // the browser refuses the URL
	}
	host = strings.ToLower(host)
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 || strings.HasPrefix(port, "+") {
			return "invalid"
		}
		port = strconv.Itoa(n)
		if scheme == "http" && n == 80 || scheme == "https" && n == 443 {
			port = ""
		}
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// browserRefreshURL returns the URL string a browser follows for a
// Refresh header value (HTML Standard, "shared declarative refresh
// steps"), or false when it would not navigate anywhere else.
func browserRefreshURL(v string) (string, bool) {
	pos := 0
	ws := func(c byte) bool { return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ' }
	at := func(pred func(byte) bool) bool { return pos < len(v) && pred(v[pos]) }
	is := func(chars string) func(byte) bool {
		return func(c byte) bool { return strings.IndexByte(chars, c) >= 0 }
	}
	digit := is("0123456789")
	for at(ws) {
		pos++
	}
	digits := pos
	for at(digit) {
		pos++
	}
	if pos == digits && !at(is(".")) {
		return "", false
	}
	for at(is("0123456789.")) {
		pos++
	}
	if pos < len(v) {
		if !at(is(";,")) && !at(ws) {
			return "", false
		}
		for at(ws) {
			pos++
		}
		if at(is(";,")) {
			pos++
		}
		for at(ws) {
			pos++
		}
	}
	if pos >= len(v) {
		return "", false // reload of the same page
	}
	urlString := v[pos:]
	quote := byte(0)
	// "url", whitespace, "=", whitespace may come first; only with all of
	// them, or without a "u" at all, can a quote follow.
	switch {
	case at(is("Uu")):
		pos++
		if !at(is("Rr")) {
			return urlString, true
		}
		pos++
		if !at(is("Ll")) {
			return urlString, true
		}
		pos++
		for at(ws) {
			pos++
		}
		if !at(is("=")) {
			return urlString, true
		}
		pos++
		for at(ws) {
			pos++
		}
	}
	if at(is(`'"`)) {
		quote = v[pos]
		pos++
	}
	urlString = v[pos:]
	if quote != 0 {
		if i := strings.IndexByte(urlString, quote); i >= 0 {
			urlString = urlString[:i]
		}
	}
	return urlString, true
}
