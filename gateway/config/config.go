package config

import "time"

// Config is the whole configuration file.
type Config struct {
	// Listen is the address the gateway serves on, e.g. ":8080".
	Listen string `yaml:"listen"`
	// PublicURL is the external URL users type (e.g. https://panel.example.com);
	// used for the default Issuer and printed links. Optional.
	PublicURL string `yaml:"public_url"`
	// DataDir holds the embedded store, the generated secret key and the
	// control socket.
	DataDir string `yaml:"data_dir"`
	// SecretKeyFile holds the 32-byte key (64 hex chars) that encrypts TOTP
	// secrets at rest. AUTHGATE_SECRET_KEY overrides it. Default
	// <data_dir>/secret.key, generated if missing.
	SecretKeyFile string `yaml:"secret_key_file"`
	// SecretKey is filled from AUTHGATE_SECRET_KEY (never from YAML).
	SecretKey string `yaml:"-"`

	Store          Store      `yaml:"store"`
	Session        Session    `yaml:"session"`
	TwoFactor      TwoFactor  `yaml:"two_factor"`
	Password       Password   `yaml:"password"`
	Routes         []Route    `yaml:"routes"`
	TrustedProxies []string   `yaml:"trusted_proxies"`
	Regulation     Regulation `yaml:"regulation"`
	Proxy          Proxy      `yaml:"proxy"`
	Time           Time       `yaml:"time"`
	Log            Log        `yaml:"log"`
	Metrics        Metrics    `yaml:"metrics"`
	Server         Server     `yaml:"server"`
	TLS            TLS        `yaml:"tls"`
	UI             UI         `yaml:"ui"`
	WebAuthn       WebAuthn   `yaml:"webauthn"`

	// lines maps a key path ("routes[0].upstream") to the line of the
	// file it was read from; filled by Load, used to cite lines.
	lines map[string]int
	// path is the file the config was read from ("" when built in code).
	path string
}

// Path returns the file the config was read from, "" if it was built in
// code (the demo).
func (c *Config) Path() string { return c.path }

// Store selects and configures the backend.
type Store struct {
	// Driver is "embedded" (bbolt, default) or "redis".
	Driver string `yaml:"driver"`
	// Path of the bbolt file; default <data_dir>/authgate.db.
	Path  string `yaml:"path"`
	Redis Redis  `yaml:"redis"`
}

