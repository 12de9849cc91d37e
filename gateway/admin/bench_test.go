package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/store"
)

// BenchmarkUsersPage10000 renders the users page over an embedded store
// holding 10,000 users (pages of 50, with and without a filter).
func BenchmarkUsersPage10000(b *testing.B) {
	dir := b.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		// tmpfs keeps the 10,000 inserts' fsyncs out of the setup time.
		if d, err := os.MkdirTemp("/dev/shm", "admin-bench-"); err == nil {
			dir = d
			b.Cleanup(func() { _ = os.RemoveAll(d) })
		}
	}
	e := newEnv(b, func(t testing.TB, c *testkit.Clock) store.Store { return openEmbeddedIn(t, dir, c) })
	ctx := context.Background()
	now := e.clk.Now()
	hash, err := e.hasher.Hash(oldPassword)
	if err != nil {
		b.Fatal(err)
	}
	admin := store.User{Name: "admin", PasswordHash: hash, Role: store.RoleAdmin, CreatedAt: now, UpdatedAt: now}
	if err := e.st.CreateUser(ctx, admin); err != nil {
		b.Fatal(err)
	}
	for i := range 9999 {
		u := store.User{Name: fmt.Sprintf("user%05d", i), PasswordHash: hash, Role: store.RoleUser,
			Groups: []string{"staff"}, CreatedAt: now, UpdatedAt: now}
		if i%2 == 0 {
			u.TOTPSecret = []byte("sealed")
			u.TOTPEnrolledAt = now
			u.RecoveryCodes = []string{"a", "b", "c"}
		}
		if err := e.st.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	if n, _ := e.st.CountUsers(ctx); n != 10000 {
		b.Fatalf("%d users", n)
	}
	h := New(Deps{Users: e.svc, Upstreams: e.proxy, Hasher: e.hasher, Pages: rendererFor(b), Now: e.clk.Now}, Options{}).Handler()
	cur := auth.Current{User: admin, Session: store.Session{User: "admin", Stage: store.StageFull, TwoFactor: true, TwoFactorAt: now}}
	reqCtx := audit.WithActor(auth.WithCurrent(ctx, cur), "admin", clientIP)

	for _, bc := range []struct{ name, query, wantFirst string }{
		{"first", "", "admin"},
		{"page100", "?page=100", "user04949"},
		{"filtered", "?q=user09&status=enabled&page=3", "user09200"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var body string
			for b.Loop() {
				w := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodGet, UsersPath+bc.query, nil).WithContext(reqCtx)
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
				body = w.Body.String()
			}
			names := rowNames(body)
			if len(names) != DefaultPageSize || names[0] != bc.wantFirst || !strings.Contains(body, "<strong>") {
				b.Fatalf("%d rows, first %q", len(names), names[0])
			}
		})
	}
}
