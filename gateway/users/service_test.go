package users

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"A.b_c@d-e", true},
		{"0day", true},
		{"x", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{".hidden", false},
		{"-flag", false},
		{"has space", false},
		{"slash/name", false},
		{"colon:name", false},
		{"ümlaut", false},
		{"new\nline", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			err := ValidateName(tt.name)
			if tt.ok && err != nil {
				t.Errorf("ValidateName(%q) = %v, want nil", tt.name, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Errorf("ValidateName(%q) = %v, want ErrInvalid", tt.name, err)
			}
		})
	}
}

func TestAdd(t *testing.T) { eachBackend(t, testAdd) }

func testAdd(t *testing.T, e *env) {
	ctx := context.Background()
	c, st, s := e.c, e.st, e.svc
	bc, _ := bcryptHashes(t)

	if err := s.Add(ctx, "alice", argonHash, store.RoleAdmin, []string{"ops", "dev", "ops"}); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := s.Add(ctx, "bob", bc, store.RoleUser, nil); err != nil {
		t.Fatalf("Add bcrypt user: %v", err)
	}
	u, err := st.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if u.PasswordHash != argonHash || u.Role != store.RoleAdmin || u.MustChangePassword || u.HasTOTP() {
		t.Errorf("stored user = %+v", u)
	}
	if want := []string{"ops", "dev"}; !reflect.DeepEqual(u.Groups, want) {
		t.Errorf("groups = %v, want %v (duplicates dropped, order kept)", u.Groups, want)
	}
	if !u.CreatedAt.Equal(c.Now()) || !u.UpdatedAt.Equal(c.Now()) {
		t.Errorf("times = %v / %v, want %v", u.CreatedAt, u.UpdatedAt, c.Now())
	}

	err = s.Add(ctx, "alice", bc, store.RoleUser, nil)
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("Add existing = %v, want store.ErrExists", err)
	}
	if !strings.Contains(err.Error(), `"alice"`) {
		t.Errorf("error %q does not name the user", err)
	}
	if u2, _ := st.GetUser(ctx, "alice"); u2.PasswordHash != argonHash {
		t.Error("Add of an existing user overwrote it")
	}
	// Only the successful adds are audited; without an actor in the
	// context the actor is the CLI.
	want := []ev{
		{"cli", "user_added", "alice", "role=admin groups=ops,dev"},
		{"cli", "user_added", "bob", "role=user"},
	}
	if got := auditSummary(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("audit = %+v, want %+v", got, want)
	}
}

func TestAddInvalid(t *testing.T) {
	bc, _ := bcryptHashes(t)
	tests := []struct {
		name, user, hash, role string
		groups                 []string
		inMsg, field           string
	}{
		{"empty name", "", bc, store.RoleUser, nil, "user name", "user name"},
		{"bad name", "a b", bc, store.RoleUser, nil, "user name", "user name"},
		{"dot name", ".a", bc, store.RoleUser, nil, "user name", "user name"},
		{"role empty", "carol", bc, "", nil, "role", "role"},
		{"role unknown", "carol", bc, "root", nil, "role", "role"},
		{"plaintext password", "carol", "hunter2", store.RoleUser, nil, "password hash", "password hash"},
		{"empty hash", "carol", "", store.RoleUser, nil, "password hash", "password hash"},
		{"truncated bcrypt", "carol", bc[:40], store.RoleUser, nil, "bcrypt", "password hash"},
		{"md5 htpasswd", "carol", "$apr1$abc$0123456789abcdefghijkl", store.RoleUser, nil, "password hash", "password hash"},
		{"broken argon2", "carol", "$argon2id$v=19$m=1$", store.RoleUser, nil, "argon2id", "password hash"},
		{"bad group", "carol", bc, store.RoleUser, []string{"ok", "not ok"}, "group", "group"},
		{"empty group", "carol", bc, store.RoleUser, []string{""}, "group", "group"},
	}
	eachBackend(t, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := e.svc.Add(context.Background(), tt.user, tt.hash, tt.role, tt.groups)
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Add = %v, want ErrInvalid", err)
				}
				if !strings.Contains(err.Error(), tt.inMsg) {
					t.Errorf("error %q does not mention %q", err, tt.inMsg)
				}
				ie, ok := errors.AsType[*InvalidError](err)
				if !ok || ie.Field != tt.field || err.Error() != ErrInvalid.Error()+": "+ie.Message {
					t.Errorf("error %q: InvalidError %+v, want field %q and the message after the prefix", err, ie, tt.field)
				}
				if tt.hash != "" && strings.Contains(err.Error(), tt.hash) {
					t.Errorf("error %q repeats the hash/password", err)
				}
				if n, _ := e.st.CountUsers(context.Background()); n != 0 {
					t.Errorf("%d users stored after a rejected Add", n)
				}
				if got := auditSummary(t, e.st); len(got) != 0 {
					t.Errorf("rejected Add audited: %+v", got)
				}
			})
		}
	})
}

