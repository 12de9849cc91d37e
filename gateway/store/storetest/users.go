package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

func userCases() []testCase {
	return []testCase{
		{"Users/CreateThenGet", testCreateGetUser},
		{"Users/CreateExisting", testCreateExistingUser},
		{"Users/GetMissing", testGetMissingUser},
		{"Users/ValuesAreCopies", testUserCopies},
		{"Users/Update", testUpdateUser},
		{"Users/UpdateMissing", testUpdateMissingUser},
		{"Users/UpdateFnErrorWritesNothing", testUpdateUserFnError},
		{"Users/UpdateKeepsName", testUpdateUserKeepsName},
		{"Users/UpdateConcurrent", testUpdateUserConcurrent},
		{"Users/Delete", testDeleteUser},
		{"Users/DeleteRemovesSessions", testDeleteUserRemovesSessions},
		{"Users/List", testListUsers},
		{"Users/ListPaging", testListUsersPaging},
		{"Users/Count", testCountUsers},
	}
}

func testCreateGetUser(t *testing.T, h Harness) {
	ctx := t.Context()
	for _, want := range []store.User{sampleUser("alice"), minimalUser("bob")} {
		if err := h.Store.CreateUser(ctx, want); err != nil {
			t.Fatalf("CreateUser(%q): %v", want.Name, err)
		}
		got, err := h.Store.GetUser(ctx, want.Name)
		if err != nil {
			t.Fatalf("GetUser(%q): %v", want.Name, err)
		}
		checkUser(t, got, want)
		if got.HasTOTP() != want.HasTOTP() {
			t.Errorf("HasTOTP = %v, want %v", got.HasTOTP(), want.HasTOTP())
		}
	}
	// Names are case-sensitive.
	if _, err := h.Store.GetUser(ctx, "Alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser(Alice) err = %v, want ErrNotFound", err)
	}
}

func testCreateExistingUser(t *testing.T, h Harness) {
	ctx := t.Context()
	orig := sampleUser("alice")
	if err := h.Store.CreateUser(ctx, orig); err != nil {
		t.Fatal(err)
	}
	err := h.Store.CreateUser(ctx, minimalUser("alice"))
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second CreateUser err = %v, want ErrExists", err)
	}
	got, err := h.Store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, got, orig)
	if n, err := h.Store.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers = %d, %v; want 1", n, err)
	}
}

func testGetMissingUser(t *testing.T, h Harness) {
	_, err := h.Store.GetUser(t.Context(), "nobody")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetUser(nobody) err = %v, want ErrNotFound", err)
	}
}

func testUserCopies(t *testing.T, h Harness) {
	ctx := t.Context()
	in := sampleUser("alice")
	want := in.Clone()
	if err := h.Store.CreateUser(ctx, in); err != nil {
		t.Fatal(err)
	}
	// Mutating the caller's value after Create.
	in.Groups[0] = "hacked"
	in.TOTPSecret[0] = 0
	in.DriftSeen[0].Steps = 99
	got, err := h.Store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, got, want)
	// Mutating a value returned by Get.
	got.Groups[0] = "hacked"
	got.TOTPSecret[0] = 0
	got.DriftSeen[0].Steps = 99
	got.Role = store.RoleUser
	again, _ := h.Store.GetUser(ctx, "alice")
	checkUser(t, again, want)
	// Mutating a value returned by UpdateUser.
	updated, err := h.Store.UpdateUser(ctx, "alice", func(u *store.User) error {
		u.Groups = append(u.Groups, "new")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want.Groups = append(want.Groups, "new")
	updated.Groups[0] = "hacked"
	updated.TOTPSecret[0] = 0
	again, _ = h.Store.GetUser(ctx, "alice")
	checkUser(t, again, want)
	// Mutating a value returned by ListUsers.
	list, err := h.Store.ListUsers(ctx, store.ListOptions{})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListUsers = %v, %v; want one user", list, err)
	}
	list[0].Groups[0] = "hacked"
	list[0].TOTPSecret[0] = 0
	again, _ = h.Store.GetUser(ctx, "alice")
	checkUser(t, again, want)
}

