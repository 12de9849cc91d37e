package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// ErrBadPath is returned by CanonicalPath for request paths the gateway
// refuses to route: encoded slashes or backslashes, control bytes, invalid
// percent-encoding, non-absolute paths and dot segments carrying path
// parameters ("..;"). Callers answer 400.
var ErrBadPath = errors.New("proxy: bad request path")

// CanonicalPath returns the decoded, normalised path of u: the single path
// used both to match a route and to forward upstream.
//
// It percent-decodes the escaped path once, rejecting (ErrBadPath) invalid
// escapes, encoded '/' or '\' (%2F, %5C), literal backslashes, NUL and
// other control bytes, and segments "." or ".." followed by ";parameters"
// (which some servlet containers treat as dot segments). It then resolves
// "." and ".." segments (RFC 3986 remove_dot_segments; ".." never climbs
// above the root) and collapses repeated slashes. A trailing slash is kept
// (also the one implied by a final "." or ".." segment). The query string
// is ignored.
func CanonicalPath(u *url.URL) (string, error) {
	if u == nil {
		return "", fmt.Errorf("%w: no URL", ErrBadPath)
	}
	if u.Opaque != "" {
		return "", fmt.Errorf("%w: opaque URL", ErrBadPath)
	}
	decoded, err := decodePath(u.EscapedPath())
	if err != nil {
		return "", err
	}
	if decoded == "" {
		return "/", nil
	}
	if decoded[0] != '/' {
		return "", fmt.Errorf("%w: path is not absolute", ErrBadPath)
	}
	for seg := range strings.SplitSeq(decoded, "/") {
		if name, _, hasParams := strings.Cut(seg, ";"); hasParams && (name == "." || name == "..") {
			return "", fmt.Errorf("%w: dot segment with parameters", ErrBadPath)
		}
	}
	trailing := strings.HasSuffix(decoded, "/") ||
		strings.HasSuffix(decoded, "/.") || strings.HasSuffix(decoded, "/..")
	clean := path.Clean(decoded)
	if trailing && clean != "/" {
		clean += "/"
	}
	return clean, nil
}

// decodePath percent-decodes an escaped path, refusing anything that could
// be read differently by the gateway and an upstream.
func decodePath(escaped string) (string, error) {
	var b strings.Builder
	b.Grow(len(escaped))
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		encoded := false
		if c == '%' {
			if i+2 >= len(escaped) || !isHex(escaped[i+1]) || !isHex(escaped[i+2]) {
				return "", fmt.Errorf("%w: invalid percent-encoding", ErrBadPath)
			}
			c = unhex(escaped[i+1])<<4 | unhex(escaped[i+2])
			i += 2
			encoded = true
		}
		switch {
		case encoded && c == '/':
			return "", fmt.Errorf("%w: encoded slash", ErrBadPath)
		case c == '\\':
			return "", fmt.Errorf("%w: backslash", ErrBadPath)
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("%w: control byte", ErrBadPath)
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// matchPath is the form of a canonical path used for prefix matching:
// path parameters (";jsessionid=...") are cut from every segment, so
// "/admin;x" is matched like "/admin" the way servlet containers serve it.
func matchPath(canonical string) string {
	if !strings.Contains(canonical, ";") {
		return canonical
	}
	segs := strings.Split(canonical, "/")
	for i, s := range segs {
		segs[i], _, _ = strings.Cut(s, ";")
	}
	return strings.Join(segs, "/")
}

// hasSegmentPrefix reports whether p (a match path) lies under prefix on
// whole segments. prefix is normalised: "/" or without trailing slash.
func hasSegmentPrefix(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/'
}

// segmentCount is the number of segments in a normalised prefix.
func segmentCount(prefix string) int {
	if prefix == "/" {
		return 0
	}
	return strings.Count(prefix, "/")
}

// restAfter returns what follows the first n segment names of canonical:
// the parameters of the n-th segment (if any) and everything after it.
// canonical must have matched a prefix of n segments.
func restAfter(canonical string, n int) string {
	pos := 0
	for i := range n {
		if pos >= len(canonical) {
			return ""
		}
		pos++ // the '/'
		end := strings.IndexByte(canonical[pos:], '/')
		if end < 0 {
			end = len(canonical) - pos
		}
		if i == n-1 {
			if semi := strings.IndexByte(canonical[pos:pos+end], ';'); semi >= 0 {
				end = semi
			}
		}
		pos += end
	}
	return canonical[pos:]
}
