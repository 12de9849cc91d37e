package auth

import (
	"net/url"
	"strings"
)

// SafeRedirect returns rd if it is a safe place to send the user after a
// login, else "/". Safe means: a path on this origin ("/x", never "//x"
// or "/\x"), or an absolute http(s) URL whose host is the current public
// host or one of allowedHosts. Anything with control or space characters,
// backslashes, userinfo or an unparsable form is refused.
func SafeRedirect(rd, currentHost string, allowedHosts []string) string {
	if rd == "" || len(rd) > 2048 {
		return "/"
	}
	for i := 0; i < len(rd); i++ {
		// ASCII only (real URLs arrive percent-encoded), no controls, no
		// spaces, no backslashes.
		if c := rd[i]; c < 0x21 || c >= 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(rd)
	if err != nil || u.Opaque != "" || u.User != nil {
		return "/"
	}
	if u.Scheme == "" && u.Host == "" {
		if !strings.HasPrefix(rd, "/") || strings.HasPrefix(rd, "//") {
			return "/"
		}
		// A decoded path must not turn into a scheme-relative URL either.
		// Nor may its decoded form hide another slash, a dot segment or
		// a second layer of encoding.
		p, err := url.PathUnescape(u.EscapedPath())
		if err != nil || strings.ContainsFunc(p, func(c rune) bool { return c < 0x21 || c >= 0x7f || c == '\\' || c == '%' }) || strings.Contains(p, "//") ||
			strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
			return "/"
		}
		return u.RequestURI() + fragment(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "/"
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.HasSuffix(host, ".") {
		return "/"
	}
	if hostEqual(u.Host, currentHost) {
		return u.String()
	}
	for _, h := range allowedHosts {
		if strings.EqualFold(host, h) {
			return u.String()
		}
	}
	return "/"
}

func fragment(u *url.URL) string {
	if u.Fragment == "" {
		return ""
	}
	return "#" + u.EscapedFragment()
}

// hostEqual compares host[:port] values case-insensitively.
func hostEqual(a, b string) bool {
	return a != "" && strings.EqualFold(a, b)
}
