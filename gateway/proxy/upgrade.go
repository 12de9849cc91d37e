package proxy

import (
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// refusedUpgrade returns the Upgrade header of an upgrade request that
// offers a protocol the route does not allow, or "" when the request is
// no upgrade or offers only allowed protocols. A request is an upgrade
// when its Connection header has the "upgrade" token, as ReverseProxy
// decides (without it ReverseProxy drops Upgrade as a hop-by-hop header).
// Protocols are compared by name, without any "/version", in any letter
// case. Every Upgrade line counts, not only the first, which is the one
// ReverseProxy forwards.
func refusedUpgrade(h http.Header, allowed []string) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade") {
		return ""
	}
	for _, line := range h["Upgrade"] {
		for offer := range strings.SplitSeq(line, ",") {
			offer = strings.TrimSpace(offer)
			if offer == "" {
				continue // empty list element, allowed by RFC 9110
			}
			name, _, _ := strings.Cut(offer, "/")
			if !slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, name) }) {
				return strings.Join(h["Upgrade"], ", ")
			}
		}
	}
	return ""
}

// truncate shortens client-supplied text for the log.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
