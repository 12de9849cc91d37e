package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Limits enforced by Validate.
const (
	MinPeriod          = 15
	MaxPeriod          = 120
	MaxSkew            = 10
	MinArgon2MemoryKiB = 8192
)

// checker collects problems, citing the line of each key.
type checker struct {
	c     *Config
	probs Problems
}

func (k *checker) add(key, format string, args ...any) {
	k.probs = append(k.probs, Problem{Key: key, Line: k.c.Line(key), Msg: fmt.Sprintf(format, args...)})
}

// Validate checks the whole configuration and returns every problem at
// once as Problems, or nil. It normalises a few values in place: route
// hosts and session.domain are lower-cased (trailing dot and, for the
// domain, leading dot dropped), two_factor.algorithm is upper-cased and
// ui.title loses its surrounding spaces. ui.logo_file is read to check
// its content (ReadLogo).
func (c *Config) Validate() error {
	k := &checker{c: c}
	k.top()
	k.store()
	k.session()
	k.twoFactor()
	k.argon2()
	k.regulation()
	k.routes()
	k.trustedProxies()
	k.clock()
	k.proxy()
	k.log()
	k.metrics()
	k.server()
	k.tls()
	k.ui()
	k.webAuthn()
	if len(k.probs) == 0 {
		return nil
	}
	return k.probs
}

func (k *checker) top() {
	c := k.c
	if msg := checkHostPort(c.Listen, true); msg != "" {
		k.add("listen", `must be host:port such as ":8080" or "127.0.0.1:8080": %s`, msg)
	}
	if c.PublicURL != "" {
		if msg := checkHTTPURL(c.PublicURL); msg != "" {
			k.add("public_url", "%s", msg)
		}
	}
	if c.DataDir == "" {
		k.add("data_dir", "must not be empty")
	}
	if c.SecretKeyFile == "" {
		k.add("secret_key_file", "must not be empty")
	}
	if c.SecretKey != "" {
		if b, err := hex.DecodeString(c.SecretKey); err != nil || len(b) != 32 {
			// Never echo the value: it is a secret.
			k.add(EnvSecretKey, "must be 64 hex characters (32 bytes)")
		}
	}
}

func (k *checker) store() {
	s := &k.c.Store
	switch s.Driver {
	case DriverEmbedded:
		if s.Path == "" {
			k.add("store.path", "must not be empty")
		}
	case DriverRedis:
		k.redis(&s.Redis)
	default:
		k.add("store.driver", `must be "embedded" or "redis", got %q`, s.Driver)
	}
}

func (k *checker) redis(r *Redis) {
	if len(r.Addrs) == 0 {
		k.add("store.redis.addrs", `needs at least one host:port when store.driver is "redis"`)
	}
	for i, a := range r.Addrs {
		if msg := checkHostPort(a, false); msg != "" {
			k.add(fmt.Sprintf("store.redis.addrs[%d]", i), "must be host:port such as \"redis:6379\": %s", msg)
		}
	}
	if r.MasterName == "" {
		if r.SentinelUsername != "" {
			k.add("store.redis.sentinel_username", "is only used with store.redis.master_name (Sentinel)")
		}
		if r.SentinelPassword != "" || r.SentinelPasswordFile != "" {
			k.add("store.redis.sentinel_password", "is only used with store.redis.master_name (Sentinel)")
		}
	}
	if r.DB < 0 {
		k.add("store.redis.db", "must not be negative")
	} else if r.DB != 0 && len(r.Addrs) > 1 && r.MasterName == "" {
		k.add("store.redis.db", "must be 0 with several addrs and no master_name (Redis Cluster has only database 0)")
	}
	switch {
	case r.KeyPrefix == "":
		k.add("store.redis.key_prefix", "must not be empty")
	case strings.ContainsAny(r.KeyPrefix, "{} \t\r\n"):
		k.add("store.redis.key_prefix", `must not contain spaces, "{" or "}"`)
	}
	if r.PoolSize < 1 || r.PoolSize > MaxRedisPoolSize {
		k.add("store.redis.pool_size", "must be between 1 and %d, got %d", MaxRedisPoolSize, r.PoolSize)
	}
	t := &r.TLS
	if !t.Enabled {
		return
	}
	k.file("store.redis.tls.ca_file", t.CAFile)
	k.file("store.redis.tls.cert_file", t.CertFile)
	k.file("store.redis.tls.key_file", t.KeyFile)
	if (t.CertFile == "") != (t.KeyFile == "") {
		k.add("store.redis.tls", "cert_file and key_file must be set together")
	}
	if t.ServerName != "" && !validHostname(t.ServerName) {
		k.add("store.redis.tls.server_name", "must be a valid host name")
	}
}

