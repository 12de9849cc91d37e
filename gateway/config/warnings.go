package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// Warnings lists settings that are legal but weaken security, each citing
// its key and line. It is meant to be logged at start-up after Validate
// succeeds, but never fails on an invalid configuration.
func (c *Config) Warnings() []Problem {
	var ws []Problem
	warn := func(key, format string, args ...any) {
		ws = append(ws, Problem{Key: key, Line: c.Line(key), Msg: fmt.Sprintf(format, args...)})
	}
	if u, err := url.Parse(c.PublicURL); c.PublicURL != "" && err == nil && u.Scheme == "http" {
		warn("public_url", "uses http: passwords, codes and session cookies cross the network unencrypted")
	}
	if c.Store.Driver == DriverRedis && c.Store.Redis.TLS.Enabled && c.Store.Redis.TLS.InsecureSkipVerify {
		warn("store.redis.tls.insecure_skip_verify", "the Redis server's TLS certificate is not verified")
	}
	var twoFactorRoutes []string
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.Policy == PolicyBypass {
			warn(p+".policy", "is bypass: %s is reachable without logging in", r.Upstream)
		}
		if r.Policy == PolicyTwoFactor {
			twoFactorRoutes = append(twoFactorRoutes, fmt.Sprintf("%q", r.Name))
		}
		for j, proto := range r.UpgradeProtocols {
			if strings.EqualFold(proto, DefaultUpgradeProtocol) {
				continue
			}
			anyRequest := ""
			if strings.EqualFold(proto, "h2c") {
				anyRequest = " (h2c: any HTTP request, to any path of the upstream)"
			}
			warn(fmt.Sprintf("%s.upgrade_protocols[%d]", p, j),
				"lets clients switch to %q: the connection becomes a raw tunnel to %s, and what they send through it%s is not checked against path_prefix or the route's policy",
				proto, r.Upstream, anyRequest)
		}
		tls := r.UpstreamTLS
		if u, err := url.Parse(r.Upstream); err == nil && u.Scheme == "http" &&
			(tls.CAFile != "" || tls.ServerName != "" || tls.InsecureSkipVerify) {
			warn(p+".upstream_tls", "has no effect: the upstream is plain http")
		} else if tls.InsecureSkipVerify {
			warn(p+".upstream_tls.insecure_skip_verify", "the upstream's TLS certificate is not verified; prefer ca_file")
		}
	}
	if c.TwoFactor.Mode == ModeOff && len(twoFactorRoutes) > 0 {
		warn("two_factor.mode", "is off: routes with policy two_factor (%s) ask for a password only", strings.Join(twoFactorRoutes, ", "))
	}
	if c.Session.Domain != "" && c.Session.CookieName == DefaultCookieName {
		warn("session.domain", "is set (%s) with the default cookie name %s: another authgate under the same domain would send the browser two cookies of that name; give each gateway its own session.cookie_name", c.Session.Domain, DefaultCookieName)
	}
	if behindTerminatorUntrusted(c) {
		warn("trusted_proxies", "is empty while listen (%s) is loopback and public_url is https: the gateway sits behind a TLS terminator whose X-Forwarded-For it ignores, so every client shares one address and one client's failed sign-ins can get that address banned for everyone; list the terminator (e.g. 127.0.0.1)", c.Listen)
	}
	for i, s := range c.TrustedProxies {
		if p, err := parseProxy(s); err == nil && p.Bits() == 0 {
			warn(fmt.Sprintf("trusted_proxies[%d]", i), "%s trusts every client: anyone can forge X-Forwarded-For", p)
		}
	}
	if c.WebAuthn.Enabled && (c.Line("webauthn") > 0 || strings.HasPrefix(strings.ToLower(c.PublicURL), "https:")) {
		// Only where passkeys were evidently meant to work: the section is
		// in the file, or public_url is https (http draws its own warning).
		if p := c.Passkeys(); !p.Available {
			warn("webauthn", "passkeys are enabled but browsers will not offer them: %s", p.Reason)
		}
	}
	return ws
}

// behindTerminatorUntrusted reports the usual shape of a gateway behind a
// local TLS terminator that was not listed in trusted_proxies: loopback
// listener, https public URL, gateway not serving TLS itself, no
// trusted proxies.
func behindTerminatorUntrusted(c *Config) bool {
	if len(c.TrustedProxies) > 0 || c.TLS.Mode != TLSOff {
		return false
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Scheme != "https" {
		return false
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
