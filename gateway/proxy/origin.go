package proxy

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/middleware"
)

// rewriteOrigin makes a same-origin request look same-origin to the
// upstream when the gateway sends the upstream's own Host (PreserveHost
// off), as nginx "proxy_set_header Origin $upstream_origin" would. Panels
// that guard WebSockets or state-changing requests compare Origin with
// the Host they see (Cockpit refuses its WebSocket with "received request
// from bad Origin", Django and Rails refuse the POST): the browser's
// Origin names the gateway, the Host names the upstream, and every such
// request failed behind a gateway with default settings.
//
// Only an Origin equal to the request's own public origin (c's scheme and
// host, compared without a default port and in any letter case) is
// rewritten, to the upstream's origin, and only on upgrade requests and
// methods other than GET, HEAD, OPTIONS and TRACE, the requests on which
// browsers send Origin for same-origin requests. A cross-site Origin, a
// "null" one, several Origin lines or an unparsable value pass unchanged,
// so the upstream still refuses them: the gateway never turns another
// site's request into one the panel takes for its own.
func rewriteOrigin(out, in *http.Request, rt *Route, c middleware.Client) {
	if rt.PreserveHost {
		return
	}
	vals := out.Header.Values("Origin")
	if len(vals) != 1 {
		return
	}
	if !isUpgrade(in.Header) && isSafeMethod(in.Method) {
		return
	}
	if !sameOrigin(vals[0], c) {
		return
	}
	out.Header.Set("Origin", upstreamOrigin(rt))
}

// isSafeMethod reports the methods browsers send no Origin with on a
// same-origin request and that change nothing (RFC 9110, section 9.2.1).
func isSafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// sameOrigin reports whether origin (an Origin header value) is the public
// origin of c: "scheme://host[:port]" and nothing else.
func sameOrigin(origin string, c middleware.Client) bool {
	if c.Scheme == "" || c.Host == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != c.Scheme || u.Host == "" {
		return false
	}
	host, err := middleware.NormalizeHost(u.Host, scheme)
	return err == nil && host == c.Host
}

// upstreamOrigin is the origin a browser would send for a page of rt's
// upstream, e.g. "http://127.0.0.1:9090".
func upstreamOrigin(rt *Route) string {
	scheme := rt.Upstream.Scheme
	return scheme + "://" + stripDefaultPort(strings.ToLower(rt.Upstream.Host), scheme)
}