// file checks that path, if set, names a readable regular file.
func (k *checker) file(key, path string) {
	if path == "" {
		return
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		k.add(key, "file %q does not exist", path)
	case err != nil:
		k.add(key, "cannot use %q: %v", path, err)
	case !st.Mode().IsRegular():
		k.add(key, "%q is not a regular file", path)
	}
}

func (k *checker) session() {
	s := &k.c.Session
	if s.IdleTimeout <= 0 {
		k.add("session.idle_timeout", "must be positive")
	}
	if s.MaxLifetime <= 0 {
		k.add("session.max_lifetime", "must be positive")
	}
	if s.IdleTimeout > 0 && s.MaxLifetime > 0 && s.IdleTimeout > s.MaxLifetime {
		k.add("session.idle_timeout", "must not exceed session.max_lifetime (%s)", s.MaxLifetime)
	}
	if s.CacheMaxAge < 0 || s.CacheMaxAge > MaxCacheMaxAge {
		k.add("session.cache_max_age", "must be between 0 (no cache) and %s", MaxCacheMaxAge)
	}
	if s.CacheSize < 0 || s.CacheSize > MaxCacheSize {
		k.add("session.cache_size", "must be between 0 (no cache) and %d", MaxCacheSize)
	}
	switch {
	case s.CookieName == "":
		k.add("session.cookie_name", "must not be empty")
	case !isToken(s.CookieName):
		k.add("session.cookie_name", "must contain only letters, digits and !#$%%&'*+-.^_`|~")
	case hasPrefixFold(s.CookieName, "__Host-") || hasPrefixFold(s.CookieName, "__Secure-"):
		k.add("session.cookie_name", `must not start with "__Host-" or "__Secure-" (authgate adds the right prefix itself)`)
	}
	if s.Domain != "" {
		s.Domain = strings.TrimPrefix(strings.TrimSuffix(strings.ToLower(s.Domain), "."), ".")
		if !validHostname(s.Domain) || isIP(s.Domain) {
			k.add("session.domain", "must be a host name such as \"example.com\"")
		} else if u, err := url.Parse(k.c.PublicURL); k.c.PublicURL != "" && err == nil && u.Hostname() != "" {
			h := strings.ToLower(u.Hostname())
			if h != s.Domain && !strings.HasSuffix(h, "."+s.Domain) {
				k.add("session.domain", "must be the host of public_url (%s) or a parent of it; browsers would refuse the cookie", h)
			}
		}
	}
}

func (k *checker) twoFactor() {
	t := &k.c.TwoFactor
	switch t.Mode {
	case ModeOff, ModeOn, ModeRequired:
	default:
		k.add("two_factor.mode", `must be "off", "on" or "required", got %q`, t.Mode)
	}
	if strings.Contains(t.Issuer, ":") {
		k.add("two_factor.issuer", `must not contain ":" (it separates issuer and account in authenticator apps)`)
	}
	if t.Period < MinPeriod || t.Period > MaxPeriod {
		k.add("two_factor.period", "must be between %d and %d seconds, got %d", MinPeriod, MaxPeriod, t.Period)
	}
	if t.Digits != 6 && t.Digits != 8 {
		k.add("two_factor.digits", "must be 6 or 8, got %d", t.Digits)
	}
	t.Algorithm = strings.ToUpper(t.Algorithm)
	switch t.Algorithm {
	case "SHA1", "SHA256", "SHA512":
	default:
		k.add("two_factor.algorithm", `must be "SHA1", "SHA256" or "SHA512", got %q`, t.Algorithm)
	}
	if t.Skew < 0 || t.Skew > MaxSkew {
		k.add("two_factor.skew", "must be between 0 and %d steps, got %d", MaxSkew, t.Skew)
	}
	if t.DriftScan < time.Minute || t.DriftScan > 24*time.Hour {
		k.add("two_factor.drift_scan", "must be between 1m and 24h, got %v", t.DriftScan)
	}
}