func TestSetPassword(t *testing.T) { eachBackend(t, testSetPassword) }

func testSetPassword(t *testing.T, e *env) {
	ctx := context.Background()
	c, st, s := e.c, e.st, e.svc
	bc, bc2 := bcryptHashes(t)

	created := c.Now()
	for _, name := range []string{"alice", "bob"} {
		if err := s.Add(ctx, name, bc, store.RoleUser, nil); err != nil {
			t.Fatal(err)
		}
	}
	// An admin reset in the web panel set the flag.
	if _, err := st.UpdateUser(ctx, "alice", func(u *store.User) error { u.MustChangePassword = true; return nil }); err != nil {
		t.Fatal(err)
	}
	putSession(t, st, c, "s1", "alice")
	putSession(t, st, c, "s2", "alice")
	putSession(t, st, c, "s3", "bob")

	c.Advance(time.Minute)
	if err := s.SetPassword(ctx, "alice", bc2); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	u, err := st.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash != bc2 {
		t.Error("hash not replaced")
	}
	if u.MustChangePassword {
		t.Error("MustChangePassword not cleared")
	}
	if !u.UpdatedAt.Equal(c.Now()) || !u.CreatedAt.Equal(created) {
		t.Errorf("CreatedAt=%v UpdatedAt=%v, want %v / %v", u.CreatedAt, u.UpdatedAt, created, c.Now())
	}
	if n := sessionCount(t, st, "alice"); n != 0 {
		t.Errorf("alice has %d sessions after SetPassword, want 0", n)
	}
	if n := sessionCount(t, st, "bob"); n != 1 {
		t.Errorf("bob has %d sessions, want 1 (untouched)", n)
	}

	if err := s.SetPassword(ctx, "nobody", bc); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetPassword missing user = %v, want store.ErrNotFound", err)
	}
	if err := s.SetPassword(ctx, "bob", "plain"); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetPassword plaintext = %v, want ErrInvalid", err)
	}
	if err := s.SetPassword(ctx, "-bob", bc); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetPassword bad name = %v, want ErrInvalid", err)
	}
	if u, _ := st.GetUser(ctx, "bob"); u.PasswordHash != bc {
		t.Error("rejected SetPassword changed bob")
	}
	got := auditSummary(t, st)
	want := []ev{{"cli", "password_changed", "alice", "2 session(s) revoked"}}
	if len(got) != 3 || !reflect.DeepEqual(got[2:], want) {
		t.Errorf("audit = %+v, want 2 adds then %+v", got, want)
	}
}

func TestDelete(t *testing.T) { eachBackend(t, testDelete) }

