package users

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
	"github.com/authgate/authgate/gateway/users/userstest"
)

// The real stores and settings satisfy what Service needs.
var (
	_ ServiceStore  = (*embedded.Store)(nil)
	_ ServiceStore  = (*redisstore.Store)(nil)
	_ SettingsStore = (*settings.Source)(nil)
	_ Recorder      = (*audit.Recorder)(nil)
)

// Fixtures shared with gateway/control's tests (gateway/users/userstest).
const (
	argonHash         = userstest.ArgonHash
	testDefaultIssuer = userstest.DefaultIssuer
)

var (
	bcryptHashes = userstest.BcryptHashes
	newClock     = userstest.NewClock
	openStore    = userstest.OpenStore
	addUser      = userstest.AddUser
	getUser      = userstest.GetUser
	putSession   = userstest.PutSession
	sessionCount = userstest.SessionCount
	addPasskeys  = userstest.AddPasskeys
)

// ev is the part of an audit event tests compare.
type ev struct{ Actor, Action, Target, Detail string }

func summarize(evs []store.AuditEvent) []ev {
	var out []ev
	for _, e := range evs {
		out = append(out, ev{e.Actor, e.Action, e.Target, e.Detail})
	}
	return out
}

// openRedis starts a real redis-server for the test and returns a store
// on it.
func openRedis(t testing.TB) *redisstore.Store {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	st := redisstore.New(redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}}), redisstore.Options{})
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// env is a Service over a real store, with the parts it was built from.
type env struct {
	st  store.Store
	c   *testkit.Clock
	set *settings.Source
	svc *Service
}

func newEnv(st store.Store, c *testkit.Clock) *env {
	set := settings.New(st, settings.Values{Mode: settings.ModeOn}, time.Hour, c.Now)
	rec := audit.New(st, zerolog.Nop(), c.Now)
	return &env{st: st, c: c, set: set, svc: NewService(st, set, rec, testDefaultIssuer, c.Now)}
}

// eachBackend runs fn on a fresh embedded store and on a fresh Redis.
func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Run("embedded", func(t *testing.T) {
		c := newClock()
		fn(t, newEnv(openStore(t, c), c))
	})
	t.Run("redis", func(t *testing.T) {
		c := newClock()
		fn(t, newEnv(openRedis(t), c))
	})
}

// auditEvents returns the stored audit events of both trails, oldest
// first.
func auditEvents(t testing.TB, st store.Audit) []store.AuditEvent {
	t.Helper()
	var all []store.AuditEvent
	for _, trail := range store.AuditTrails {
		evs, err := st.ListAudit(context.Background(), trail, audit.KeepOf(trail))
		if err != nil {
			t.Fatalf("list audit %s: %v", trail, err)
		}
		all = mergeNewestFirst(all, evs)
	}
	slices.Reverse(all)
	return all
}

func auditSummary(t testing.TB, st store.Audit) []ev {
	t.Helper()
	return summarize(auditEvents(t, st))
}