// Redis configures a go-redis UniversalClient: one addr = standalone,
// several = cluster, master_name set = Sentinel.
type Redis struct {
	Addrs    []string `yaml:"addrs"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	// PasswordFile is read into Password; AUTHGATE_REDIS_PASSWORD overrides both.
	PasswordFile string `yaml:"password_file"`
	DB           int    `yaml:"db"`
	MasterName   string `yaml:"master_name"`
	// SentinelUsername and SentinelPassword authenticate to the
	// sentinels themselves (their requirepass / ACL), which is separate
	// from the data nodes' Username/Password. SentinelPasswordFile is read
	// into SentinelPassword; AUTHGATE_REDIS_SENTINEL_PASSWORD overrides
	// both.
	SentinelUsername     string   `yaml:"sentinel_username"`
	SentinelPassword     string   `yaml:"sentinel_password"`
	SentinelPasswordFile string   `yaml:"sentinel_password_file"`
	TLS                  RedisTLS `yaml:"tls"`
	// KeyPrefix namespaces every key (default "authgate").
	KeyPrefix string `yaml:"key_prefix"`
	// PoolSize is how many connections the gateway keeps to each Redis
	// node at most (default DefaultRedisPoolSize).
	PoolSize int `yaml:"pool_size"`
}

// RedisTLS enables TLS to Redis.
type RedisTLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Session configures session lifetime and the cookie.
type Session struct {
	// CookieName default "authgate_session"; over HTTPS the cookie is named
	// "__Host-" + CookieName unless Domain is set (then "__Secure-").
	CookieName  string        `yaml:"cookie_name"`
	IdleTimeout time.Duration `yaml:"idle_timeout"` // default 1h
	MaxLifetime time.Duration `yaml:"max_lifetime"` // default 12h
	Domain      string        `yaml:"domain"`       // default host-only
	// CacheMaxAge is how long a validated session or user record is
	// served from memory without reading the store again (changes reach
	// every instance at once anyway; this is a safety net). 0 turns the
	// cache off. Default 30s.
	CacheMaxAge time.Duration `yaml:"cache_max_age"`
	// CacheSize bounds the sessions the cache holds (and, separately,
	// the users). 0 turns the cache off. Default 100000.
	CacheSize int `yaml:"cache_size"`
}

// Two-factor modes.
const (
	ModeOff      = "off"
	ModeOn       = "on"
	ModeRequired = "required"
)

// TwoFactor configures TOTP. Mode and Issuer are initial values: once the
// store holds a setting, the store wins.
type TwoFactor struct {
	Mode      string `yaml:"mode"`      // off|on|required, default on
	Issuer    string `yaml:"issuer"`    // default: host of public_url, else the host name
	Period    int    `yaml:"period"`    // seconds, default 30
	Digits    int    `yaml:"digits"`    // 6 or 8, default 6
	Algorithm string `yaml:"algorithm"` // SHA1|SHA256|SHA512, default SHA1
	Skew      int    `yaml:"skew"`      // steps either side, default 1
	// DriftScan is how far (either side) a failed code is searched for
	// as evidence of clock drift, and the largest offset a resync may
	// store. Default 10m. Never widens what is accepted.
	DriftScan time.Duration `yaml:"drift_scan"`
}

// Time configures the server clock check.
type Time struct {
	// NTPServers to measure the server clock's offset against (SNTP);
	// empty = no check. host or host:port (default port 123).
	NTPServers []string `yaml:"ntp_servers"`
	// CheckInterval between measurements, default 5m.
	CheckInterval time.Duration `yaml:"check_interval"`
	// WarnOver: |offset| above this is a warning, default 5s.
	WarnOver time.Duration `yaml:"warn_over"`
	// RefuseStartOver: refuse to start when |offset| at start exceeds
	// this; 0 (default) = only warn.
	RefuseStartOver time.Duration `yaml:"refuse_start_over"`
}

// Password configures hashing of new passwords (argon2id).
type Password struct {
	Argon2 Argon2 `yaml:"argon2"`
	// MaxConcurrent bounds the password hashes and verifications running
	// at once (each takes argon2.memory_kib); 0 (default) = one per CPU.
	MaxConcurrent int `yaml:"max_concurrent"`
	// CPUShare is the fraction of the hashing slots' time that may go to
	// hashing in the long run (0.05–1, default 0.2): a budget of hashing
	// time refilled at this rate (holding 2 s per slot) is spent by every
	// check, and when it is gone while others wait for a slot, the slot
	// rests until it has refilled. So sign-ins one after another never
	// wait and a login flood leaves signed-in users most of the CPU.
	CPUShare float64 `yaml:"cpu_share"`
}

// Argon2 parameters; defaults follow RFC 9106's second recommendation
// scaled down: memory 64 MiB, 3 iterations, parallelism 2.
type Argon2 struct {
	MemoryKiB   uint32 `yaml:"memory_kib"`
	Iterations  uint32 `yaml:"iterations"`
	Parallelism uint8  `yaml:"parallelism"`
}

// Policies a route can have.
const (
	PolicyBypass    = "bypass"
	PolicyPassword  = "password"
	PolicyTwoFactor = "two_factor"
)

// Route is one protected upstream.
type Route struct {
	Name string `yaml:"name"`
	// Host matches the request host (case-insensitive, no port); empty
	// matches any host.
	Host string `yaml:"host"`
	// PathPrefix matches whole path segments ("/app" matches /app and
	// /app/x, not /apple); default "/".
	PathPrefix  string      `yaml:"path_prefix"`
	Upstream    string      `yaml:"upstream"`
	Policy      string      `yaml:"policy"` // default two_factor
	Allow       Allow       `yaml:"allow"`
	UpstreamTLS UpstreamTLS `yaml:"upstream_tls"`
	// PreserveHost sends the client's Host header upstream instead of the
	// upstream's own host.
	PreserveHost    bool            `yaml:"preserve_host"`
	IdentityHeaders IdentityHeaders `yaml:"identity_headers"`
	// UpgradeProtocols lists the protocols clients may switch to with
	// "Connection: Upgrade" (names without a version, any letter case);
	// after the switch the connection is a raw tunnel to the upstream.
	// Any other upgrade request gets 400. Default ["websocket"]; an
	// empty list [] allows none.
	UpgradeProtocols []string `yaml:"upgrade_protocols"`
}

// Allow restricts a route to some users or groups; both empty = any
// authenticated user.
type Allow struct {
	Users  []string `yaml:"users"`
	Groups []string `yaml:"groups"`
}

// UpstreamTLS configures TLS to an https upstream.
type UpstreamTLS struct {
	CAFile             string `yaml:"ca_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	ServerName         string `yaml:"server_name"`
}

