package useradmin

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
)

// The real embedded store satisfies what Service needs.
var _ ServiceStore = (*embedded.Store)(nil)

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

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openStore opens a real embedded store in a temp dir.
func openStore(t testing.TB, c *clock) *embedded.Store {
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

// putSession stores a live session for user.
func putSession(t testing.TB, st *embedded.Store, c *clock, id, user string) {
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

func sessionCount(t testing.TB, st *embedded.Store, user string) int {
	t.Helper()
	ss, err := st.ListUserSessions(context.Background(), user)
	if err != nil {
		t.Fatalf("list sessions of %s: %v", user, err)
	}
	return len(ss)
}
