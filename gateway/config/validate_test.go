package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// validYAML is a small valid configuration the cases below break.
const validYAML = `listen: ":8080"
public_url: https://panel.example.com
routes:
  - name: whm
    host: panel.example.com
    upstream: https://127.0.0.1:2087
  - name: webmin
    path_prefix: /webmin
    upstream: http://10.0.0.5:10000
    policy: password
`

func loadValid(t *testing.T) *Config {
	t.Helper()
	clearEnv(t)
	c, err := LoadBytes([]byte(validYAML), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestValidYAMLIsValid(t *testing.T) {
	c := loadValid(t)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("warnings: %v", w)
	}
}

func TestValidateProblems(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []validateCase{
		{"listen without port", func(c *Config) { c.Listen = "localhost" },
			[]string{`listen (line 1): must be host:port such as ":8080" or "127.0.0.1:8080": missing or malformed port`}},
		{"listen port out of range", func(c *Config) { c.Listen = ":70000" },
			[]string{`listen (line 1): must be host:port such as ":8080" or "127.0.0.1:8080": port must be a number from 0 to 65535`}},
		{"listen bad host", func(c *Config) { c.Listen = "a b:80" },
			[]string{`listen (line 1): must be host:port such as ":8080" or "127.0.0.1:8080": invalid host`}},
		{"listen ipv6 ok", func(c *Config) { c.Listen = "[::1]:0" }, nil},
		{"public_url relative", func(c *Config) { c.PublicURL = "panel.example.com" },
			[]string{`public_url (line 2): must be an absolute http or https URL`}},
		{"public_url ftp", func(c *Config) { c.PublicURL = "ftp://x" },
			[]string{`public_url (line 2): must be an absolute http or https URL`}},
		{"public_url query", func(c *Config) { c.PublicURL = "https://x/?a=b" },
			[]string{`public_url (line 2): must not have a query string or fragment`}},
		{"public_url userinfo", func(c *Config) { c.PublicURL = "https://u:p@x/" },
			[]string{`public_url (line 2): must not contain a user name or password`}},
		{"data_dir empty", func(c *Config) { c.DataDir = "" },
			[]string{`data_dir: must not be empty`}},
		{"secret_key_file empty", func(c *Config) { c.SecretKeyFile = "" },
			[]string{`secret_key_file: must not be empty`}},
		{"secret key not hex", func(c *Config) { c.SecretKey = strings.Repeat("z", 64) },
			[]string{`AUTHGATE_SECRET_KEY: must be 64 hex characters (32 bytes)`}},
		{"secret key short", func(c *Config) { c.SecretKey = "abcd" },
			[]string{`AUTHGATE_SECRET_KEY: must be 64 hex characters (32 bytes)`}},
		{"secret key ok", func(c *Config) { c.SecretKey = strings.Repeat("aB", 32) }, nil},
		{"store driver", func(c *Config) { c.Store.Driver = "sqlite" },
			[]string{`store.driver: must be "embedded" or "redis", got "sqlite"`}},
		{"store path", func(c *Config) { c.Store.Path = "" },
			[]string{`store.path: must not be empty`}},
		{"redis without addrs", func(c *Config) { c.Store.Driver = "redis" },
			[]string{`store.redis.addrs: needs at least one host:port when store.driver is "redis"`}},
		{"redis addrs", func(c *Config) {
			c.Store.Driver = "redis"
			c.Store.Redis.Addrs = []string{"redis:6379", "redis", ":6379", "redis:0"}
		}, []string{
			`store.redis.addrs[1]: must be host:port such as "redis:6379": missing or malformed port`,
			`store.redis.addrs[2]: must be host:port such as "redis:6379": missing host`,
			`store.redis.addrs[3]: must be host:port such as "redis:6379": port must be a number from 1 to 65535`,
		}},
		{"redis addrs ignored for embedded", func(c *Config) { c.Store.Redis.Addrs = []string{"bad"} }, nil},
		{"redis cluster db", func(c *Config) {
			c.Store.Driver = "redis"
			c.Store.Redis.Addrs = []string{"a:1", "b:1"}
			c.Store.Redis.DB = 2
		}, []string{`store.redis.db: must be 0 with several addrs and no master_name (Redis Cluster has only database 0)`}},
		{"redis sentinel db ok", func(c *Config) {
			c.Store.Driver = "redis"
			c.Store.Redis.Addrs = []string{"a:1", "b:1"}
			c.Store.Redis.MasterName = "m"
			c.Store.Redis.DB = 2
		}, nil},
		{"redis negative db", func(c *Config) {
			c.Store.Driver = "redis"
			c.Store.Redis.Addrs = []string{"a:1"}
			c.Store.Redis.DB = -1
		}, []string{`store.redis.db: must not be negative`}},
		{"redis key prefix", func(c *Config) {
			c.Store.Driver = "redis"
			c.Store.Redis.Addrs = []string{"a:1"}
			c.Store.Redis.KeyPrefix = "{ag}"
		}, []string{`store.redis.key_prefix: must not contain spaces, "{" or "}"`}},
		{"redis empty key prefix", func(c *Config) {
			c.Store.Driver = "redis"
			c.Store.Redis.Addrs = []string{"a:1"}
			c.Store.Redis.KeyPrefix = ""
		}, []string{`store.redis.key_prefix: must not be empty`}},
		{"redis tls", func(c *Config) {
			c.Store.Driver = "redis"
			c.Store.Redis.Addrs = []string{"a:1"}
			c.Store.Redis.TLS = RedisTLS{Enabled: true, CAFile: filepath.Join(dir, "nope.pem"), CertFile: caFile, ServerName: "bad name"}
		}, []string{
			`store.redis.tls.ca_file: file "` + filepath.Join(dir, "nope.pem") + `" does not exist`,
			`store.redis.tls: cert_file and key_file must be set together`,
			`store.redis.tls.server_name: must be a valid host name`,
		}},
		{"idle timeout zero", func(c *Config) { c.Session.IdleTimeout = 0 },
			[]string{`session.idle_timeout: must be positive`}},
		{"max lifetime negative", func(c *Config) { c.Session.MaxLifetime = -1 },
			[]string{`session.max_lifetime: must be positive`}},
		{"idle beyond max", func(c *Config) { c.Session.IdleTimeout = 13 * 3600e9 },
			[]string{`session.idle_timeout: must not exceed session.max_lifetime (12h0m0s)`}},
		{"cache max age negative", func(c *Config) { c.Session.CacheMaxAge = -1 },
			[]string{`session.cache_max_age: must be between 0 (no cache) and 10m0s`}},
		{"cache max age too long", func(c *Config) { c.Session.CacheMaxAge = 11 * 60e9 },
			[]string{`session.cache_max_age: must be between 0 (no cache) and 10m0s`}},
		{"cache size negative", func(c *Config) { c.Session.CacheSize = -5 },
			[]string{`session.cache_size: must be between 0 (no cache) and 10000000`}},
		{"cache off", func(c *Config) { c.Session.CacheMaxAge, c.Session.CacheSize = 0, 0 }, nil},
		{"cookie name empty", func(c *Config) { c.Session.CookieName = "" },
			[]string{`session.cookie_name: must not be empty`}},
		{"cookie name chars", func(c *Config) { c.Session.CookieName = "a;b" },
			[]string{"session.cookie_name: must contain only letters, digits and !#$%&'*+-.^_`|~"}},
		{"cookie name __Host-", func(c *Config) { c.Session.CookieName = "__Host-sid" },
			[]string{`session.cookie_name: must not start with "__Host-" or "__Secure-" (authgate adds the right prefix itself)`}},
		{"cookie name __secure- any case", func(c *Config) { c.Session.CookieName = "__secure-sid" },
			[]string{`session.cookie_name: must not start with "__Host-" or "__Secure-" (authgate adds the right prefix itself)`}},
		{"cookie domain invalid", func(c *Config) { c.Session.Domain = "exa mple.com" },
			[]string{`session.domain: must be a host name such as "example.com"`}},
		{"cookie domain ip", func(c *Config) { c.Session.Domain = "10.0.0.1" },
			[]string{`session.domain: must be a host name such as "example.com"`}},
		{"cookie domain outside public_url", func(c *Config) { c.Session.Domain = "other.com" },
			[]string{`session.domain: must be the host of public_url (panel.example.com) or a parent of it; browsers would refuse the cookie`}},
		{"cookie domain parent ok", func(c *Config) { c.Session.Domain = ".Example.COM" }, nil},
		{"mode", func(c *Config) { c.TwoFactor.Mode = "false" },
			[]string{`two_factor.mode: must be "off", "on" or "required", got "false"`}},
		{"issuer colon", func(c *Config) { c.TwoFactor.Issuer = "a:b" },
			[]string{`two_factor.issuer: must not contain ":" (it separates issuer and account in authenticator apps)`}},
		{"period low", func(c *Config) { c.TwoFactor.Period = 14 },
			[]string{`two_factor.period: must be between 15 and 120 seconds, got 14`}},
		{"period high", func(c *Config) { c.TwoFactor.Period = 121 },
			[]string{`two_factor.period: must be between 15 and 120 seconds, got 121`}},
		{"period bounds ok", func(c *Config) { c.TwoFactor.Period = 15 }, nil},
		{"digits", func(c *Config) { c.TwoFactor.Digits = 7 },
			[]string{`two_factor.digits: must be 6 or 8, got 7`}},
		{"algorithm", func(c *Config) { c.TwoFactor.Algorithm = "MD5" },
			[]string{`two_factor.algorithm: must be "SHA1", "SHA256" or "SHA512", got "MD5"`}},
		{"skew negative", func(c *Config) { c.TwoFactor.Skew = -1 },
			[]string{`two_factor.skew: must be between 0 and 10 steps, got -1`}},
		{"skew high", func(c *Config) { c.TwoFactor.Skew = 11 },
			[]string{`two_factor.skew: must be between 0 and 10 steps, got 11`}},
		{"argon2", func(c *Config) { c.Password.Argon2 = Argon2{MemoryKiB: 8191} }, []string{
			`password.argon2.memory_kib: must be at least 8192 (8 MiB), got 8191`,
			`password.argon2.iterations: must be at least 1`,
			`password.argon2.parallelism: must be at least 1`,
		}},
		{"no routes", func(c *Config) { c.Routes = nil },
			[]string{`routes (line 3): at least one route is required`}},
		{"route name missing", func(c *Config) { c.Routes[1].Name = " " },
			[]string{`routes[1].name (line 7): is required`}},
		{"route name duplicate", func(c *Config) { c.Routes[1].Name = "whm" },
			[]string{`routes[1].name (line 7): duplicate route name "whm" (also routes[0])`}},
		{"upstream missing", func(c *Config) { c.Routes[0].Upstream = "" },
			[]string{`routes[0].upstream (line 6): is required`}},
		{"upstream relative", func(c *Config) { c.Routes[0].Upstream = "127.0.0.1:2087" },
			[]string{`routes[0].upstream (line 6): must be an absolute http or https URL`}},
		{"upstream no host", func(c *Config) { c.Routes[0].Upstream = "http:///x" },
			[]string{`routes[0].upstream (line 6): must be an absolute http or https URL`}},
		{"upstream scheme", func(c *Config) { c.Routes[0].Upstream = "ws://x" },
			[]string{`routes[0].upstream (line 6): must be an absolute http or https URL`}},
		{"upstream opaque", func(c *Config) { c.Routes[0].Upstream = "http:x" },
			[]string{`routes[0].upstream (line 6): must be an absolute http or https URL`}},
		{"upstream query", func(c *Config) { c.Routes[0].Upstream = "http://x/?a=1" },
			[]string{`routes[0].upstream (line 6): must not have a query string`}},
		{"upstream empty query", func(c *Config) { c.Routes[0].Upstream = "http://x/?" },
			[]string{`routes[0].upstream (line 6): must not have a query string`}},
		{"upstream fragment", func(c *Config) { c.Routes[0].Upstream = "http://x/#" },
			[]string{`routes[0].upstream (line 6): must not have a fragment`}},
		{"upstream userinfo", func(c *Config) { c.Routes[0].Upstream = "http://u@x/" },
			[]string{`routes[0].upstream (line 6): must not contain a user name or password`}},
		{"upstream port", func(c *Config) { c.Routes[0].Upstream = "http://x:99999/" },
			[]string{`routes[0].upstream (line 6): port must be between 1 and 65535`}},
		{"upstream with path ok", func(c *Config) { c.Routes[0].Upstream = "HTTPS://x:8443/base/" }, nil},
		{"path_prefix no slash", func(c *Config) { c.Routes[1].PathPrefix = "webmin" },
			[]string{`routes[1].path_prefix (line 8): must start with "/"`}},
		{"path_prefix dotdot", func(c *Config) { c.Routes[1].PathPrefix = "/a/../b" },
			[]string{`routes[1].path_prefix (line 8): must not contain ".."`}},
		{"path_prefix double slash", func(c *Config) { c.Routes[1].PathPrefix = "//a" },
			[]string{`routes[1].path_prefix (line 8): must not contain "//"`}},
		{"path_prefix percent", func(c *Config) { c.Routes[1].PathPrefix = "/%2e" },
			[]string{`routes[1].path_prefix (line 8): must not contain "%"`}},
		{"path_prefix query", func(c *Config) { c.Routes[1].PathPrefix = "/a?b" },
			[]string{`routes[1].path_prefix (line 8): must not contain "?"`}},
		{"path_prefix space", func(c *Config) { c.Routes[1].PathPrefix = "/a b" },
			[]string{`routes[1].path_prefix (line 8): must not contain spaces or control characters`}},
		{"host scheme", func(c *Config) { c.Routes[0].Host = "https://panel.example.com" },
			[]string{`routes[0].host (line 5): must be a host name only, without scheme`}},
		{"host port", func(c *Config) { c.Routes[0].Host = "panel.example.com:443" },
			[]string{`routes[0].host (line 5): must be a host name only, without port`}},
		{"host path", func(c *Config) { c.Routes[0].Host = "panel.example.com/x" },
			[]string{`routes[0].host (line 5): must be a host name only, without path`}},
		{"host invalid", func(c *Config) { c.Routes[0].Host = "-bad.example.com" },
			[]string{`routes[0].host (line 5): must be a valid host name`}},
		{"host wildcard", func(c *Config) { c.Routes[0].Host = "*.example.com" },
			[]string{`routes[0].host (line 5): must be a valid host name`}},
		{"host ip ok", func(c *Config) { c.Routes[0].Host = "::1" }, nil},
		{"policy", func(c *Config) { c.Routes[0].Policy = "totp" },
			[]string{`routes[0].policy (line 4): must be "bypass", "password" or "two_factor", got "totp"`}},
		{"allow with bypass", func(c *Config) {
			c.Routes[0].Policy = "bypass"
			c.Routes[0].Allow.Users = []string{"a"}
		}, []string{`routes[0].allow (line 4): cannot be used with policy bypass, which lets everyone through`}},
		{"allow empty entries", func(c *Config) {
			c.Routes[0].Allow = Allow{Users: []string{"a", ""}, Groups: []string{" "}}
		}, []string{
			`routes[0].allow.users[1] (line 4): must not be empty`,
			`routes[0].allow.groups[0] (line 4): must not be empty`,
		}},
		{"identity header invalid", func(c *Config) { c.Routes[0].IdentityHeaders.User = "Remote User" },
			[]string{"routes[0].identity_headers.user (line 4): must be a valid header name (letters, digits and !#$%&'*+-.^_`|~)"}},
		{"identity header empty", func(c *Config) { c.Routes[0].IdentityHeaders.Groups = "" },
			[]string{`routes[0].identity_headers.groups (line 4): must not be empty`}},
		{"identity header reserved", func(c *Config) { c.Routes[0].IdentityHeaders.User = "x-forwarded-for" },
			[]string{`routes[0].identity_headers.user (line 4): must not be "X-Forwarded-For", which HTTP or the proxy uses itself`}},
		{"identity header reserved with underscore", func(c *Config) { c.Routes[0].IdentityHeaders.User = "X-Forwarded_For" },
			[]string{`routes[0].identity_headers.user (line 4): must not be "X-Forwarded-For", which HTTP or the proxy uses itself`}},
		{"identity header is a URL override", func(c *Config) { c.Routes[0].IdentityHeaders.Groups = "x_original_url" },
			[]string{`routes[0].identity_headers.groups (line 4): must not be "X-Original-Url", which HTTP or the proxy uses itself`}},
		{"upgrade protocols ok", func(c *Config) { c.Routes[0].UpgradeProtocols = []string{"websocket", "h2c", "x-custom"} }, nil},
		{"no upgrade protocols ok", func(c *Config) { c.Routes[0].UpgradeProtocols = []string{} }, nil},
		{"upgrade protocol with version", func(c *Config) { c.Routes[0].UpgradeProtocols = []string{"websocket/13"} },
			[]string{`routes[0].upgrade_protocols[0] (line 4): must be a protocol name such as "websocket" (letters, digits and !#$%&'*+-.^_` + "`" + `|~, no "/version"), got "websocket/13"`}},
		{"upgrade protocol empty or spaced", func(c *Config) { c.Routes[1].UpgradeProtocols = []string{"websocket", "", "web socket"} }, []string{
			`routes[1].upgrade_protocols[1] (line 7): must be a protocol name such as "websocket" (letters, digits and !#$%&'*+-.^_` + "`" + `|~, no "/version"), got ""`,
			`routes[1].upgrade_protocols[2] (line 7): must be a protocol name such as "websocket" (letters, digits and !#$%&'*+-.^_` + "`" + `|~, no "/version"), got "web socket"`,
		}},
		{"upgrade protocol twice", func(c *Config) { c.Routes[0].UpgradeProtocols = []string{"websocket", "WebSocket"} },
			[]string{`routes[0].upgrade_protocols[1] (line 4): lists "WebSocket" again (also upgrade_protocols[0])`}},
		{"identity headers equal", func(c *Config) { c.Routes[0].IdentityHeaders.Groups = "remote-user" },
			[]string{`routes[0].identity_headers.groups (line 4): must differ from identity_headers.user`}},
		{"same host and prefix", func(c *Config) {
			c.Routes[1].Host = "Panel.Example.com"
			c.Routes[1].PathPrefix = "/"
		}, []string{`routes[1].path_prefix (line 8): routes[0] already matches host "panel.example.com" and path_prefix "/"`}},
		{"same prefix up to trailing slash", func(c *Config) {
			c.Routes[0].Host = ""
			c.Routes[0].PathPrefix = "/webmin/"
		}, []string{`routes[1].path_prefix (line 8): routes[0] already matches host "" and path_prefix "/webmin/"`}},
		{"same prefix other host ok", func(c *Config) { c.Routes[1].PathPrefix = "/" }, nil},
		{"ca_file missing", func(c *Config) { c.Routes[0].UpstreamTLS.CAFile = filepath.Join(dir, "missing.pem") },
			[]string{`routes[0].upstream_tls.ca_file (line 4): file "` + filepath.Join(dir, "missing.pem") + `" does not exist`}},
		{"ca_file is a directory", func(c *Config) { c.Routes[0].UpstreamTLS.CAFile = dir },
			[]string{`routes[0].upstream_tls.ca_file (line 4): "` + dir + `" is not a regular file`}},
		{"ca_file ok", func(c *Config) { c.Routes[0].UpstreamTLS.CAFile = caFile }, nil},
		{"upstream server_name", func(c *Config) { c.Routes[0].UpstreamTLS.ServerName = "a/b" },
			[]string{`routes[0].upstream_tls.server_name (line 4): must be a valid host name`}},
		{"trusted proxies", func(c *Config) {
			c.TrustedProxies = []string{"10.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32", "10.0.0.300", "fe80::1%eth0", "10.0.0.0/33", "localhost", "::ffff:0.0.0.0/80"}
		}, []string{
			`trusted_proxies[4]: "10.0.0.300" is not an IP address or CIDR`,
			`trusted_proxies[5]: "fe80::1%eth0" must not have a zone`,
			`trusted_proxies[6]: "10.0.0.0/33" is not an IP address or CIDR`,
			`trusted_proxies[7]: "localhost" is not an IP address or CIDR`,
			`trusted_proxies[8]: "::ffff:0.0.0.0/80": an IPv4-mapped prefix must be /96 or longer`,
		}},
		{"proxy timeout too short", func(c *Config) { c.Proxy.ResponseHeaderTimeout = 500 * time.Millisecond },
			[]string{`proxy.response_header_timeout: must be between 1s and 1h0m0s, got 500ms`}},
		{"proxy timeout too long", func(c *Config) { c.Proxy.ResponseHeaderTimeout = 2 * time.Hour },
			[]string{`proxy.response_header_timeout: must be between 1s and 1h0m0s, got 2h0m0s`}},
		{"proxy timeout ok", func(c *Config) { c.Proxy.ResponseHeaderTimeout = 5 * time.Second }, nil},
		{"log level", func(c *Config) { c.Log.Level = "verbose" },
			[]string{`log.level: must be "trace", "debug", "info", "warn" or "error", got "verbose"`}},
		{"log format", func(c *Config) { c.Log.Format = "text" },
			[]string{`log.format: must be "json" or "console", got "text"`}},
		{"shutdown timeout zero", func(c *Config) { c.Server.ShutdownTimeout = 0 },
			[]string{`server.shutdown_timeout: must be between 1s and 1h0m0s, got 0s`}},
		{"shutdown timeout too long", func(c *Config) { c.Server.ShutdownTimeout = 2 * time.Hour },
			[]string{`server.shutdown_timeout: must be between 1s and 1h0m0s, got 2h0m0s`}},
		{"shutdown timeout ok", func(c *Config) { c.Server.ShutdownTimeout = time.Minute }, nil},
		{"log flush interval negative", func(c *Config) { c.Log.FlushInterval = -time.Second },
			[]string{`log.flush_interval: must be between 0 (every line at once) and 10s, got -1s`}},
		{"log flush interval too long", func(c *Config) { c.Log.FlushInterval = time.Minute },
			[]string{`log.flush_interval: must be between 0 (every line at once) and 10s, got 1m0s`}},
		{"log flush interval off", func(c *Config) { c.Log.FlushInterval = 0 }, nil},
		{"sentinel credentials without master_name", func(c *Config) {
			c.Store.Driver, c.Store.Redis.Addrs = "redis", []string{"r:6379"}
			c.Store.Redis.SentinelUsername, c.Store.Redis.SentinelPassword = "u", "p"
		}, []string{"store.redis.sentinel_username: is only used with store.redis.master_name (Sentinel)",
			"store.redis.sentinel_password: is only used with store.redis.master_name (Sentinel)"}},
		{"gc percent too low", func(c *Config) { c.Server.GCPercent = 10 },
			[]string{`server.gc_percent: must be between 25 and 2000, got 10`}},
		{"gc percent ok", func(c *Config) { c.Server.GCPercent = 100 }, nil},
		{"memory limit too low", func(c *Config) { c.Server.MemoryLimitMiB = 8 },
			[]string{`server.memory_limit_mib: must be 0 (none) or between 32 and 1048576, got 8`}},
		{"memory limit off", func(c *Config) { c.Server.MemoryLimitMiB = 0 }, nil},
		{"redis pool size zero", func(c *Config) {
			c.Store.Driver, c.Store.Redis.Addrs = "redis", []string{"r:6379"}
			c.Store.Redis.PoolSize = 0
		}, []string{`store.redis.pool_size: must be between 1 and 10000, got 0`}},
		{"redis pool size ok", func(c *Config) {
			c.Store.Driver, c.Store.Redis.Addrs = "redis", []string{"r:6379"}
			c.Store.Redis.PoolSize = 200
		}, nil},
	}
	runValidateCases(t, tests)
}

// Every problem is reported at once, each with its own line.
func TestValidateReportsAllProblemsTogether(t *testing.T) {
	clearEnv(t)
	c, err := LoadBytes([]byte(`listen: nope
store:
  driver: redis
session:
  idle_timeout: 24h
two_factor:
  digits: 7
routes:
  - name: a
    upstream: http://127.0.0.1:1
  - name: a
    upstream: ftp://x
    path_prefix: /a/../b
log:
  format: xml
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	want := `listen (line 1): must be host:port such as ":8080" or "127.0.0.1:8080": missing or malformed port
store.redis.addrs (line 2): needs at least one host:port when store.driver is "redis"
session.idle_timeout (line 5): must not exceed session.max_lifetime (12h0m0s)
two_factor.digits (line 7): must be 6 or 8, got 7
routes[1].name (line 11): duplicate route name "a" (also routes[0])
routes[1].upstream (line 12): must be an absolute http or https URL
routes[1].path_prefix (line 13): must not contain ".."
log.format (line 15): must be "json" or "console", got "xml"`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

func TestValidateNormalises(t *testing.T) {
	c := loadValid(t)
	c.Routes[0].Host = "Panel.Example.COM."
	c.TwoFactor.Algorithm = "sha256"
	c.Session.Domain = ".Example.com"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Routes[0].Host != "panel.example.com" || c.TwoFactor.Algorithm != "SHA256" || c.Session.Domain != "example.com" {
		t.Fatalf("not normalised: host=%q alg=%q domain=%q", c.Routes[0].Host, c.TwoFactor.Algorithm, c.Session.Domain)
	}
	// Validate must be idempotent.
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateDefaultsNeedOnlyARoute(t *testing.T) {
	c := Defaults()
	c.Routes = []Route{{Name: "a", Upstream: "http://127.0.0.1:1"}}
	c.FillDerived()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{"none", func(c *Config) {}, nil},
		{"insecure upstream", func(c *Config) { c.Routes[0].UpstreamTLS.InsecureSkipVerify = true },
			[]string{`routes[0].upstream_tls.insecure_skip_verify (line 4): the upstream's TLS certificate is not verified; prefer ca_file`}},
		{"tls settings on http upstream", func(c *Config) { c.Routes[1].UpstreamTLS.InsecureSkipVerify = true },
			[]string{`routes[1].upstream_tls (line 7): has no effect: the upstream is plain http`}},
		{"mode off with two_factor routes", func(c *Config) { c.TwoFactor.Mode = ModeOff },
			[]string{`two_factor.mode: is off: routes with policy two_factor ("whm") ask for a password only`}},
		{"mode off, no two_factor routes", func(c *Config) {
			c.TwoFactor.Mode = ModeOff
			c.Routes[0].Policy = PolicyPassword
		}, nil},
		{"public_url http", func(c *Config) { c.PublicURL = "http://panel.example.com" },
			[]string{`public_url (line 2): uses http: passwords, codes and session cookies cross the network unencrypted`}},
		{"websocket only", func(c *Config) { c.Routes[0].UpgradeProtocols = []string{"WebSocket"} }, nil},
		{"other upgrade protocols", func(c *Config) { c.Routes[1].UpgradeProtocols = []string{"websocket", "h2c", "foo"} }, []string{
			`routes[1].upgrade_protocols[1] (line 7): lets clients switch to "h2c": the connection becomes a raw tunnel to http://10.0.0.5:10000, and what they send through it (h2c: any HTTP request, to any path of the upstream) is not checked against path_prefix or the route's policy`,
			`routes[1].upgrade_protocols[2] (line 7): lets clients switch to "foo": the connection becomes a raw tunnel to http://10.0.0.5:10000, and what they send through it is not checked against path_prefix or the route's policy`,
		}},
		{"bypass route", func(c *Config) { c.Routes[1].Policy = PolicyBypass },
			[]string{`routes[1].policy (line 10): is bypass: http://10.0.0.5:10000 is reachable without logging in`}},
		{"trust everyone", func(c *Config) { c.TrustedProxies = []string{"10.0.0.1", "0.0.0.0/0", "::/0"} }, []string{
			`trusted_proxies[1]: 0.0.0.0/0 trusts every client: anyone can forge X-Forwarded-For`,
			`trusted_proxies[2]: ::/0 trusts every client: anyone can forge X-Forwarded-For`,
		}},
		// Regression: behind a local terminator without trusted_proxies
		// every client shared 127.0.0.1, and a few mistyped codes banned
		// it for everyone.
		{"loopback behind a terminator, no trusted proxies", func(c *Config) {
			c.Listen, c.PublicURL, c.TrustedProxies = "127.0.0.1:8080", "https://panel.example.com", nil
		}, []string{`trusted_proxies: is empty while listen (127.0.0.1:8080) is loopback and public_url is https: the gateway sits behind a TLS terminator whose X-Forwarded-For it ignores, so every client shares one address and one client's failed sign-ins can get that address banned for everyone; list the terminator (e.g. 127.0.0.1)`}},
		{"loopback behind a listed terminator", func(c *Config) {
			c.Listen, c.PublicURL, c.TrustedProxies = "[::1]:8080", "https://panel.example.com", []string{"::1"}
		}, nil},
		{"session domain with the default cookie name", func(c *Config) { c.Session.Domain = "example.com" }, []string{
			`session.domain: is set (example.com) with the default cookie name authgate_session: another authgate under the same domain would send the browser two cookies of that name; give each gateway its own session.cookie_name`,
		}},
		{"session domain with its own cookie name", func(c *Config) { c.Session.Domain, c.Session.CookieName = "example.com", "whm_session" }, nil},
		{"public listener, no trusted proxies", func(c *Config) {
			c.Listen, c.PublicURL, c.TrustedProxies = ":8080", "https://panel.example.com", nil
		}, nil},
		{"redis insecure tls", func(c *Config) {
			c.Store.Driver = DriverRedis
			c.Store.Redis.TLS = RedisTLS{Enabled: true, InsecureSkipVerify: true}
		}, []string{`store.redis.tls.insecure_skip_verify: the Redis server's TLS certificate is not verified`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadValid(t)
			tt.mutate(c)
			var got []string
			for _, w := range c.Warnings() {
				got = append(got, w.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestTrustedPrefixes(t *testing.T) {
	c := Defaults()
	c.TrustedProxies = []string{"10.1.2.3", "10.1.2.3/8", "::1", "2001:db8::1/32", "::ffff:192.0.2.1", "::ffff:192.0.2.0/120"}
	got, err := c.TrustedPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.1.2.3/32"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.0.2.1/32"),
		netip.MustParsePrefix("192.0.2.0/24"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	c.TrustedProxies = []string{"10.0.0.1", "nope"}
	if _, err := c.TrustedPrefixes(); err == nil || err.Error() != `config: trusted_proxies[1]: "nope" is not an IP address or CIDR` {
		t.Fatalf("err = %v", err)
	}
}

func TestProblemString(t *testing.T) {
	for _, tt := range []struct {
		p    Problem
		want string
	}{
		{Problem{"routes[1].upstream", 23, "must be an absolute http or https URL"}, "routes[1].upstream (line 23): must be an absolute http or https URL"},
		{Problem{"log.level", 0, "bad"}, "log.level: bad"},
		{Problem{"", 0, "bad"}, "config: bad"},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// validateCase is a change to a valid config and the problems Validate
// must then report (Problem.String() of each, in order; nil for none).
type validateCase struct {
	name   string
	mutate func(c *Config)
	want   []string
}

// runValidateCases runs each case on a freshly loaded valid config.
func runValidateCases(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := loadValid(t)
			tt.mutate(c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("err = %v (%T), want Problems", err, err)
			}
			got := make([]string, len(ps))
			for i, p := range ps {
				got[i] = p.String()
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// routes[].upgrade_protocols: unset means websocket, [] means none (not
// the default), and problems name the entry and its line.
func TestUpgradeProtocolsKey(t *testing.T) {
	clearEnv(t)
	c, err := LoadBytes([]byte(`routes:
  - name: unset
    upstream: http://127.0.0.1:1
  - name: none
    path_prefix: /none
    upstream: http://127.0.0.1:1
    upgrade_protocols: []
  - name: no-value
    path_prefix: /null
    upstream: http://127.0.0.1:1
    upgrade_protocols:
  - name: custom
    path_prefix: /custom
    upstream: http://127.0.0.1:1
    upgrade_protocols:
      - websocket
      - "tls/1.3"
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := func(i int) []string { return c.Routes[i].UpgradeProtocols }
	if !reflect.DeepEqual(got(0), []string{"websocket"}) || !reflect.DeepEqual(got(2), []string{"websocket"}) {
		t.Errorf("unset / null upgrade_protocols = %q, %q; want the default [websocket]", got(0), got(2))
	}
	if got(1) == nil || len(got(1)) != 0 {
		t.Errorf("upgrade_protocols: [] = %#v; want an empty list (no upgrades)", got(1))
	}
	err = c.Validate()
	want := "routes[3].upgrade_protocols[1] (line 17): must be a protocol name such as \"websocket\""
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("Validate = %v; want one problem starting %q", err, want)
	}
}
