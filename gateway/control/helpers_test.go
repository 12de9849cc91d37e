package control

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
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/users"
)

// The transport's tests run a real users.Service on a real embedded store
// behind the socket (what the behaviour is on both backends is
// gateway/users' to test).

// argonHash is a well-formed argon2id PHC string (never verified here).
const argonHash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"

var (
	bcryptOnce sync.Once
	bcryptA    string
	bcryptB    string
)

// bcryptHashes returns two distinct valid bcrypt hashes ($2a$ as Go writes
// them, and one as $2y$ as htpasswd writes them).
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
		bcryptA, bcryptB = string(a), "$2y$"+string(b)[4:]
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

// env is a users.Service over a real store, with the parts it was built
// from.
type env struct {
	st  store.Store
	c   *testkit.Clock
	svc *users.Service
}

const testDefaultIssuer = "gw.example"

func newEnv(st store.Store, c *testkit.Clock) *env {
	set := settings.New(st, settings.Values{Mode: settings.ModeOn}, time.Hour, c.Now)
	rec := audit.New(st, zerolog.Nop(), c.Now)
	return &env{st: st, c: c, svc: users.NewService(st, set, rec, testDefaultIssuer, c.Now)}
}

// addUser stores a user directly (no audit event).
func addUser(t testing.TB, st store.Store, c *testkit.Clock, name, role string, twoFactor bool) {
	t.Helper()
	u := store.User{Name: name, PasswordHash: argonHash, Role: role, CreatedAt: c.Now(), UpdatedAt: c.Now()}
	if twoFactor {
		u.TOTPSecret = []byte("sealed-" + name)
		u.TOTPEnrolledAt = c.Now().Add(-48 * time.Hour)
		u.TOTPLastUsedAt = c.Now().Add(-time.Hour)
		u.RecoveryCodes = []string{"hash1", "hash2"}
		u.RecoveryCodesAt = c.Now().Add(-48 * time.Hour)
	}
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

func getUser(t testing.TB, st store.Store, name string) store.User {
	t.Helper()
	u, err := st.GetUser(context.Background(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return u
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

// ev is the part of an audit event tests compare.
type ev struct{ Actor, Action, Target, Detail string }

// auditSummary returns the stored audit events of both trails, oldest
// first (events of one trail keep their stored order).
func auditSummary(t testing.TB, st store.Audit) []ev {
	t.Helper()
	var all []store.AuditEvent
	for _, trail := range store.AuditTrails {
		evs, err := st.ListAudit(context.Background(), trail, audit.KeepOf(trail))
		if err != nil {
			t.Fatalf("list audit %s: %v", trail, err)
		}
		slices.Reverse(evs)
		all = append(all, evs...)
	}
	slices.SortStableFunc(all, func(a, b store.AuditEvent) int { return a.Time.Compare(b.Time) })
	var out []ev
	for _, e := range all {
		out = append(out, ev{e.Actor, e.Action, e.Target, e.Detail})
	}
	return out
}