func (k *checker) clock() {
	t := &k.c.Time
	for i, s := range t.NTPServers {
		if msg := checkNTPServer(s); msg != "" {
			k.add(fmt.Sprintf("time.ntp_servers[%d]", i), "%s", msg)
		}
	}
	if t.CheckInterval < 10*time.Second {
		k.add("time.check_interval", "must be at least 10s, got %v", t.CheckInterval)
	}
	if t.WarnOver <= 0 {
		k.add("time.warn_over", "must be positive, got %v", t.WarnOver)
	}
	if t.RefuseStartOver < 0 {
		k.add("time.refuse_start_over", "must be 0 (never refuse) or positive, got %v", t.RefuseStartOver)
	}
}

// MaxResponseHeaderTimeout bounds proxy.response_header_timeout.
const MaxResponseHeaderTimeout = time.Hour

func (k *checker) proxy() {
	if d := k.c.Proxy.ResponseHeaderTimeout; d < time.Second || d > MaxResponseHeaderTimeout {
		k.add("proxy.response_header_timeout", "must be between 1s and %v, got %v", MaxResponseHeaderTimeout, d)
	}
}

// checkNTPServer accepts host or host:port.
func checkNTPServer(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if strings.ContainsAny(s, "/ ") {
		return fmt.Sprintf("%q must be a host or host:port", s)
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if !validPort(port, false) {
			return fmt.Sprintf("%q has an invalid port", s)
		}
		host = h
	}
	if !isIP(host) && !validHostname(host) {
		return fmt.Sprintf("%q must be a host or host:port", s)
	}
	return ""
}

func (k *checker) argon2() {
	a := k.c.Password.Argon2
	if a.MemoryKiB < MinArgon2MemoryKiB {
		k.add("password.argon2.memory_kib", "must be at least %d (8 MiB), got %d", MinArgon2MemoryKiB, a.MemoryKiB)
	}
	if a.Iterations < 1 {
		k.add("password.argon2.iterations", "must be at least 1")
	}
	if a.Parallelism < 1 {
		k.add("password.argon2.parallelism", "must be at least 1")
	}
}

// reservedHeaders may not carry the identity: the proxy or HTTP itself
// owns them.
var reservedHeaders = map[string]bool{
	"Host": true, "Cookie": true, "Authorization": true, "Proxy-Authorization": true,
	"Connection": true, "Content-Length": true, "Content-Type": true,
	"Transfer-Encoding": true, "Upgrade": true, "Te": true, "Trailer": true,
	"Keep-Alive": true, "Forwarded": true, "X-Forwarded-For": true,
	"X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Real-Ip": true,
	"X-Original-Url": true, "X-Rewrite-Url": true,
}

func (k *checker) routes() {
	rs := k.c.Routes
	if len(rs) == 0 {
		k.add("routes", "at least one route is required")
		return
	}
	names := map[string]int{}
	type match struct{ host, prefix string }
	matches := map[match]int{}
	for i := range rs {
		r := &rs[i]
		p := fmt.Sprintf("routes[%d]", i)
		switch name := strings.TrimSpace(r.Name); {
		case name == "":
			k.add(p+".name", "is required")
		default:
			if j, dup := names[name]; dup {
				k.add(p+".name", "duplicate route name %q (also routes[%d])", name, j)
			} else {
				names[name] = i
			}
		}
		k.routeHost(p, r)
		k.routeUpstream(p, r)
		prefixOK := k.routePathPrefix(p, r)
		switch r.Policy {
		case PolicyBypass, PolicyPassword, PolicyTwoFactor:
		default:
			k.add(p+".policy", `must be "bypass", "password" or "two_factor", got %q`, r.Policy)
		}
		if r.Policy == PolicyBypass && (len(r.Allow.Users) > 0 || len(r.Allow.Groups) > 0) {
			k.add(p+".allow", "cannot be used with policy bypass, which lets everyone through")
		}
		for j, u := range r.Allow.Users {
			if strings.TrimSpace(u) == "" {
				k.add(fmt.Sprintf("%s.allow.users[%d]", p, j), "must not be empty")
			}
		}
		for j, g := range r.Allow.Groups {
			if strings.TrimSpace(g) == "" {
				k.add(fmt.Sprintf("%s.allow.groups[%d]", p, j), "must not be empty")
			}
		}
		k.header(p+".identity_headers.user", r.IdentityHeaders.User)
		k.header(p+".identity_headers.groups", r.IdentityHeaders.Groups)
		if r.IdentityHeaders.User != "" && strings.EqualFold(r.IdentityHeaders.User, r.IdentityHeaders.Groups) {
			k.add(p+".identity_headers.groups", "must differ from identity_headers.user")
		}
		k.upgradeProtocols(p, r)
		k.file(p+".upstream_tls.ca_file", r.UpstreamTLS.CAFile)
		if sn := r.UpstreamTLS.ServerName; sn != "" && !validHostname(sn) {
			k.add(p+".upstream_tls.server_name", "must be a valid host name")
		}
		if prefixOK {
			m := match{r.Host, strings.TrimSuffix(r.PathPrefix, "/")}
			if j, dup := matches[m]; dup {
				k.add(p+".path_prefix", "routes[%d] already matches host %q and path_prefix %q", j, r.Host, rs[j].PathPrefix)
			} else {
				matches[m] = i
			}
		}
	}
}

