package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"
)

// WebAuthn configures passkeys and security keys (WebAuthn).
type WebAuthn struct {
	// Enabled offers passkeys and security keys (default true). They are
	// still unavailable where browsers refuse them (see Passkeys()).
	Enabled bool `yaml:"enabled"`
	// RPID is the relying party ID passkeys are bound to: a domain equal
	// to every origin's host or a parent domain of it. Default: the host
	// of public_url (no port). Changing it makes the passkeys registered
	// under the old one unusable.
	RPID string `yaml:"rp_id"`
	// RPName is the name browsers show when a passkey is created; ""
	// (default) = the caller uses ui.title or the Issuer.
	RPName string `yaml:"rp_name"`
	// Origins are the origins (scheme://host[:port], no path) browsers
	// run the ceremonies from. Default: [origin of public_url].
	Origins []string `yaml:"origins"`
	// UserVerification is "preferred" (default), "required" or
	// "discouraged": whether the authenticator must check a PIN or
	// biometric. Passwordless sign-in always requires it.
	UserVerification string `yaml:"user_verification"`
	// Attestation is "none" (default), "indirect" or "direct".
	Attestation string `yaml:"attestation"`
	// Passwordless lets users sign in with a passkey alone (default
	// false); user verification is always required on that path.
	Passwordless bool `yaml:"passwordless"`
	// Timeout is how long a browser ceremony (and its challenge) lasts:
	// 30s to 10m, default 2m.
	Timeout time.Duration `yaml:"timeout"`
}

// Values of webauthn.user_verification.
const (
	UserVerificationPreferred   = "preferred"
	UserVerificationRequired    = "required"
	UserVerificationDiscouraged = "discouraged"
)

// Values of webauthn.attestation.
const (
	AttestationNone     = "none"
	AttestationIndirect = "indirect"
	AttestationDirect   = "direct"
)

// Defaults and bounds of the webauthn keys.
const (
	DefaultUserVerification = UserVerificationPreferred
	DefaultAttestation      = AttestationNone
	DefaultWebAuthnTimeout  = 2 * time.Minute
	MinWebAuthnTimeout      = 30 * time.Second
	MaxWebAuthnTimeout      = 10 * time.Minute
)

// rpIDRule ends every message about an RP ID that does not fit an origin.
const rpIDRule = "browsers only accept an RP ID equal to the origin's host or a parent domain of it"

// PasskeySettings is the webauthn section resolved against public_url.
type PasskeySettings struct {
	// Available says whether browsers will offer passkeys at all.
	Available bool
	// Reason says why not, in one sentence an admin can act on; "" when
	// Available.
	Reason string
	// RPID and RPName are the relying party (RPName "" = the caller's
	// choice: ui.title or the Issuer).
	RPID, RPName string
	// Origins are serialised like a browser's origin: lower-case
	// scheme://host[:port], the default port left out, no slash.
	Origins                       []string
	UserVerification, Attestation string
	Passwordless                  bool
	Timeout                       time.Duration
}

// Passkeys resolves the webauthn section against public_url: the values
// in force (defaults filled in) and whether browsers will offer passkeys
// at all. Available is false, with Reason saying why in one sentence an
// admin can act on, when the section is disabled, when there is no
// origin (no public_url and no webauthn.origins), or when an origin is
// not a secure context: browsers offer WebAuthn only on https:// origins
// and on http://localhost (and *.localhost); 127.0.0.1 is not usable
// because an RP ID cannot be an IP address.
func (c *Config) Passkeys() PasskeySettings {
	w := c.WebAuthn
	s := PasskeySettings{
		RPName:           w.RPName,
		UserVerification: w.UserVerification,
		Attestation:      w.Attestation,
		Passwordless:     w.Passwordless,
		Timeout:          w.Timeout,
	}
	if s.UserVerification == "" {
		s.UserVerification = DefaultUserVerification
	}
	if s.Attestation == "" {
		s.Attestation = DefaultAttestation
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultWebAuthnTimeout
	}
	origins, bad := c.passkeyOrigins()
	for _, o := range origins {
		s.Origins = append(s.Origins, o.origin)
	}
	var rpFrom string
	s.RPID, rpFrom = c.passkeyRPIDFrom(origins)
	s.Reason = c.passkeyReason(s.RPID, rpFrom, origins, bad)
	s.Available = s.Reason == ""
	return s
}

