package redisstore

import (
	"crypto/tls"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ClientOptions selects and reaches the Redis deployment: one address is
// a single server, several are Cluster seeds, and MasterName set means
// Sentinel (Addrs are then the sentinels).
type ClientOptions struct {
	Addrs      []string
	Username   string
	Password   string
	DB         int
	MasterName string
	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// (with MasterName), separately from Username/Password for the data
	// nodes.
	SentinelUsername string
	SentinelPassword string
	// TLS, when non-nil, is used for every connection.
	TLS *tls.Config
	// PoolSize bounds the connections to each node (0: go-redis's
	// default, 10 per CPU).
	PoolSize int
}

// Timeouts of clients made by NewClient: long enough for a busy server,
// short enough that a dead one turns into an error, not a hung request.
const (
	dialTimeout = 2 * time.Second
	ioTimeout   = 2 * time.Second
)

var silenceOnce sync.Once

// NewClient returns a fail-fast client: one dial attempt per connection
// (go-redis would otherwise dial five times, 100 ms apart), one command
// retry, 2 s dial/read/write timeouts, and context deadlines honoured.
//
// go-redis logs failed dials to stderr through a process-wide logger;
// NewClient turns that logger off (errors still reach the caller).
func NewClient(o ClientOptions) redis.UniversalClient {
	silenceOnce.Do(func() { redis.SetLogger(&logging.VoidLogger{}) })
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 o.Addrs,
		Username:              o.Username,
		Password:              o.Password,
		DB:                    o.DB,
		MasterName:            o.MasterName,
		SentinelUsername:      o.SentinelUsername,
		SentinelPassword:      o.SentinelPassword,
		TLSConfig:             o.TLS,
		DialTimeout:           dialTimeout,
		ReadTimeout:           ioTimeout,
		WriteTimeout:          ioTimeout,
		PoolTimeout:           ioTimeout + time.Second,
		PoolSize:              o.PoolSize,
		DialerRetries:         1,
		MaxRetries:            1,
		ContextTimeoutEnabled: true,
		// Redis 7.0 knows neither CLIENT SETINFO nor maintenance
		// notifications; skip the extra round trips on every connect.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}