func (k *checker) routeHost(p string, r *Route) {
	if r.Host == "" {
		return
	}
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(r.Host)), ".")
	r.Host = h
	switch {
	case strings.Contains(h, "://"):
		k.add(p+".host", "must be a host name only, without scheme")
	case strings.ContainsAny(h, "/?#"):
		k.add(p+".host", "must be a host name only, without path")
	case isIP(h):
	case strings.Contains(h, ":"):
		k.add(p+".host", "must be a host name only, without port")
	case !validHostname(h):
		k.add(p+".host", "must be a valid host name")
	}
}

func (k *checker) routeUpstream(p string, r *Route) {
	if r.Upstream == "" {
		k.add(p+".upstream", "is required")
		return
	}
	u, err := url.Parse(r.Upstream)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "":
		k.add(p+".upstream", "must be an absolute http or https URL")
	case u.User != nil:
		k.add(p+".upstream", "must not contain a user name or password")
	case u.RawQuery != "" || u.ForceQuery:
		k.add(p+".upstream", "must not have a query string")
	case u.Fragment != "" || strings.Contains(r.Upstream, "#"):
		k.add(p+".upstream", "must not have a fragment")
	case u.Port() != "" && !validPort(u.Port(), false):
		k.add(p+".upstream", "port must be between 1 and 65535")
	}
}

// routePathPrefix checks path_prefix and reports whether it is valid.
func (k *checker) routePathPrefix(p string, r *Route) bool {
	pp := r.PathPrefix
	key := p + ".path_prefix"
	if !strings.HasPrefix(pp, "/") {
		k.add(key, `must start with "/"`)
		return false
	}
	for _, bad := range []string{"..", "//", "%", "?", "#"} {
		if strings.Contains(pp, bad) {
			k.add(key, "must not contain %q", bad)
			return false
		}
	}
	for _, c := range pp {
		if c <= ' ' || c == 0x7f {
			k.add(key, "must not contain spaces or control characters")
			return false
		}
	}
	return true
}

func (k *checker) header(key, name string) {
	// "_" counts as "-": CGI-style upstreams read X-Forwarded_For as
	// X-Forwarded-For.
	folded := canonicalHeader(strings.ReplaceAll(name, "_", "-"))
	switch {
	case name == "":
		k.add(key, "must not be empty")
	case !isToken(name):
		k.add(key, "must be a valid header name (letters, digits and !#$%%&'*+-.^_`|~)")
	case reservedHeaders[folded]:
		k.add(key, "must not be %q, which HTTP or the proxy uses itself", folded)
	}
}

// upgradeProtocols checks routes[].upgrade_protocols: protocol names
// (RFC 9110 tokens, so no "/version"), each listed once.
func (k *checker) upgradeProtocols(p string, r *Route) {
	seen := map[string]int{}
	for j, proto := range r.UpgradeProtocols {
		key := fmt.Sprintf("%s.upgrade_protocols[%d]", p, j)
		if !isToken(proto) {
			k.add(key, "must be a protocol name such as \"websocket\" (letters, digits and !#$%%&'*+-.^_`|~, no \"/version\"), got %s", quoteValue(proto))
			continue
		}
		if first, dup := seen[strings.ToLower(proto)]; dup {
			k.add(key, "lists %q again (also upgrade_protocols[%d])", proto, first)
			continue
		}
		seen[strings.ToLower(proto)] = j
	}
}

func (k *checker) trustedProxies() {
	for i, s := range k.c.TrustedProxies {
		if _, err := parseProxy(s); err != nil {
			k.add(fmt.Sprintf("trusted_proxies[%d]", i), "%v", err)
		}
	}
}