// passkeyReason is why browsers will not offer passkeys, "" when they will.
func (c *Config) passkeyReason(rpID, rpFrom string, origins []passkeyOrigin, bad int) string {
	w := c.WebAuthn
	switch {
	case !w.Enabled:
		return "passkeys are turned off (webauthn.enabled: false)"
	case bad >= 0:
		return fmt.Sprintf("webauthn.origins[%d] is not an origin such as \"https://panel.example.com\"; run authgate config check", bad)
	case len(origins) == 0:
		if c.PublicURL != "" {
			return fmt.Sprintf("public_url %s is not an http(s) URL to offer passkeys on: set public_url (https://…) or webauthn.origins", quoteValue(c.PublicURL))
		}
		return "passkeys need an origin: set public_url (https://…) or webauthn.origins"
	case w.RPID != "" && checkRPID(w.RPID) != "":
		return fmt.Sprintf("webauthn.rp_id %s %s", quoteValue(w.RPID), checkRPID(w.RPID))
	}
	for _, o := range origins {
		if a, err := netip.ParseAddr(o.host); err == nil {
			hint := "reach the gateway by a host name over https://"
			if a.IsLoopback() {
				hint = fmt.Sprintf("use %s locally, or a host name over https://", localhostOrigin(o))
			}
			return fmt.Sprintf("origin %q has an IP address as host, and an RP ID cannot be an IP address: %s", o.origin, hint)
		}
		if !o.secure() {
			return fmt.Sprintf("origin %q is not a secure context: browsers offer passkeys only on https:// origins and on http://localhost; serve the gateway over https and set %s to its https:// URL", o.origin, o.source())
		}
	}
	for _, o := range origins {
		switch {
		case !rpIDMatches(rpID, o.host) && w.RPID != "":
			return fmt.Sprintf("webauthn.rp_id %q does not match origin %q (%s)", rpID, o.origin, rpIDRule)
		case !rpIDMatches(rpID, o.host):
			return fmt.Sprintf("origin %q does not match the RP ID %q, %s (%s); set webauthn.rp_id to a parent domain of every origin", o.origin, rpID, rpFrom, rpIDRule)
		}
		if rpID != o.host && isPublicSuffix(rpID) {
			return fmt.Sprintf("webauthn.rp_id %q is a public suffix, which browsers refuse as the RP ID of origin %q", rpID, o.origin)
		}
	}
	return ""
}

// passkeyOrigin is one origin in force.
type passkeyOrigin struct {
	origin string // serialised: scheme://host[:port]
	scheme string
	host   string // lower case, no brackets, no port
	port   string // "" for the scheme's default port
	index  int    // in webauthn.origins; -1 = from public_url
}

func (o passkeyOrigin) secure() bool {
	return o.scheme == "https" || o.host == "localhost" || strings.HasSuffix(o.host, ".localhost")
}

// source names the key the origin came from.
func (o passkeyOrigin) source() string {
	if o.index < 0 {
		return "public_url"
	}
	return fmt.Sprintf("webauthn.origins[%d]", o.index)
}

// key is the key a problem about the origin is reported on.
func (o passkeyOrigin) key() string {
	if o.index < 0 {
		return "webauthn.origins"
	}
	return o.source()
}

func localhostOrigin(o passkeyOrigin) string {
	s := "http://localhost"
	if o.port != "" {
		s += ":" + o.port
	} else if o.scheme == "https" {
		s = "https://localhost"
	}
	return s
}

// passkeyOrigins returns the origins in force: webauthn.origins, else the
// origin of public_url (none when it is unset or invalid). bad is the
// index of the first webauthn.origins entry that is no origin, or -1.
func (c *Config) passkeyOrigins() (origins []passkeyOrigin, bad int) {
	bad = -1
	if len(c.WebAuthn.Origins) == 0 {
		if c.PublicURL == "" || checkHTTPURL(c.PublicURL) != "" {
			return nil, bad
		}
		u, _ := url.Parse(c.PublicURL)
		return []passkeyOrigin{originOf(u, -1)}, bad
	}
	for i, s := range c.WebAuthn.Origins {
		u, msg := parseOrigin(s)
		if msg != "" {
			if bad < 0 {
				bad = i
			}
			continue
		}
		origins = append(origins, originOf(u, i))
	}
	return origins, bad
}

// passkeyRPIDFrom returns the RP ID in force (webauthn.rp_id, else the
// host of public_url, else the host of the first origin) and where it
// comes from, in words.
func (c *Config) passkeyRPIDFrom(origins []passkeyOrigin) (id, from string) {
	if c.WebAuthn.RPID != "" {
		return c.WebAuthn.RPID, "webauthn.rp_id"
	}
	if c.PublicURL != "" && checkHTTPURL(c.PublicURL) == "" {
		u, _ := url.Parse(c.PublicURL)
		return strings.ToLower(u.Hostname()), "the host of public_url"
	}
	if len(origins) > 0 {
		return origins[0].host, "the host of " + origins[0].source()
	}
	return "", ""
}

// parseOrigin parses an entry of webauthn.origins, returning why it is
// no origin when it is not (quoting the entry unless it holds a password).
func parseOrigin(s string) (*url.URL, string) {
	u, err := url.Parse(s)
	msg := ""
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "":
		msg = `must be an origin such as "https://panel.example.com" (http or https, with a host)`
	case u.User != nil:
		return nil, "must not contain a user name or password" // never echo it
	case u.Path != "" && u.Path != "/":
		msg = fmt.Sprintf("must be an origin, scheme://host[:port], without a path (got path %s)", quoteValue(u.Path))
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		msg = "must not have a query string or fragment"
	case u.Port() != "" && !validPort(u.Port(), false):
		msg = "port must be between 1 and 65535"
	case !isIP(u.Hostname()) && !validHostname(u.Hostname()):
		msg = "must have a valid host name"
	default:
		return u, ""
	}
	return nil, msg + ", got " + quoteValue(s)
}

