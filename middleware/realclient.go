package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Errors from ResolveClient.
var (
	ErrInvalidRemoteAddr     = errors.New("middleware: unparsable remote address")
	ErrInvalidForwardedFor   = errors.New("middleware: invalid X-Forwarded-For")
	ErrInvalidForwardedProto = errors.New("middleware: invalid X-Forwarded-Proto")
	ErrInvalidForwardedHost  = errors.New("middleware: invalid X-Forwarded-Host")
	ErrInvalidHost           = errors.New("middleware: invalid Host")
)

// MaxForwardedFor is the longest X-Forwarded-For chain accepted (over all
// header instances); longer chains are rejected as invalid.
const MaxForwardedFor = 64

// RealClient resolves who sent each request (see ResolveClient), stores
// the Client in the context (ClientFrom), adds client_ip to the request
// logger and reports the client to the access log. A request whose
// remote address, Host or (from a trusted proxy) X-Forwarded-* headers
// cannot be parsed fails closed with a plain-text 400; the reason is
// logged at warn level.
func RealClient(trusted []netip.Prefix) func(http.Handler) http.Handler {
	trusted = append([]netip.Prefix(nil), trusted...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := ResolveClient(r, trusted)
			ctx := r.Context()
			if err != nil {
				LoggerFrom(ctx).Warn().Err(err).Msg("rejecting request with untrustworthy client information")
				SetResult(ctx, "bad_client_info")
				http.Error(w, "400 bad request", http.StatusBadRequest)
				return
			}
			ann := AnnotationsFrom(ctx)
			ann.setClient(c)
			ann.addLogField("client_ip", c.IP.String())
			next.ServeHTTP(w, r.WithContext(WithClient(ctx, c)))
		})
	}
}

// ResolveClient computes the Client for r without touching the context.
//
// The peer comes from r.RemoteAddr. Only if the peer is in trusted:
//   - X-Forwarded-For (every header instance, comma-separated lists, bare
//     IPs only) is validated as a whole; the client IP is the right-most
//     address not in trusted, or the left-most if all are trusted;
//   - X-Forwarded-Proto, if present, must be one header that is exactly
//     "http" or "https";
//   - X-Forwarded-Host, if present, must be one valid host[:port].
//
// From an untrusted peer every X-Forwarded-* header (and Forwarded) is
// ignored: the scheme comes from r.TLS and the host from r.Host.
// Hosts are lower-cased and lose the scheme's default port; an empty Host
// (HTTP/1.0) stays empty.
func ResolveClient(r *http.Request, trusted []netip.Prefix) (Client, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return Client{}, fmt.Errorf("%w: %w", ErrInvalidRemoteAddr, err)
	}
	peer := ap.Addr().WithZone("").Unmap()
	c := Client{IP: peer, Peer: peer, Scheme: "http"}
	if r.TLS != nil {
		c.Scheme = "https"
	}
	rawHost, hostErr := r.Host, ErrInvalidHost

	if isTrusted(peer, trusted) {
		c.ViaTrustedProxy = true
		if vals := r.Header.Values("X-Forwarded-For"); len(vals) > 0 {
			chain, err := ParseForwardedFor(vals)
			if err != nil {
				return Client{}, err
			}
			c.ForwardedFor = chain
			c.IP = clientFromChain(chain, trusted)
		}
		if vals := r.Header.Values("X-Forwarded-Proto"); len(vals) > 0 {
			if len(vals) != 1 || (vals[0] != "http" && vals[0] != "https") {
				return Client{}, ErrInvalidForwardedProto
			}
			c.Scheme = vals[0]
		}
		if vals := r.Header.Values("X-Forwarded-Host"); len(vals) > 0 {
			if len(vals) != 1 || vals[0] == "" {
				return Client{}, ErrInvalidForwardedHost
			}
			rawHost, hostErr = vals[0], ErrInvalidForwardedHost
		}
	}

	if rawHost != "" {
		h, err := NormalizeHost(rawHost, c.Scheme)
		if err != nil {
			return Client{}, fmt.Errorf("%w: %w", hostErr, err)
		}
		c.Host = h
	}
	return c, nil
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func clientFromChain(chain []netip.Addr, trusted []netip.Prefix) netip.Addr {
	for i := len(chain) - 1; i >= 0; i-- {
		if !isTrusted(chain[i], trusted) {
			return chain[i]
		}
	}
	return chain[0]
}

