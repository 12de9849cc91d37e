package users

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users/userstest"
)

// seedPageUsers stores 120 users: "Alice" and "MALICE", then user000 to
// user117. Alice and every userNNN with NNN divisible by 3 have 2FA (41
// enabled, 79 not). user003 has two sessions, three recovery codes and
// must change its password.
func seedPageUsers(t testing.TB, st store.Store, c *testkit.Clock) {
	t.Helper()
	ctx := context.Background()
	names := []string{"Alice", "MALICE"}
	for i := range 118 {
		names = append(names, fmt.Sprintf("user%03d", i))
	}
	for i, name := range names {
		u := store.User{Name: name, PasswordHash: argonHash, Role: store.RoleUser, CreatedAt: c.Now(), UpdatedAt: c.Now()}
		if name == "Alice" || i >= 2 && (i-2)%3 == 0 {
			u.TOTPSecret = []byte("sealed")
			u.TOTPEnrolledAt = c.Now().Add(-time.Hour)
			u.TOTPLastUsedAt = c.Now().Add(-time.Minute)
		}
		if name == "user003" {
			u.RecoveryCodes = []string{"h1", "h2", "h3"}
			u.MustChangePassword = true
		}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	putSession(t, st, c, "sess-user003-a", "user003")
	putSession(t, st, c, "sess-user003-b", "user003")
	putSession(t, st, c, "sess-alice", "Alice")
}

func TestPage(t *testing.T) { eachBackend(t, testPage) }

func testPage(t *testing.T, e *env) {
	seedPageUsers(t, e.st, e.c)
	enabled := func(k int) string { // k-th user with 2FA, 0-based
		if k == 0 {
			return "Alice"
		}
		return fmt.Sprintf("user%03d", 3*(k-1))
	}
	tests := []struct {
		name      string
		f         Filter
		total     int
		page      int
		pageSize  int
		n         int
		first     string
		last      string
		wantError error
	}{
		{"defaults", Filter{}, 120, 1, 50, 50, "Alice", "user047", nil},
		{"page 2", Filter{Page: 2}, 120, 2, 50, 50, "user048", "user097", nil},
		{"last page", Filter{Page: 3}, 120, 3, 50, 20, "user098", "user117", nil},
		{"past the end", Filter{Page: 4}, 120, 4, 50, 0, "", "", nil},
		{"page below 1", Filter{Page: -3}, 120, 1, 50, 50, "Alice", "user047", nil},
		{"page size capped", Filter{PageSize: 1000}, 120, 1, MaxPageSize, 120, "Alice", "user117", nil},
		{"query is case-insensitive", Filter{Query: "alice"}, 2, 1, 50, 2, "Alice", "MALICE", nil},
		{"query trimmed", Filter{Query: "  ALIC "}, 2, 1, 50, 2, "Alice", "MALICE", nil},
		{"query and status", Filter{Query: "ALI", Status: StatusEnabled}, 1, 1, 50, 1, "Alice", "Alice", nil},
		{"enabled paged", Filter{Status: StatusEnabled, PageSize: 10, Page: 2}, 41, 2, 10, 10, enabled(10), enabled(19), nil},
		{"disabled", Filter{Status: StatusDisabled}, 79, 1, 50, 50, "MALICE", "user073", nil},
		{"query disabled", Filter{Query: "user1", Status: StatusDisabled}, 12, 1, 50, 12, "user100", "user116", nil},
		{"no match", Filter{Query: "zzz"}, 0, 1, 50, 0, "", "", nil},
		{"bad status", Filter{Status: "on"}, 0, 0, 0, 0, "", "", ErrInvalid},
	}
	// Batches smaller than, equal to and larger than a page all give the
	// same pages.
	for _, batch := range []int{7, 50, listPage} {
		e.svc.pageSize = batch
		for _, tt := range tests {
			t.Run(fmt.Sprintf("batch=%d/%s", batch, tt.name), func(t *testing.T) {
				p, err := e.svc.Page(context.Background(), tt.f)
				if tt.wantError != nil {
					if !errors.Is(err, tt.wantError) {
						t.Fatalf("Page = %v, want %v", err, tt.wantError)
					}
					return
				}
				if err != nil {
					t.Fatalf("Page: %v", err)
				}
				if p.Total != tt.total || p.Page != tt.page || p.PageSize != tt.pageSize || len(p.Users) != tt.n {
					t.Fatalf("total=%d page=%d size=%d rows=%d, want %d %d %d %d",
						p.Total, p.Page, p.PageSize, len(p.Users), tt.total, tt.page, tt.pageSize, tt.n)
				}
				if p.Users == nil {
					t.Error("Users is nil, want an empty slice")
				}
				if tt.n > 0 && (p.Users[0].Name != tt.first || p.Users[tt.n-1].Name != tt.last) {
					t.Errorf("rows %s..%s, want %s..%s", p.Users[0].Name, p.Users[tt.n-1].Name, tt.first, tt.last)
				}
				for _, u := range p.Users {
					if tt.f.Status == StatusEnabled && !u.TwoFactor || tt.f.Status == StatusDisabled && u.TwoFactor {
						t.Errorf("%s (2FA %v) does not match status %q", u.Name, u.TwoFactor, tt.f.Status)
					}
				}
			})
		}
	}
	e.svc.pageSize = listPage

	// A row shows the user's 2FA state, recovery codes and sessions.
	p, err := e.svc.Page(context.Background(), Filter{Query: "user003"})
	if err != nil || len(p.Users) != 1 {
		t.Fatalf("Page user003 = %+v, %v", p, err)
	}
	u := p.Users[0]
	now := e.c.Now()
	if !u.TwoFactor || u.Sessions != 2 || u.RecoveryLeft != 3 || !u.MustChangePassword ||
		!u.TOTPEnrolledAt.Equal(now.Add(-time.Hour)) || !u.TOTPLastUsedAt.Equal(now.Add(-time.Minute)) {
		t.Errorf("user003 row = %+v", u)
	}
}

func TestPageFactors(t *testing.T) { eachBackend(t, testPageFactors) }

// A row says which second factors a user has; a user with passkeys only
// has 2FA, for the status filter too. No credential id or key is shown.
func testPageFactors(t *testing.T, e *env) {
	ctx := context.Background()
	addUser(t, e.st, e.c, "app", store.RoleUser, true)
	addUser(t, e.st, e.c, "both", store.RoleUser, true)
	addPasskeys(t, e.st, e.c, "both", 1)
	addUser(t, e.st, e.c, "keys", store.RoleUser, false)
	addPasskeys(t, e.st, e.c, "keys", 2)
	addUser(t, e.st, e.c, "none", store.RoleUser, false)

	names := func(us []UserInfo) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.Name)
		}
		return out
	}
	for status, want := range map[string][]string{
		"":             {"app", "both", "keys", "none"},
		StatusEnabled:  {"app", "both", "keys"},
		StatusDisabled: {"none"},
	} {
		p, err := e.svc.Page(ctx, Filter{Status: status})
		if err != nil {
			t.Fatalf("Page status %q: %v", status, err)
		}
		if got := names(p.Users); !slices.Equal(got, want) || p.Total != len(want) {
			t.Errorf("status %q: %v (total %d), want %v", status, got, p.Total, want)
		}
	}

	keys := userstest.Passkeys(e.c, 2)
	wantKeys := []PasskeyInfo{
		{Name: "Passkey 1", CreatedAt: keys[0].CreatedAt, LastUsedAt: keys[0].LastUsedAt, Discoverable: true},
		{Name: "Key 2", CreatedAt: keys[1].CreatedAt},
	}
	type factors struct {
		twoFactor, totp bool
		passkeys        []PasskeyInfo
	}
	want := map[string]factors{
		"app":  {true, true, nil},
		"both": {true, true, wantKeys[:1]},
		"keys": {true, false, wantKeys},
		"none": {false, false, nil},
	}
	p, err := e.svc.Page(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	list, err := e.svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range [][]UserInfo{p.Users, list} {
		for _, u := range rows {
			w := want[u.Name]
			if u.TwoFactor != w.twoFactor || u.TOTP != w.totp || !samePasskeys(u.Passkeys, w.passkeys) {
				t.Errorf("%s: two_factor=%v totp=%v passkeys=%+v, want %v %v %+v", u.Name, u.TwoFactor, u.TOTP, u.Passkeys, w.twoFactor, w.totp, w.passkeys)
			}
			b, err := json.Marshal(u)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{"credential-", "cose-public-key", "handle-of-", "sealed", "hash1",
				base64.StdEncoding.EncodeToString([]byte("credential-1")), base64.StdEncoding.EncodeToString([]byte("cose-public-key-1"))} {
				if strings.Contains(string(b), secret) {
					t.Errorf("%s's UserInfo shows %q: %s", u.Name, secret, b)
				}
			}
		}
	}
}