func testUpdateUser(t *testing.T, h Harness) {
	ctx := t.Context()
	if err := h.Store.CreateUser(ctx, minimalUser("alice")); err != nil {
		t.Fatal(err)
	}
	enrolled := baseTime.Add(10 * time.Minute)
	want := minimalUser("alice")
	want.Groups = []string{"ops"}
	want.TOTPSecret = []byte("sealed")
	want.TOTPEnrolledAt = enrolled
	want.UpdatedAt = enrolled

	got, err := h.Store.UpdateUser(ctx, "alice", func(u *store.User) error {
		checkUser(t, *u, minimalUser("alice")) // fn sees the stored user
		u.Groups = []string{"ops"}
		u.TOTPSecret = []byte("sealed")
		u.TOTPEnrolledAt = enrolled
		u.UpdatedAt = enrolled
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	checkUser(t, got, want)
	stored, err := h.Store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, stored, want)
	if !stored.HasTOTP() {
		t.Error("HasTOTP = false after enrolment")
	}
}

func testUpdateMissingUser(t *testing.T, h Harness) {
	called := false
	_, err := h.Store.UpdateUser(t.Context(), "nobody", func(u *store.User) error {
		called = true
		return nil
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateUser(nobody) err = %v, want ErrNotFound", err)
	}
	if called {
		t.Error("fn was called for a missing user")
	}
	if _, err := h.Store.GetUser(t.Context(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateUser created the user: GetUser err = %v", err)
	}
}

func testUpdateUserFnError(t *testing.T, h Harness) {
	ctx := t.Context()
	orig := sampleUser("alice")
	if err := h.Store.CreateUser(ctx, orig); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	_, err := h.Store.UpdateUser(ctx, "alice", func(u *store.User) error {
		// Mutate before failing: none of this may be written.
		u.Role = store.RoleUser
		u.Groups = nil
		u.TOTPSecret = nil
		u.PasswordHash = "changed"
		return fmt.Errorf("validating: %w", errBoom)
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("UpdateUser err = %v, want fn's error", err)
	}
	got, err := h.Store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, got, orig)
}

// The user's Name is its key: a changed Name in fn is not a rename.
func testUpdateUserKeepsName(t *testing.T, h Harness) {
	ctx := t.Context()
	if err := h.Store.CreateUser(ctx, minimalUser("alice")); err != nil {
		t.Fatal(err)
	}
	got, err := h.Store.UpdateUser(ctx, "alice", func(u *store.User) error {
		u.Name = "mallory"
		u.Role = store.RoleAdmin
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "alice" || got.Role != store.RoleAdmin {
		t.Errorf("UpdateUser returned %q/%q, want alice/admin", got.Name, got.Role)
	}
	if _, err := h.Store.GetUser(ctx, "mallory"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser(mallory) err = %v, want ErrNotFound", err)
	}
	stored, err := h.Store.GetUser(ctx, "alice")
	if err != nil || stored.Name != "alice" || stored.Role != store.RoleAdmin {
		t.Errorf("GetUser(alice) = %+v, %v", stored, err)
	}
}

func testUpdateUserConcurrent(t *testing.T, h Harness) {
	ctx := t.Context()
	if err := h.Store.CreateUser(ctx, minimalUser("alice")); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			group := fmt.Sprintf("g%02d", i)
			_, err := h.Store.UpdateUser(ctx, "alice", func(u *store.User) error {
				u.Groups = append(u.Groups, group)
				return nil
			})
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent UpdateUser: %v", err)
		}
	}
	got, err := h.Store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	groups := slices.Sorted(slices.Values(got.Groups))
	if len(groups) != n {
		t.Fatalf("got %d groups %v, want %d: an update was lost", len(groups), groups, n)
	}
	for i, g := range groups {
		if want := fmt.Sprintf("g%02d", i); g != want {
			t.Errorf("groups[%d] = %q, want %q", i, g, want)
		}
	}
}

func testDeleteUser(t *testing.T, h Harness) {
	ctx := t.Context()
	for _, name := range []string{"alice", "bob"} {
		if err := h.Store.CreateUser(ctx, minimalUser(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Store.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := h.Store.GetUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser after delete err = %v, want ErrNotFound", err)
	}
	if err := h.Store.DeleteUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteUser err = %v, want ErrNotFound", err)
	}
	if err := h.Store.DeleteUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteUser(nobody) err = %v, want ErrNotFound", err)
	}
	if n, err := h.Store.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers = %d, %v; want 1", n, err)
	}
	list, err := h.Store.ListUsers(ctx, store.ListOptions{})
	if err != nil || len(list) != 1 || list[0].Name != "bob" {
		t.Errorf("ListUsers = %v, %v; want only bob", list, err)
	}
	if _, err := h.Store.GetUser(ctx, "bob"); err != nil {
		t.Errorf("GetUser(bob): %v", err)
	}
	// The name is free again.
	if err := h.Store.CreateUser(ctx, sampleUser("alice")); err != nil {
		t.Fatalf("re-create after delete: %v", err)
	}
	got, err := h.Store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, got, sampleUser("alice"))
}

// Deleting an account also ends its sessions, so no live session outlives
// its user even if the caller forgets DeleteUserSessions.
func testDeleteUserRemovesSessions(t *testing.T, h Harness) {
	ctx := t.Context()
	for _, name := range []string{"alice", "bob"} {
		if err := h.Store.CreateUser(ctx, minimalUser(name)); err != nil {
			t.Fatal(err)
		}
	}
	for i, user := range []string{"alice", "alice", "bob"} {
		if err := h.Store.PutSession(ctx, sampleSession(hashID(i), user, 0), longTTL); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Store.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := h.Store.GetSession(ctx, hashID(i)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("alice's session %d err = %v, want ErrNotFound", i, err)
		}
	}
	if list, err := h.Store.ListUserSessions(ctx, "alice"); err != nil || len(list) != 0 {
		t.Errorf("ListUserSessions(alice) = %v, %v; want none", list, err)
	}
	if _, err := h.Store.GetSession(ctx, hashID(2)); err != nil {
		t.Errorf("bob's session: %v", err)
	}
}

func testListUsers(t *testing.T, h Harness) {
	ctx := t.Context()
	list, err := h.Store.ListUsers(ctx, store.ListOptions{})
	if err != nil || len(list) != 0 {
		t.Fatalf("ListUsers on empty store = %v, %v", list, err)
	}
	// Byte order: upper case before lower case, "a" before "a-b" before "ab".
	names := []string{"zed", "Zed", "alice", "a", "ab", "a-b", "bob", "b0", "élodie", "carol"}
	want := slices.Sorted(slices.Values(names))
	for _, i := range rand.Perm(len(names)) {
		if err := h.Store.CreateUser(ctx, sampleUser(names[i])); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		opts store.ListOptions
		want []string
	}{
		{"all", store.ListOptions{}, want},
		{"limit", store.ListOptions{Limit: 3}, want[:3]},
		{"limit equals count", store.ListOptions{Limit: len(want)}, want},
		{"limit beyond count", store.ListOptions{Limit: 100}, want},
		{"after existing name", store.ListOptions{After: "a-b"}, want[slices.Index(want, "a-b")+1:]},
		{"after missing name", store.ListOptions{After: "b"}, want[slices.Index(want, "b0"):]},
		{"after and limit", store.ListOptions{After: "alice", Limit: 2}, []string{"b0", "bob"}},
		{"after the last", store.ListOptions{After: "élodie"}, nil},
		{"after everything", store.ListOptions{After: "\xff"}, nil},
		{"after empty string means from start", store.ListOptions{After: "", Limit: 1}, want[:1]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.Store.ListUsers(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var gotNames []string
			for _, u := range got {
				gotNames = append(gotNames, u.Name)
				checkUser(t, u, sampleUser(u.Name))
			}
			if !slices.Equal(gotNames, tc.want) {
				t.Errorf("ListUsers(%+v) = %q, want %q", tc.opts, gotNames, tc.want)
			}
		})
	}
}

func testListUsersPaging(t *testing.T, h Harness) {
	ctx := t.Context()
	const n = 53
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("user%03d", i))
	}
	for _, i := range rand.Perm(n) {
		if err := h.Store.CreateUser(ctx, minimalUser(want[i])); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{1, 7, 10, 53, 60} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > n+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, err := h.Store.ListUsers(ctx, store.ListOptions{After: after, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, u := range page {
				got = append(got, u.Name)
			}
			after = page[len(page)-1].Name
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: paged names = %q, want %q", limit, got, want)
		}
	}
}

func testCountUsers(t *testing.T, h Harness) {
	ctx := t.Context()
	if n, err := h.Store.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers on empty store = %d, %v", n, err)
	}
	for i := range 12 {
		if err := h.Store.CreateUser(ctx, minimalUser(fmt.Sprintf("u%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	_ = h.Store.CreateUser(ctx, minimalUser("u3")) // ErrExists must not count
	if n, err := h.Store.CountUsers(ctx); err != nil || n != 12 {
		t.Errorf("CountUsers = %d, %v; want 12", n, err)
	}
	if err := h.Store.DeleteUser(ctx, "u5"); err != nil {
		t.Fatal(err)
	}
	if n, err := h.Store.CountUsers(ctx); err != nil || n != 11 {
		t.Errorf("CountUsers after delete = %d, %v; want 11", n, err)
	}
}
