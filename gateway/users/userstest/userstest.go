// Package userstest holds the fixtures the tests of gateway/users (the
// service) and gateway/control (its socket transport) share: a settable
// clock, a real embedded store, users and sessions put straight into a
// store, and password hashes of the accepted kinds. It does not import
// gateway/users, so the service's own in-package tests can use it.
package userstest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
)

// ArgonHash is a well-formed argon2id PHC string (its content is never
// verified by these tests: hashing belongs to the caller).
const ArgonHash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"

// DefaultIssuer is the Issuer the tests' services are built with.
const DefaultIssuer = "gw.example"

var (
	bcryptOnce sync.Once
	bcryptA    string
	bcryptB    string
)

// BcryptHashes returns two distinct valid bcrypt hashes ($2a$ as Go
// writes them, and one as $2y$ as htpasswd writes them).
func BcryptHashes(t testing.TB) (string, string) {
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

// NewClock is a settable test clock.
func NewClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC))
}

// OpenStore opens a real embedded store in a temp dir, closed when t
// ends.
func OpenStore(t testing.TB, c *testkit.Clock) *embedded.Store {
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

// AddUser stores a user directly (no audit event); with twoFactor it has
// an authenticator and two recovery codes.
func AddUser(t testing.TB, st store.Store, c *testkit.Clock, name, role string, twoFactor bool) {
	t.Helper()
	u := store.User{Name: name, PasswordHash: ArgonHash, Role: role, CreatedAt: c.Now(), UpdatedAt: c.Now()}
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

// GetUser reads a user straight from the store.
func GetUser(t testing.TB, st store.Store, name string) store.User {
	t.Helper()
	u, err := st.GetUser(context.Background(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return u
}

// PutSession stores a live, complete session of an hour for user.
func PutSession(t testing.TB, st store.Sessions, c *testkit.Clock, id, user string) {
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

// SessionCount is how many sessions user has in the store.
func SessionCount(t testing.TB, st store.Sessions, user string) int {
	t.Helper()
	ss, err := st.ListUserSessions(context.Background(), user)
	if err != nil {
		t.Fatalf("list sessions of %s: %v", user, err)
	}
	return len(ss)
}

// Passkeys returns n registered WebAuthn credentials for a fixture: the
// first a discoverable passkey ("Passkey 1") last used an hour before c's
// time, the others security keys ("Key 2", ...) never used; the k-th was
// added k days before c's time.
func Passkeys(c *testkit.Clock, n int) []store.Passkey {
	var out []store.Passkey
	for i := range n {
		p := store.Passkey{
			ID:              []byte(fmt.Sprintf("credential-%d", i+1)),
			Name:            fmt.Sprintf("Key %d", i+1),
			PublicKey:       []byte(fmt.Sprintf("cose-public-key-%d", i+1)),
			AttestationType: "none",
			Transports:      []string{"usb"},
			SignCount:       uint32(i),
			CreatedAt:       c.Now().Add(-time.Duration(i+1) * 24 * time.Hour),
		}
		if i == 0 {
			p.Name, p.Discoverable, p.Transports = "Passkey 1", true, []string{"internal", "hybrid"}
			p.BackupEligible, p.BackupState = true, true
			p.LastUsedAt = c.Now().Add(-time.Hour)
		}
		out = append(out, p)
	}
	return out
}

// PasskeyUserID is the passkey user handle AddPasskeys gives a user.
func PasskeyUserID(name string) []byte { return []byte("handle-of-" + name) }

// AddPasskeys gives a stored user n passkeys (see Passkeys), replacing
// any, and the passkey user handle PasskeyUserID(name).
func AddPasskeys(t testing.TB, st store.Store, c *testkit.Clock, name string, n int) {
	t.Helper()
	_, err := st.UpdateUser(context.Background(), name, func(u *store.User) error {
		u.PasskeyUserID = PasskeyUserID(name)
		u.Passkeys = Passkeys(c, n)
		return nil
	})
	if err != nil {
		t.Fatalf("add passkeys to %s: %v", name, err)
	}
}