// ParseForwardedFor parses X-Forwarded-For header values (one per header
// instance, each a comma-separated list) into addresses, left to right.
// Every element must be a bare IPv4 or IPv6 address without zone; empty
// elements, ports, brackets, "unknown" and chains longer than
// MaxForwardedFor are rejected with ErrInvalidForwardedFor. IPv4-mapped
// IPv6 addresses are returned as IPv4.
func ParseForwardedFor(values []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			elem = strings.Trim(elem, " \t")
			if len(out) == MaxForwardedFor {
				return nil, fmt.Errorf("%w: more than %d addresses", ErrInvalidForwardedFor, MaxForwardedFor)
			}
			a, err := netip.ParseAddr(elem)
			if err != nil {
				return nil, fmt.Errorf("%w: element %d unparsable", ErrInvalidForwardedFor, len(out))
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("%w: element %d has a zone", ErrInvalidForwardedFor, len(out))
			}
			out = append(out, a.Unmap())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidForwardedFor)
	}
	return out, nil
}

// NormalizeHost validates a Host-style value host[:port] and returns it
// lower-cased, without the port when that is scheme's default (80 for
// http, 443 for https). The host must be a DNS name (letters, digits,
// '-', '_'; labels of 1–63 characters, no trailing dot, not ending in a
// numeric label that browsers would read as an IPv4 address), a dotted
// IPv4 address, or a bracketed IPv6 address without zone. The port must be
// 1–65535 without leading zeros.
func NormalizeHost(hostport, scheme string) (string, error) {
	s := strings.ToLower(hostport)
	if s == "" || len(s) > 261 {
		return "", errors.New("bad length")
	}
	var host, port string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", errors.New("unterminated IPv6 literal")
		}
		host, port = s[:end+1], s[end+1:]
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", errors.New("bad IPv6 literal")
		}
		if port != "" {
			if port[0] != ':' {
				return "", errors.New("garbage after IPv6 literal")
			}
			port = port[1:]
			if port == "" {
				return "", errors.New("empty port")
			}
		}
	} else {
		host = s
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
			if port == "" {
				return "", errors.New("empty port")
			}
		}
		if err := checkHostname(host); err != nil {
			return "", err
		}
	}
	if port != "" {
		if len(port) > 5 || port[0] == '0' || strings.TrimLeft(port, "0123456789") != "" {
			return "", errors.New("bad port")
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", errors.New("bad port")
		}
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			port = ""
		}
	}
	if port == "" {
		return host, nil
	}
	return host + ":" + port, nil
}

// checkHostname accepts a dotted IPv4 address or a DNS name (already
// lower-cased).
func checkHostname(h string) error {
	if h == "" || len(h) > 253 {
		return errors.New("bad hostname length")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Is4() {
			return nil
		}
		return errors.New("IPv6 address must be bracketed")
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return errors.New("bad hostname label")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("hostname label starts or ends with '-'")
		}
		for i := 0; i < len(l); i++ {
			ch := l[i]
			if (ch < 'a' || ch > 'z') && (ch < '0' || ch > '9') && ch != '-' && ch != '_' {
				return errors.New("bad hostname character")
			}
		}
	}
	if looksNumeric(labels[len(labels)-1]) {
		// WHATWG URL parsing would treat the name as an IPv4 address
		// ("1.2.3", "0x7f.1", "127.1").
		return errors.New("hostname ends in a numeric label")
	}
	return nil
}

func looksNumeric(l string) bool {
	if strings.HasPrefix(l, "0x") {
		return strings.Trim(l[2:], "0123456789abcdef") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}
