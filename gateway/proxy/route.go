package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Default identity header names, used when a Route leaves them empty.
const (
	DefaultUserHeader   = "Remote-User"
	DefaultGroupsHeader = "Remote-Groups"
)

// DefaultUpgradeProtocol is the only protocol a Route with nil
// UpgradeProtocols lets clients switch to.
const DefaultUpgradeProtocol = "websocket"

// ErrInvalidRoute is wrapped by New for every route that cannot be used.
var ErrInvalidRoute = errors.New("proxy: invalid route")

// Route is one upstream and the requests that go to it.
type Route struct {
	// Name identifies the route in logs; unique. Empty gets "route<i>".
	Name string
	// Host is the request host to match (case-insensitive, no port);
	// empty matches any host.
	Host string
	// PathPrefix matches whole path segments; default "/".
	PathPrefix string
	// Upstream is http(s)://host[:port][/base]. See the package doc for
	// how a base path is mapped.
	Upstream *url.URL
	// Policy and the Allow lists are carried for the caller, which
	// authorises; the proxy does not interpret them.
	Policy      string
	AllowUsers  []string
	AllowGroups []string
	// PreserveHost sends the client's Host header upstream instead of the
	// upstream's host.
	PreserveHost bool
	// UserHeader and GroupsHeader carry the Identity upstream; default
	// Remote-User and Remote-Groups.
	UserHeader   string
	GroupsHeader string
	// UpgradeProtocols names the protocols a client may switch to with
	// "Connection: Upgrade" (RFC 9110, section 7.8), compared by name
	// ("websocket" also allows "WebSocket/13") in any letter case. After
	// the switch the connection is a raw tunnel to the upstream. nil
	// means DefaultUpgradeProtocol only; an empty, non-nil list allows no
	// upgrade. Any other upgrade is answered 400 and never reaches the
	// upstream.
	UpgradeProtocols []string
	// TLS to an https upstream: a PEM CA bundle to trust (instead of the
	// system roots), no verification at all, or the name to verify.
	CAFile             string
	InsecureSkipVerify bool
	ServerName         string
}

// Identity is who the gateway asserts to the upstream.
type Identity struct {
	User   string
	Groups []string
}

// normalizeRoute checks r and fills its defaults; i is its index for the
// default name.
func normalizeRoute(r Route, i int) (Route, error) {
	var errs []error
	if r.Name == "" {
		r.Name = fmt.Sprintf("route%d", i)
	}
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w %q: %s", ErrInvalidRoute, r.Name, fmt.Sprintf(format, a...)))
	}

	r.Host = normalizeHost(r.Host)
	if strings.ContainsAny(r.Host, "/?#@* \t") {
		bad("host %q is not a host name", r.Host)
	}

	if r.PathPrefix == "" {
		r.PathPrefix = "/"
	}
	if p, err := normalizePrefix(r.PathPrefix); err != nil {
		bad("path_prefix %q: %v", r.PathPrefix, err)
	} else {
		r.PathPrefix = p
	}

	switch u := r.Upstream; {
	case u == nil:
		bad("no upstream")
	case u.Scheme != "http" && u.Scheme != "https":
		bad("upstream scheme must be http or https, got %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		bad("upstream has no host")
	case u.User != nil:
		bad("upstream must not carry credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		bad("upstream must not have a query or fragment")
	case u.Opaque != "":
		bad("upstream is not a hierarchical URL")
	default:
		c := *u
		if c.Path != "" {
			p, err := normalizePrefix(c.Path)
			if err != nil {
				bad("upstream path %q: %v", c.Path, err)
			}
			c.Path = p
		}
		c.RawPath = ""
		r.Upstream = &c
		if u.Scheme == "http" && (r.CAFile != "" || r.InsecureSkipVerify || r.ServerName != "") {
			bad("upstream TLS options need an https upstream")
		}
	}
	if r.CAFile != "" && r.InsecureSkipVerify {
		bad("ca_file and insecure_skip_verify exclude each other")
	}

	if r.UserHeader == "" {
		r.UserHeader = DefaultUserHeader
	}
	if r.GroupsHeader == "" {
		r.GroupsHeader = DefaultGroupsHeader
	}
	for _, h := range []string{r.UserHeader, r.GroupsHeader} {
		if !httpguts.ValidHeaderFieldName(h) {
			bad("identity header %q is not a valid header name", h)
		}
	}
	if normalizeHeaderName(r.UserHeader) == normalizeHeaderName(r.GroupsHeader) {
		bad("user and groups headers must differ")
	}
	if r.UpgradeProtocols == nil {
		r.UpgradeProtocols = []string{DefaultUpgradeProtocol}
	} else {
		r.UpgradeProtocols = slices.Clone(r.UpgradeProtocols) // an empty list stays empty: no upgrades
	}
	for _, proto := range r.UpgradeProtocols {
		if !httpguts.ValidHeaderFieldName(proto) {
			bad("upgrade protocol %q is not a protocol name (an RFC 9110 token)", proto)
		}
	}
	r.AllowUsers = append([]string(nil), r.AllowUsers...)
	r.AllowGroups = append([]string(nil), r.AllowGroups...)
	return r, errors.Join(errs...)
}

// normalizePrefix cleans a configured path: absolute, no dot segments, no
// trailing slash except for "/".
func normalizePrefix(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", errors.New("must start with /")
	}
	for _, c := range []byte(p) {
		if c < 0x20 || c == 0x7f || strings.IndexByte("\\?#%;", c) >= 0 {
			return "", fmt.Errorf("must not contain %q", c)
		}
	}
	return path.Clean(p), nil
}

// normalizeHost lower-cases h and strips a port, IPv6 brackets and a
// trailing dot.
func normalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimPrefix(h, "[")
	h = strings.TrimSuffix(h, "]")
	return strings.TrimSuffix(h, ".")
}

// Match returns the route for a request host and a path already passed
// through CanonicalPath. The host is compared lower-cased without port or
// trailing dot. Routes naming that host win over host-less routes; within
// each group the longest PathPrefix matching on whole segments wins
// ("/app" matches /app, /app/, /app/x and /app;p, not /apple). The
// returned Route belongs to the Proxy and must not be modified.
func (p *Proxy) Match(host, canonicalPath string) (*Route, bool) {
	host = normalizeHost(host)
	mp := matchPath(canonicalPath)
	var best *Route
	for _, wantHost := range []string{host, ""} {
		for i := range p.routes {
			rt := &p.routes[i].route
			if rt.Host != wantHost {
				continue
			}
			if !hasSegmentPrefix(mp, rt.PathPrefix) {
				continue
			}
			if best == nil || len(rt.PathPrefix) > len(best.PathPrefix) {
				best = rt
			}
		}
		if best != nil {
			return best, true
		}
		if host == "" {
			break
		}
	}
	return nil, false
}
