package proxy

import (
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/middleware"
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
	if !isUpgrade(h) {
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

// isUpgrade reports whether h asks for a protocol switch, as ReverseProxy
// decides ("upgrade" among the Connection tokens).
func isUpgrade(h http.Header) bool {
	return httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade")
}

// noteRefusedUpgrade logs an upgrade request (a WebSocket, mostly) that
// the upstream answered with another status than 101 Switching Protocols,
// as one warning with the route, the status and a hint, and marks it in
// the access log ("upgrade_refused"). The answer itself goes to the
// client unchanged. Without this line the refusal showed only as the
// status of an ordinary-looking request, and the panel's page as
// "Connection failed".
func (p *Proxy) noteRefusedUpgrade(res *http.Response, rt *Route) {
	out := res.Request
	if res.StatusCode == http.StatusSwitchingProtocols || out == nil || !isUpgrade(out.Header) {
		return
	}
	hint := "the panel's own log says why; with preserve_host false the panel gets its own Host and, " +
		"for a page served through this gateway, its own Origin (rewritten by the gateway); " +
		"another site's Origin is passed on unchanged and refused on purpose"
	if rt.PreserveHost {
		hint = "the panel sees the gateway's public Host and Origin: allow the gateway's public origin " +
			"in the panel (Cockpit: Origins in cockpit.conf), or set preserve_host: false"
	}
	middleware.SetUpgradeRefused(out.Context())
	p.log(out.Context()).Warn().Str("route", rt.Name).Int("status", res.StatusCode).
		Str("upgrade", truncate(out.Header.Get("Upgrade"), 100)).
		Str("origin", truncate(out.Header.Get("Origin"), 200)).
		Str("hint", hint).
		Msg("proxy: upstream refused the upgrade")
}

// truncate shortens client-supplied text for the log.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