func testDelete(t *testing.T, e *env) {
	ctx := context.Background()
	c, st, s := e.c, e.st, e.svc
	bc, _ := bcryptHashes(t)
	for _, name := range []string{"alice", "bob"} {
		if err := s.Add(ctx, name, bc, store.RoleUser, nil); err != nil {
			t.Fatal(err)
		}
	}
	putSession(t, st, c, "s1", "alice")
	putSession(t, st, c, "s2", "bob")

	if err := s.Delete(ctx, "alice"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := st.GetUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser after Delete = %v, want ErrNotFound", err)
	}
	if _, err := st.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice's session after Delete: %v, want ErrNotFound", err)
	}
	if n := sessionCount(t, st, "bob"); n != 1 {
		t.Errorf("bob has %d sessions, want 1", n)
	}

	err := s.Delete(ctx, "alice")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete missing = %v, want store.ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), `"alice"`) {
		t.Errorf("error %q does not name the user", err)
	}
	// Sessions left over by an interrupted delete are swept even though the
	// user is already gone.
	putSession(t, st, c, "orphan", "ghost")
	if err := s.Delete(ctx, "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete ghost = %v, want store.ErrNotFound", err)
	}
	if n := sessionCount(t, st, "ghost"); n != 0 {
		t.Errorf("ghost has %d sessions after Delete, want 0", n)
	}
	if err := s.Delete(ctx, "a/b"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Delete bad name = %v, want ErrInvalid", err)
	}
	got := auditSummary(t, st)
	want := []ev{{"cli", "user_deleted", "alice", "1 session(s) revoked"}}
	if len(got) != 3 || !reflect.DeepEqual(got[2:], want) {
		t.Errorf("audit = %+v, want 2 adds then %+v", got, want)
	}
}

func TestList(t *testing.T) { eachBackend(t, testList) }

