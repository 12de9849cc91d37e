package control

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
	"github.com/authgate/authgate/gateway/users/userstest"
)

// The transport's tests run a real users.Service on a real embedded store
// behind the socket (what the behaviour is on both backends is
// gateway/users' to test).

// Fixtures shared with gateway/users' tests (gateway/users/userstest).
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

// env is a users.Service over a real store, with the parts it was built
// from.
type env struct {
	st  store.Store
	c   *testkit.Clock
	svc *users.Service
}

func newEnv(st store.Store, c *testkit.Clock) *env {
	set := settings.New(st, settings.Values{Mode: settings.ModeOn}, time.Hour, c.Now)
	rec := audit.New(st, zerolog.Nop(), c.Now)
	return &env{st: st, c: c, svc: users.NewService(st, set, rec, testDefaultIssuer, c.Now)}
}

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
	return summarize(all)
}
