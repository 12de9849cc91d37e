package users

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
)

// The real stores and settings satisfy what Service needs.
var (
	_ ServiceStore  = (*embedded.Store)(nil)
	_ ServiceStore  = (*redisstore.Store)(nil)
	_ SettingsStore = (*settings.Source)(nil)
	_ Recorder      = (*audit.Recorder)(nil)
)

// argonHash is a well-formed argon2id PHC string (its content is never
// verified here: hashing belongs to the caller).
const argonHash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"

var (
	bcryptOnce sync.Once
	bcryptA    string
	bcryptB    string
)

// bcryptHashes returns two distinct valid bcrypt hashes ($2a$ as Go writes
// them, and the same as $2y$ as htpasswd writes them).
func bcryptHashes(t testing.TB) (string, string) {
	t.Helper()
	bcryptOnce.Do(func() {
		a, err := bcrypt.GenerateFromPassword([]byte("first"), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		b, err := bcrypt.GenerateFromPassword([]byte("second"), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		bcryptA = string(a)
		bcryptB = "$2y$" + string(b)[4:]
	})
	return bcryptA, bcryptB
}

// newClock is a settable test clock.
func newClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC))
}

// openStore opens a real embedded store in a temp dir.
func openStore(t testing.TB, c *testkit.Clock) *embedded.Store {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "authgate.db"), embedded.Options{Now: c.Now})
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
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

const testDefaultIssuer = "gw.example"

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

// putSession stores a live session for user.
func putSession(t testing.TB, st store.Sessions, c *testkit.Clock, id, user string) {
	t.Helper()
	now := c.Now()
	err := st.PutSession(context.Background(), store.Session{
		IDHash: id, User: user, Stage: store.StageFull,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour),
	}, time.Hour)
	if err != nil {
		t.Fatalf("put session: %v", err)
	}
}

func sessionCount(t testing.TB, st store.Sessions, user string) int {
	t.Helper()
	ss, err := st.ListUserSessions(context.Background(), user)
	if err != nil {
		t.Fatalf("list sessions of %s: %v", user, err)
	}
	return len(ss)
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

// ev is the part of an audit event tests compare.
type ev struct{ Actor, Action, Target, Detail string }

func auditSummary(t testing.TB, st store.Audit) []ev {
	t.Helper()
	var out []ev
	for _, e := range auditEvents(t, st) {
		out = append(out, ev{e.Actor, e.Action, e.Target, e.Detail})
	}
	return out
}