func samePasskeys(got, want []PasskeyInfo) bool {
	return slices.EqualFunc(got, want, func(g, w PasskeyInfo) bool {
		return g.Name == w.Name && g.CreatedAt.Equal(w.CreatedAt) && g.LastUsedAt.Equal(w.LastUsedAt) && g.Discoverable == w.Discoverable
	})
}

// countingStore counts the session reads a Page makes.
type countingStore struct {
	store.Store
	sessionReads atomic.Int64
	listCalls    atomic.Int64
}

func (c *countingStore) ListUserSessions(ctx context.Context, user string) ([]store.Session, error) {
	c.sessionReads.Add(1)
	return c.Store.ListUserSessions(ctx, user)
}

func (c *countingStore) ListUsers(ctx context.Context, opts store.ListOptions) ([]store.User, error) {
	c.listCalls.Add(1)
	if opts.Limit <= 0 || opts.Limit > listPage {
		return nil, fmt.Errorf("ListUsers limit %d: a page must read users in bounded batches", opts.Limit)
	}
	return c.Store.ListUsers(ctx, opts)
}

// A page reads sessions for its own rows only, and the users in batches.
func TestPageReadsSessionsOfRowsOnly(t *testing.T) {
	c := newClock()
	cs := &countingStore{Store: openStore(t, c)}
	seedPageUsers(t, cs, c)
	svc := newEnv(cs, c).svc
	p, err := svc.Page(context.Background(), Filter{PageSize: 10, Page: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Users) != 10 {
		t.Fatalf("%d rows, want 10", len(p.Users))
	}
	if n := cs.sessionReads.Load(); n != 10 {
		t.Errorf("%d session reads for a page of 10, want 10", n)
	}
	if n := cs.listCalls.Load(); n != 1 {
		t.Errorf("%d ListUsers calls for 120 users, want 1 batch", n)
	}
}

// BenchmarkPage10000 lists one filtered page out of 10,000 users (the
// admin Manage Users table), on each backend.
func BenchmarkPage10000(b *testing.B) {
	const users = 10000
	seed := func(b *testing.B, st store.Store) {
		ctx := context.Background()
		var wg sync.WaitGroup
		var failed atomic.Value
		work := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range work {
					u := store.User{Name: fmt.Sprintf("user%05d", i), PasswordHash: argonHash, Role: store.RoleUser}
					if i%2 == 0 {
						u.TOTPSecret = []byte("sealed")
					}
					if err := st.CreateUser(ctx, u); err != nil {
						failed.Store(err)
					}
				}
			})
		}
		for i := range users {
			work <- i
		}
		close(work)
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	run := func(b *testing.B, st store.Store) {
		c := newClock()
		seed(b, st)
		svc := newEnv(st, c).svc
		// "user01" matches 1,000 users, half of them with 2FA: page 3 of
		// those; the whole table is still scanned for the total.
		f := Filter{Query: "USER01", Status: StatusEnabled, Page: 3}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			p, err := svc.Page(context.Background(), f)
			if err != nil {
				b.Fatal(err)
			}
			if p.Total != 500 || len(p.Users) != DefaultPageSize {
				b.Fatalf("total %d rows %d, want 500 and %d", p.Total, len(p.Users), DefaultPageSize)
			}
		}
	}
	b.Run("embedded", func(b *testing.B) { run(b, openStore(b, newClock())) })
	b.Run("redis", func(b *testing.B) { run(b, openRedis(b)) })
}
