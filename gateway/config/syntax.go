package config

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// checkHostPort returns why s is not host:port, or "". With anyHost the
// host may be empty (listen on every interface).
func checkHostPort(s string, anyHost bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "missing or malformed port"
	}
	if host == "" && !anyHost {
		return "missing host"
	}
	if host != "" && !isIP(host) && !validHostname(host) {
		return "invalid host"
	}
	if !validPort(port, anyHost) {
		if anyHost {
			return "port must be a number from 0 to 65535"
		}
		return "port must be a number from 1 to 65535"
	}
	return ""
}

func validPort(s string, zeroOK bool) bool {
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 || n < 0 || (n == 0 && !zeroOK) {
		return false
	}
	return s[0] != '+' && s[0] != '-'
}

// checkHTTPURL returns why s is not an absolute http(s) URL with a host,
// or "".
func checkHTTPURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "":
		return "must be an absolute http or https URL"
	case u.User != nil:
		return "must not contain a user name or password"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return "must not have a query string or fragment"
	case u.Port() != "" && !validPort(u.Port(), false):
		return "port must be between 1 and 65535"
	}
	return ""
}

func isIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

// validHostname reports whether s is a DNS name of letters, digits and
// hyphens (an optional trailing dot allowed).
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token (header and cookie names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// canonicalHeader is http.CanonicalHeaderKey without importing net/http.
func canonicalHeader(s string) string {
	b := []byte(strings.ToLower(s))
	upper := true
	for i, c := range b {
		if upper && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		upper = c == '-'
	}
	return string(b)
}