func testList(t *testing.T, e *env) {
	ctx := context.Background()
	c, st, s := e.c, e.st, e.svc
	bc, _ := bcryptHashes(t)

	if got, err := s.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("List empty store = %v, %v", got, err)
	}
	names := []string{"erin", "alice", "dave", "carol", "bob"}
	var want []UserInfo
	for i, name := range names {
		role := store.RoleUser
		if i == 0 {
			role = store.RoleAdmin
		}
		if err := s.Add(ctx, name, bc, role, []string{"g" + name}); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Second)
	}
	if _, err := st.UpdateUser(ctx, "carol", func(u *store.User) error { u.TOTPSecret = []byte("sealed"); return nil }); err != nil {
		t.Fatal(err)
	}
	putSession(t, st, c, "s1", "dave")
	putSession(t, st, c, "s2", "dave")
	putSession(t, st, c, "s3", "alice")

	base := newClock().Now()
	want = []UserInfo{
		{Name: "alice", Role: store.RoleUser, Groups: []string{"galice"}, CreatedAt: base.Add(1 * time.Second), Sessions: 1},
		{Name: "bob", Role: store.RoleUser, Groups: []string{"gbob"}, CreatedAt: base.Add(4 * time.Second)},
		{Name: "carol", Role: store.RoleUser, Groups: []string{"gcarol"}, CreatedAt: base.Add(3 * time.Second), TwoFactor: true},
		{Name: "dave", Role: store.RoleUser, Groups: []string{"gdave"}, CreatedAt: base.Add(2 * time.Second), Sessions: 2},
		{Name: "erin", Role: store.RoleAdmin, Groups: []string{"gerin"}, CreatedAt: base},
	}
	// Page sizes below, at and above the user count, to cover paging.
	for _, page := range []int{1, 2, 5, listPage} {
		t.Run(fmt.Sprintf("page=%d", page), func(t *testing.T) {
			s.pageSize = page
			got, err := s.List(ctx)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("List returned %d users, want %d: %+v", len(got), len(want), got)
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.Name != w.Name || g.Role != w.Role || !reflect.DeepEqual(g.Groups, w.Groups) ||
					g.TwoFactor != w.TwoFactor || g.Sessions != w.Sessions || !g.CreatedAt.Equal(w.CreatedAt) {
					t.Errorf("user %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestImport(t *testing.T) { eachBackend(t, testImport) }

func testImport(t *testing.T, e *env) {
	ctx := context.Background()
	c, st, s := e.c, e.st, e.svc
	bc, bc2 := bcryptHashes(t)

	if err := s.Add(ctx, "alice", argonHash, store.RoleAdmin, []string{"ops"}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Import(ctx, []ImportEntry{
		{Name: "bob", PasswordHash: bc},
		{Name: "alice", PasswordHash: bc2},
		{Name: "carol", PasswordHash: bc2},
	})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	want := ImportResult{Added: []string{"bob", "carol"}, Skipped: []string{"alice"}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("result = %+v, want %+v", res, want)
	}
	alice, _ := st.GetUser(ctx, "alice")
	if alice.PasswordHash != argonHash || alice.Role != store.RoleAdmin {
		t.Errorf("existing user was overwritten: %+v", alice)
	}
	carol, err := st.GetUser(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if carol.PasswordHash != bc2 || carol.Role != store.RoleUser || len(carol.Groups) != 0 || !carol.CreatedAt.Equal(c.Now()) {
		t.Errorf("imported user = %+v", carol)
	}

	// Running the same import again changes nothing.
	res, err = s.Import(ctx, []ImportEntry{{Name: "bob", PasswordHash: bc2}})
	if err != nil || len(res.Added) != 0 || !reflect.DeepEqual(res.Skipped, []string{"bob"}) {
		t.Errorf("re-import = %+v, %v", res, err)
	}
	if bob, _ := st.GetUser(ctx, "bob"); bob.PasswordHash != bc {
		t.Error("re-import overwrote bob")
	}

	res, err = s.Import(ctx, nil)
	if err != nil || len(res.Added)+len(res.Skipped) != 0 {
		t.Errorf("empty import = %+v, %v", res, err)
	}
	// One event per import sums it up (a big import must not flush the
	// capped audit list); an import that did nothing is not an event.
	got := auditSummary(t, st)
	wantEvents := []ev{
		{"cli", "user_added", "alice", "role=admin groups=ops"},
		{"cli", "users_imported", "", "added 2 (bob,carol), skipped 1 existing"},
		{"cli", "users_imported", "", "added 0, skipped 1 existing"},
	}
	if !reflect.DeepEqual(got, wantEvents) {
		t.Errorf("audit = %+v, want %+v", got, wantEvents)
	}
}

func TestImportInvalid(t *testing.T) { eachBackend(t, testImportInvalid) }

func testImportInvalid(t *testing.T, e *env) {
	ctx := context.Background()
	st, s := e.st, e.svc
	bc, _ := bcryptHashes(t)

	_, err := s.Import(ctx, []ImportEntry{
		{Name: "good", PasswordHash: bc},
		{Name: "bad name", PasswordHash: bc},
		{Name: "md5", PasswordHash: "$apr1$salt$hashhashhashhashhashha"},
		{Name: "argon", PasswordHash: argonHash}, // import takes bcrypt only
		{Name: "good", PasswordHash: bc},
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Import = %v, want ErrInvalid", err)
	}
	for _, part := range []string{"entry 2", "entry 3", "entry 4", "entry 5", "more than once", "nothing imported"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	// Each entry's problem is told without the prefix: once per error.
	if n := strings.Count(err.Error(), ErrInvalid.Error()); n != 1 {
		t.Errorf("error %q repeats %q %d times", err, ErrInvalid, n)
	}
	if ie, ok := errors.AsType[*InvalidError](err); !ok || ie.Field != "entries" {
		t.Errorf("Import error %#v, want an InvalidError about entries", err)
	}
	if n, _ := st.CountUsers(ctx); n != 0 {
		t.Errorf("%d users stored after a rejected import, want 0", n)
	}
}

// failingStore is the real store with chosen methods made to fail.
type failingStore struct {
	*embedded.Store
	failDeleteSessions bool
	failCreateAfter    int // CreateUser fails once this many succeeded (0: never)
	created            int
}

var errBackend = errors.New("backend down")

func (f *failingStore) DeleteUserSessions(ctx context.Context, user string) (int, error) {
	if f.failDeleteSessions {
		return 0, errBackend
	}
	return f.Store.DeleteUserSessions(ctx, user)
}

func (f *failingStore) CreateUser(ctx context.Context, u store.User) error {
	if f.failCreateAfter > 0 && f.created >= f.failCreateAfter {
		return errBackend
	}
	f.created++
	return f.Store.CreateUser(ctx, u)
}

func TestStoreFailures(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	st := openStore(t, c)
	bc, bc2 := bcryptHashes(t)
	fs := &failingStore{Store: st}
	s := newEnv(fs, c).svc
	if err := s.Add(ctx, "alice", bc, store.RoleUser, nil); err != nil {
		t.Fatal(err)
	}
	putSession(t, st, c, "s1", "alice")

	fs.failDeleteSessions = true
	err := s.SetPassword(ctx, "alice", bc2)
	if !errors.Is(err, errBackend) || !strings.Contains(err.Error(), "revoking their sessions failed") {
		t.Errorf("SetPassword with failing session delete = %v", err)
	}
	err = s.ResetPassword(ctx, "alice", bc)
	if !errors.Is(err, errBackend) || !strings.Contains(err.Error(), "revoking their sessions failed") {
		t.Errorf("ResetPassword with failing session delete = %v", err)
	}
	if _, err := st.UpdateUser(ctx, "alice", func(u *store.User) error { u.TOTPSecret = []byte("x"); return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = s.DisableTwoFactor(ctx, []string{"alice"})
	if !errors.Is(err, errBackend) || !strings.Contains(err.Error(), "revoking their sessions failed") {
		t.Errorf("DisableTwoFactor with failing session delete = %v", err)
	}
	if u, _ := st.GetUser(ctx, "alice"); u.HasTOTP() {
		t.Error("the secret must be gone even when revoking sessions failed")
	}
	if _, err := s.RevokeSessions(ctx, "alice"); !errors.Is(err, errBackend) {
		t.Errorf("RevokeSessions with failing store = %v", err)
	}
	err = s.Delete(ctx, "alice")
	if !errors.Is(err, errBackend) || !strings.Contains(err.Error(), "deleted, but removing their sessions failed") {
		t.Errorf("Delete with failing session delete = %v", err)
	}
	fs.failDeleteSessions = false

	fs.created, fs.failCreateAfter = 0, 1
	res, err := s.Import(ctx, []ImportEntry{{Name: "x1", PasswordHash: bc}, {Name: "x2", PasswordHash: bc}, {Name: "x3", PasswordHash: bc}})
	if !errors.Is(err, errBackend) || !strings.Contains(err.Error(), `"x2"`) {
		t.Errorf("Import with failing store = %v", err)
	}
	if !reflect.DeepEqual(res.Added, []string{"x1"}) {
		t.Errorf("partial result = %+v, want x1 added", res)
	}
}

// A re-created account never takes over sessions of a deleted one of the
// same name: it starts at another epoch (session.Valid compares them).
func TestRecreatedAccountStartsAtANewEpoch(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		bc, _ := bcryptHashes(t)
		if err := e.svc.Add(ctx, "alice", bc, store.RoleUser, nil); err != nil {
			t.Fatal(err)
		}
		first, err := e.st.GetUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Delete(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		e.c.Advance(time.Millisecond)
		if err := e.svc.Add(ctx, "alice", bc, store.RoleUser, nil); err != nil {
			t.Fatal(err)
		}
		again, err := e.st.GetUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if first.AuthEpoch == 0 || again.AuthEpoch == first.AuthEpoch {
			t.Fatalf("epochs %d then %d: a session of the deleted account would be valid for the new one", first.AuthEpoch, again.AuthEpoch)
		}
	})
}
