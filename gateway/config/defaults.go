package config

import (
	"path/filepath"
	"time"
)

// DefaultUpgradeProtocol is what routes[].upgrade_protocols allows when
// the key is not set.
const DefaultUpgradeProtocol = "websocket"

// Default values that do not depend on other settings.
const (
	DefaultListen      = ":8080"
	DefaultDataDir     = "/var/lib/authgate"
	DefaultStoreDriver = "embedded"
	DefaultKeyPrefix   = "authgate"
	// DefaultRedisPoolSize: a request whose session or user is not in the
	// cache (after a restart, or while the invalidation feed is down)
	// holds a connection for one round trip; 64 covers the requests a
	// busy gateway has in flight, where go-redis's default (10 per CPU)
	// queues them on a small machine.
	DefaultRedisPoolSize = 64
	DefaultCookieName    = "authgate_session"
	DefaultIdleTimeout   = time.Hour
	DefaultMaxLifetime   = 12 * time.Hour
	DefaultCacheMaxAge   = 30 * time.Second
	DefaultCacheSize     = 100_000
	DefaultPeriod        = 30
	DefaultDigits        = 6
	DefaultAlgorithm     = "SHA1"
	DefaultSkew          = 1
	DefaultDriftScan     = 10 * time.Minute
	DefaultClockCheck    = 5 * time.Minute
	DefaultClockWarnOver = 5 * time.Second
	// DefaultResponseHeaderTimeout is proxy.response_header_timeout.
	DefaultResponseHeaderTimeout = 2 * time.Minute
	DefaultArgon2MemoryKiB       = 64 * 1024
	DefaultArgon2Iter            = 3
	DefaultArgon2Threads         = 2
	DefaultPasswordCPUShare      = 0.2
	DefaultPathPrefix            = "/"
	DefaultPolicy                = PolicyTwoFactor
	DefaultUserHeader            = "Remote-User"
	DefaultGroupsHeader          = "Remote-Groups"
	DefaultLogLevel              = "info"
	DefaultLogFormat             = "json"
	DefaultLogFlushInterval      = 100 * time.Millisecond
	DefaultGCPercent             = 400
	DefaultMemoryLimitMiB        = 192
	// MaxLogFlushInterval bounds log.flush_interval.
	MaxLogFlushInterval = 10 * time.Second
	// DefaultShutdownTimeout is server.shutdown_timeout.
	DefaultShutdownTimeout = 15 * time.Second

	// MaxCacheMaxAge and MaxCacheSize bound session.cache_max_age and
	// session.cache_size.
	MaxCacheMaxAge = 10 * time.Minute
	MaxCacheSize   = 10_000_000

	// Store drivers.
	DriverEmbedded = "embedded"
	DriverRedis    = "redis"
)

// Defaults returns the configuration used when the file sets nothing:
// every default filled in, paths derived from DefaultDataDir, no routes.
func Defaults() Config {
	c := baseDefaults()
	c.FillDerived()
	return c
}

// baseDefaults holds the defaults the file is decoded over. Values that
// depend on other keys (paths under data_dir, per-route defaults) are
// filled by FillDerived once the file has been read.
func baseDefaults() Config {
	return Config{
		Listen:  DefaultListen,
		DataDir: DefaultDataDir,
		Store: Store{
			Driver: DefaultStoreDriver,
			Redis:  Redis{KeyPrefix: DefaultKeyPrefix, PoolSize: DefaultRedisPoolSize},
		},
		Session: Session{
			CookieName:  DefaultCookieName,
			IdleTimeout: DefaultIdleTimeout,
			MaxLifetime: DefaultMaxLifetime,
			CacheMaxAge: DefaultCacheMaxAge,
			CacheSize:   DefaultCacheSize,
		},
		TwoFactor: TwoFactor{
			Mode:      ModeOn,
			Period:    DefaultPeriod,
			Digits:    DefaultDigits,
			Algorithm: DefaultAlgorithm,
			Skew:      DefaultSkew,
			DriftScan: DefaultDriftScan,
		},
		Time:  Time{CheckInterval: DefaultClockCheck, WarnOver: DefaultClockWarnOver},
		Proxy: Proxy{ResponseHeaderTimeout: DefaultResponseHeaderTimeout},
		Password: Password{Argon2: Argon2{
			MemoryKiB:   DefaultArgon2MemoryKiB,
			Iterations:  DefaultArgon2Iter,
			Parallelism: DefaultArgon2Threads,
		}, CPUShare: DefaultPasswordCPUShare},
		Regulation: Regulation{
			MaxFailures: DefaultMaxFailures,
			Window:      DefaultRegWindow,
			Ban:         DefaultBan,
			MaxBan:      DefaultMaxBan,
		},
		Log:    Log{Level: DefaultLogLevel, Format: DefaultLogFormat, FlushInterval: DefaultLogFlushInterval},
		Server: Server{ShutdownTimeout: DefaultShutdownTimeout, WatchConfig: true, GCPercent: DefaultGCPercent, MemoryLimitMiB: DefaultMemoryLimitMiB},
		TLS:    TLS{Mode: TLSOff, ACME: ACME{CA: LetsEncryptProduction}},
		WebAuthn: WebAuthn{
			Enabled:          true,
			UserVerification: DefaultUserVerification,
			Attestation:      DefaultAttestation,
			Timeout:          DefaultWebAuthnTimeout,
		},
	}
}

// FillDerived sets the defaults that depend on other values: paths under
// data_dir and the per-route defaults. Only empty values are filled. Load
// calls it; callers that build a Config in code (the demo, tests) call it
// before Validate.
func (c *Config) FillDerived() {
	if c.SecretKeyFile == "" && c.DataDir != "" {
		c.SecretKeyFile = filepath.Join(c.DataDir, "secret.key")
	}
	if c.Store.Path == "" && c.DataDir != "" {
		c.Store.Path = filepath.Join(c.DataDir, "authgate.db")
	}
	if c.TLS.ACME.Storage == "" && c.DataDir != "" {
		c.TLS.ACME.Storage = filepath.Join(c.DataDir, "acme")
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.PathPrefix == "" {
			r.PathPrefix = DefaultPathPrefix
		}
		if r.Policy == "" {
			r.Policy = DefaultPolicy
		}
		if r.IdentityHeaders.User == "" {
			r.IdentityHeaders.User = DefaultUserHeader
		}
		if r.IdentityHeaders.Groups == "" {
			r.IdentityHeaders.Groups = DefaultGroupsHeader
		}
		if r.UpgradeProtocols == nil { // not set; an explicit [] stays empty
			r.UpgradeProtocols = []string{DefaultUpgradeProtocol}
		}
	}
}