// IdentityHeaders names the headers that carry the identity upstream.
type IdentityHeaders struct {
	User   string `yaml:"user"`   // default Remote-User
	Groups string `yaml:"groups"` // default Remote-Groups
}

// Proxy tunes the connections to the upstreams (every route).
type Proxy struct {
	// ResponseHeaderTimeout bounds how long an upstream may take to send
	// its response headers once the request is sent; a slower upstream
	// gets the gateway's 504 page. Bodies (streams, downloads) are not
	// limited. Default 2m.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
}

// Server tunes how the gateway reloads its config and stops.
type Server struct {
	// ShutdownTimeout is how long in-flight requests may take to finish
	// after SIGTERM/SIGINT before their connections are closed; the store
	// is closed after them. Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// WatchConfig reloads the config file when it changes (default
	// true); SIGHUP reloads it either way.
	WatchConfig bool `yaml:"watch_config"`
	// GCPercent is the Go garbage collector's target (GOGC): how much the
	// heap may grow over what is live before a collection. The gateway's
	// live heap is small and its garbage per request short-lived, so a
	// higher value than Go's 100 saves much of the collector's CPU.
	// Default 400; the GOGC environment variable, when set, wins.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimitMiB is a soft limit on the Go heap (GOMEMLIMIT): near it
	// the collector runs as often as needed, whatever gc_percent says.
	// Default 192; 0 = none; the GOMEMLIMIT environment variable, when
	// set, wins.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`
}

// Metrics configures the Prometheus metrics listener.
type Metrics struct {
	// Listen is the address of a separate HTTP listener serving only
	// /metrics (e.g. "127.0.0.1:9090"); "" (default) = no metrics. It
	// authorises nothing and has no authentication of its own: bind it to
	// loopback or a private network.
	Listen string `yaml:"listen"`
}

// Log configures zerolog.
type Log struct {
	Level  string `yaml:"level"`  // debug|info|warn|error, default info
	Format string `yaml:"format"` // json|console, default json
	// FlushInterval batches log lines in memory and writes them at most
	// this long after they were logged (warnings and errors at once), so
	// a busy gateway does not make a write system call per request.
	// Default 100ms; 0 writes every line at once.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// TLS modes.
const (
	TLSOff    = "off"
	TLSManual = "manual"
	TLSACME   = "acme"
)

// Well-known ACME directories.
const (
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging    = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// TLS configures HTTPS on listen.
type TLS struct {
	// Mode is "off" (default: plain HTTP, e.g. behind a TLS terminator),
	// "manual" (cert_file/key_file, reloaded when they change) or "acme"
	// (certificates obtained and renewed for every route host).
	Mode     string `yaml:"mode"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	ACME     ACME   `yaml:"acme"`
	// HTTPListen is an optional plain-HTTP listener (usually ":80") that
	// redirects to HTTPS and answers ACME HTTP-01 challenges.
	HTTPListen string `yaml:"http_listen"`
}

// ACME configures the certificate authority for tls.mode acme.
type ACME struct {
	// Email is given to the CA for expiry notices.
	Email string `yaml:"email"`
	// CA is the ACME directory URL; default Let's Encrypt production.
	CA string `yaml:"ca"`
	// CARoot is a PEM file of roots to trust for a private ACME CA.
	CARoot string `yaml:"ca_root"`
	// Storage is the directory for accounts and certificates; default
	// <data_dir>/acme.
	Storage string `yaml:"storage"`
}

// UI brands the sign-in pages.
type UI struct {
	// Title is shown above the sign-in pages' heading with the host being
	// signed into, and in their browser tab. Default ("") the
	// Issuer in force (two_factor.issuer, or the one set on the Settings
	// page, which wins).
	Title string `yaml:"title"`
	// LogoFile is a PNG, JPEG, WebP or SVG image (at most MaxLogoBytes)
	// shown on the sign-in pages and served at /.authgate/logo. Read at
	// start and at every reload. "" (default) = no logo.
	LogoFile string `yaml:"logo_file"`
}