func (k *checker) log() {
	switch k.c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		k.add("log.level", `must be "trace", "debug", "info", "warn" or "error", got %q`, k.c.Log.Level)
	}
	switch k.c.Log.Format {
	case "json", "console":
	default:
		k.add("log.format", `must be "json" or "console", got %q`, k.c.Log.Format)
	}
	if d := k.c.Log.FlushInterval; d < 0 || d > MaxLogFlushInterval {
		k.add("log.flush_interval", "must be between 0 (every line at once) and %v, got %v", MaxLogFlushInterval, d)
	}
}

// MaxShutdownTimeout bounds server.shutdown_timeout.
const MaxShutdownTimeout = time.Hour

func (k *checker) server() {
	if d := k.c.Server.ShutdownTimeout; d < time.Second || d > MaxShutdownTimeout {
		k.add("server.shutdown_timeout", "must be between 1s and %v, got %v", MaxShutdownTimeout, d)
	}
	if n := k.c.Server.GCPercent; n < MinGCPercent || n > MaxGCPercent {
		k.add("server.gc_percent", "must be between %d and %d, got %d", MinGCPercent, MaxGCPercent, n)
	}
	if n := k.c.Server.MemoryLimitMiB; n != 0 && (n < MinMemoryLimitMiB || n > MaxMemoryLimitMiB) {
		k.add("server.memory_limit_mib", "must be 0 (none) or between %d and %d, got %d", MinMemoryLimitMiB, MaxMemoryLimitMiB, n)
	}
}

// MaxRedisPoolSize bounds store.redis.pool_size.
const MaxRedisPoolSize = 10000

// Bounds of server.gc_percent and server.memory_limit_mib.
const (
	MinGCPercent      = 25
	MaxGCPercent      = 2000
	MinMemoryLimitMiB = 32
	MaxMemoryLimitMiB = 1 << 20
)

func (k *checker) metrics() {
	l := k.c.Metrics.Listen
	if l == "" {
		return
	}
	if msg := checkHostPort(l, true); msg != "" {
		k.add("metrics.listen", `must be host:port such as "127.0.0.1:9090", or "" for no metrics: %s`, msg)
		return
	}
	if l == k.c.Listen && !strings.HasSuffix(l, ":0") {
		k.add("metrics.listen", "must differ from listen: metrics are served on their own listener, never next to the gateway")
	}
}

func (k *checker) tls() {
	t := &k.c.TLS
	switch t.Mode {
	case TLSOff:
		return
	case TLSManual:
		if t.CertFile == "" {
			k.add("tls.cert_file", `must be set when tls.mode is "manual"`)
		}
		if t.KeyFile == "" {
			k.add("tls.key_file", `must be set when tls.mode is "manual"`)
		}
		k.file("tls.cert_file", t.CertFile)
		k.file("tls.key_file", t.KeyFile)
	case TLSACME:
		a := &t.ACME
		if msg := checkHTTPURL(a.CA); a.CA == "" || msg != "" {
			if a.CA == "" {
				msg = "must not be empty"
			}
			k.add("tls.acme.ca", "must be an ACME directory URL: %s", msg)
		} else if u, _ := url.Parse(a.CA); u.Scheme != "https" {
			k.add("tls.acme.ca", "must be an https URL")
		}
		if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t\r\n")) {
			k.add("tls.acme.email", "must be an email address")
		}
		k.file("tls.acme.ca_root", a.CARoot)
		if a.Storage == "" {
			k.add("tls.acme.storage", "must not be empty")
		}
		hosts := 0
		for _, r := range k.c.Routes {
			if r.Host != "" {
				hosts++
			}
		}
		if hosts == 0 {
			k.add("tls.mode", `"acme" needs at least one route with a host to get a certificate for`)
		}
	default:
		k.add("tls.mode", `must be "off", "manual" or "acme", got %q`, t.Mode)
	}
	if t.HTTPListen != "" {
		if msg := checkHostPort(t.HTTPListen, true); msg != "" {
			k.add("tls.http_listen", `must be host:port such as ":80", or "" for none: %s`, msg)
		} else if t.HTTPListen == k.c.Listen && !strings.HasSuffix(t.HTTPListen, ":0") {
			k.add("tls.http_listen", "must differ from listen")
		}
	}
}