// originOf serialises the origin of u as a browser does.
func originOf(u *url.URL, index int) passkeyOrigin {
	o := passkeyOrigin{scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Hostname()), port: u.Port(), index: index}
	if (o.scheme == "https" && o.port == "443") || (o.scheme == "http" && o.port == "80") {
		o.port = ""
	}
	h := o.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	o.origin = o.scheme + "://" + h
	if o.port != "" {
		o.origin += ":" + o.port
	}
	return o
}

// checkRPID returns why s is no RP ID, or "".
func checkRPID(s string) string {
	switch {
	case strings.Contains(s, "://"):
		return `must be a host name without scheme, such as "example.com"`
	case strings.ContainsAny(s, "/?#"):
		return `must be a host name without path, such as "example.com"`
	case isIP(s) || strings.HasPrefix(s, "["):
		return "must not be an IP address: browsers accept only a domain name as RP ID"
	case strings.Contains(s, ":"):
		return `must be a host name without port, such as "example.com"`
	case strings.HasSuffix(s, "."):
		return "must not end with a dot"
	case !validHostname(s):
		return `must be a valid host name such as "example.com"`
	case s != strings.ToLower(s):
		return fmt.Sprintf("must be lower case (%q)", strings.ToLower(s))
	}
	return ""
}

// rpIDMatches reports whether browsers accept rpID on an origin with
// this host: equal to it or a parent domain of it.
func rpIDMatches(rpID, host string) bool {
	return host == rpID || strings.HasSuffix(host, "."+rpID)
}

// isPublicSuffix reports whether browsers refuse s as the RP ID of its
// subdomains ("com", "co.uk", "github.io", and any single label).
func isPublicSuffix(s string) bool {
	ps, _ := publicsuffix.PublicSuffix(s)
	return ps == s
}

func (k *checker) webAuthn() {
	w := &k.c.WebAuthn
	switch w.UserVerification {
	case UserVerificationPreferred, UserVerificationRequired, UserVerificationDiscouraged:
	default:
		k.add("webauthn.user_verification", `must be "preferred", "required" or "discouraged", got %q`, w.UserVerification)
	}
	switch w.Attestation {
	case AttestationNone, AttestationIndirect, AttestationDirect:
	default:
		k.add("webauthn.attestation", `must be "none", "indirect" or "direct", got %q`, w.Attestation)
	}
	if w.Timeout < MinWebAuthnTimeout || w.Timeout > MaxWebAuthnTimeout {
		k.add("webauthn.timeout", "must be between 30s and 10m, got %v", w.Timeout)
	}
	if w.Passwordless && !w.Enabled {
		k.add("webauthn.passwordless", "cannot be true while webauthn.enabled is false: signing in with a passkey alone needs passkeys")
	}
	rpOK := true
	if w.RPID != "" {
		if msg := checkRPID(w.RPID); msg != "" {
			k.add("webauthn.rp_id", "%s", msg)
			rpOK = false
		}
	}
	seen := map[string]int{}
	for i, s := range w.Origins {
		key := fmt.Sprintf("webauthn.origins[%d]", i)
		u, msg := parseOrigin(s)
		if msg != "" {
			k.add(key, "%s", msg)
			continue
		}
		o := originOf(u, i)
		if first, dup := seen[o.origin]; dup {
			k.add(key, "lists %q again (also webauthn.origins[%d])", o.origin, first)
			continue
		}
		seen[o.origin] = i
	}
	if !rpOK {
		return
	}
	origins, _ := k.c.passkeyOrigins()
	rpID, rpFrom := k.c.passkeyRPIDFrom(origins)
	for _, o := range origins {
		explicit := w.RPID != ""
		switch {
		case !rpIDMatches(rpID, o.host) && explicit:
			from := ""
			if o.index < 0 {
				from = ", the origin of public_url"
			}
			k.add("webauthn.rp_id", "%q does not match origin %q%s (%s)", rpID, o.origin, from, rpIDRule)
		case !rpIDMatches(rpID, o.host):
			k.add(o.key(), "%q does not match the RP ID %q, %s (%s); set webauthn.rp_id to a parent domain of every origin", o.origin, rpID, rpFrom, rpIDRule)
		case rpID != o.host && isPublicSuffix(rpID):
			k.add("webauthn.rp_id", "%q is a public suffix (like \"com\" or \"co.uk\"), which browsers refuse as the RP ID of origin %q; use a domain registered under it, or the origin's host", rpID, o.origin)
		}
	}
}
