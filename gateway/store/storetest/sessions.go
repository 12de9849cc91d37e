package storetest

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

func sessionCases() []testCase {
	return []testCase{
		{"Sessions/PutThenGet", testPutGetSession},
		{"Sessions/GetMissing", testGetMissingSession},
		{"Sessions/ValuesAreCopies", testSessionCopies},
		{"Sessions/Replace", testReplaceSession},
		{"Sessions/ReplaceMovesUser", testReplaceSessionUser},
		{"Sessions/ReplaceRenewsTTL", testReplaceSessionTTL},
		{"Sessions/Delete", testDeleteSession},
		{"Sessions/NonPositiveTTL", testSessionBadTTL},
		{"Sessions/Expiry", testSessionExpiry},
		{"Sessions/ListUser", testListUserSessions},
		{"Sessions/ListUserExcludesExpired", testListUserSessionsExpired},
		{"Sessions/DeleteUser", testDeleteUserSessions},
		{"Sessions/DeleteUserCountsOnlyLive", testDeleteUserSessionsExpired},
		{"Sessions/ReplaceOnlyIfLive", testReplaceOnlyIfLive},
		{"Sessions/ReplaceExpiredStaysGone", testReplaceExpired},
		{"Sessions/ReplaceRacesDelete", testReplaceRacesDelete},
		{"Sessions/Take", testTakeSession},
		{"Sessions/TakeOnce", testTakeSessionOnce},
	}
}

// testReplaceOnlyIfLive: ReplaceSession changes a live session and never
// creates one (a touch after a logout must not bring the session back).
func testReplaceOnlyIfLive(t *testing.T, h Harness) {
	ctx := t.Context()
	s := sampleSession(hashID(1), "alice", 0)
	if err := h.Store.ReplaceSession(ctx, s, longTTL); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplaceSession(missing) = %v, want ErrNotFound", err)
	}
	if _, err := h.Store.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplaceSession created a session (GetSession err = %v)", err)
	}
	if list, _ := h.Store.ListUserSessions(ctx, "alice"); len(list) != 0 {
		t.Fatalf("ReplaceSession listed a session it did not create: %v", list)
	}
	if err := h.Store.PutSession(ctx, s, longTTL); err != nil {
		t.Fatal(err)
	}
	s.LastSeenAt = s.LastSeenAt.Add(time.Hour)
	s.PendingTOTPSecret = nil
	if err := h.Store.ReplaceSession(ctx, s, longTTL); err != nil {
		t.Fatalf("ReplaceSession(live) = %v", err)
	}
	got, err := h.Store.GetSession(ctx, s.IDHash)
	if err != nil {
		t.Fatal(err)
	}
	checkSession(t, got, s)
	if list, _ := h.Store.ListUserSessions(ctx, "alice"); len(list) != 1 {
		t.Fatalf("after a replacement ListUserSessions has %d sessions, want 1", len(list))
	}
	if err := h.Store.DeleteSession(ctx, s.IDHash); err != nil {
		t.Fatal(err)
	}
	if err := h.Store.ReplaceSession(ctx, s, longTTL); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplaceSession(deleted) = %v, want ErrNotFound", err)
	}
	if _, err := h.Store.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted session came back after ReplaceSession (GetSession err = %v)", err)
	}
}

// testReplaceExpired: a session past its TTL is not revived by a
// replacement, and a replacement extends the TTL of a live one.
func testReplaceExpired(t *testing.T, h Harness) {
	ctx := t.Context()
	s := sampleSession(hashID(1), "alice", 0)
	if err := h.Store.PutSession(ctx, s, shortTTL); err != nil {
		t.Fatal(err)
	}
	h.Advance(shortTTL + pastTTL)
	if err := h.Store.ReplaceSession(ctx, s, longTTL); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReplaceSession(expired) = %v, want ErrNotFound", err)
	}
	if _, err := h.Store.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired session came back (GetSession err = %v)", err)
	}
	// A replacement before the end moves the end: listed and readable
	// past the first TTL.
	l := sampleSession(hashID(2), "alice", 0)
	if err := h.Store.PutSession(ctx, l, shortTTL); err != nil {
		t.Fatal(err)
	}
	h.Advance(beforeTTL)
	if err := h.Store.ReplaceSession(ctx, l, longTTL); err != nil {
		t.Fatal(err)
	}
	h.Advance(pastTTL)
	if _, err := h.Store.GetSession(ctx, l.IDHash); err != nil {
		t.Fatalf("GetSession after a replacement that extended the TTL: %v", err)
	}
	if list, err := h.Store.ListUserSessions(ctx, "alice"); err != nil || len(list) != 1 {
		t.Fatalf("ListUserSessions after the replacement = %d sessions, %v; want 1", len(list), err)
	}
}

// testReplaceRacesDelete races touches (replacements) of many sessions
// against their deletion: every deleted session must stay deleted.
func testReplaceRacesDelete(t *testing.T, h Harness) {
	ctx := t.Context()
	const n = 40
	for i := range n {
		if err := h.Store.PutSession(ctx, sampleSession(hashID(i+1), "alice", 0), longTTL); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		s := sampleSession(hashID(i+1), "alice", 0)
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			for range 5 {
				s.LastSeenAt = s.LastSeenAt.Add(time.Second)
				if err := h.Store.ReplaceSession(ctx, s, longTTL); err != nil && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("ReplaceSession: %v", err)
				}
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			if err := h.Store.DeleteSession(ctx, s.IDHash); err != nil {
				t.Errorf("DeleteSession: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if _, err := h.Store.GetSession(ctx, hashID(i+1)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session %d came back after its deletion (GetSession err = %v)", i+1, err)
		}
	}
	if list, err := h.Store.ListUserSessions(ctx, "alice"); err != nil || len(list) != 0 {
		t.Errorf("ListUserSessions after the race = %d sessions, %v; want none", len(list), err)
	}
}

// testTakeSession: TakeSession returns the session and deletes it.
func testTakeSession(t *testing.T, h Harness) {
	ctx := t.Context()
	s := sampleSession(hashID(1), "alice", 0)
	if _, err := h.Store.TakeSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TakeSession(missing) = %v, want ErrNotFound", err)
	}
	if err := h.Store.PutSession(ctx, s, longTTL); err != nil {
		t.Fatal(err)
	}
	got, err := h.Store.TakeSession(ctx, s.IDHash)
	if err != nil {
		t.Fatalf("TakeSession: %v", err)
	}
	checkSession(t, got, s)
	if _, err := h.Store.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession after TakeSession err = %v, want ErrNotFound", err)
	}
	if list, _ := h.Store.ListUserSessions(ctx, "alice"); len(list) != 0 {
		t.Fatalf("a taken session is still listed: %v", list)
	}
	e := sampleSession(hashID(2), "alice", 0)
	if err := h.Store.PutSession(ctx, e, shortTTL); err != nil {
		t.Fatal(err)
	}
	h.Advance(shortTTL + pastTTL)
	if _, err := h.Store.TakeSession(ctx, e.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("TakeSession(expired) = %v, want ErrNotFound", err)
	}
}

// testTakeSessionOnce: of many concurrent takes of one session exactly
// one wins (two rotations of one session never both succeed).
func testTakeSessionOnce(t *testing.T, h Harness) {
	ctx := t.Context()
	const sessions, takers = 10, 8
	for i := range sessions {
		if err := h.Store.PutSession(ctx, sampleSession(hashID(i+1), "alice", 0), longTTL); err != nil {
			t.Fatal(err)
		}
	}
	var wins [sessions]atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range sessions {
		for range takers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := h.Store.TakeSession(ctx, hashID(i+1))
				switch {
				case err == nil:
					wins[i].Add(1)
				case !errors.Is(err, store.ErrNotFound):
					t.Errorf("TakeSession: %v", err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	for i := range sessions {
		if n := wins[i].Load(); n != 1 {
			t.Errorf("session %d was taken %d times, want exactly once", i+1, n)
		}
	}
}

func testPutGetSession(t *testing.T, h Harness) {
	ctx := t.Context()
	full := sampleSession(hashID(1), "alice", 0)
	pending := store.Session{
		IDHash:    hashID(2),
		User:      "alice",
		Stage:     store.StagePending,
		CreatedAt: baseTime,
		ExpiresAt: baseTime.Add(time.Hour),
	}
	for _, want := range []store.Session{full, pending} {
		if err := h.Store.PutSession(ctx, want, longTTL); err != nil {
			t.Fatalf("PutSession: %v", err)
		}
		got, err := h.Store.GetSession(ctx, want.IDHash)
		if err != nil {
			t.Fatalf("GetSession: %v", err)
		}
		checkSession(t, got, want)
	}
}

func testGetMissingSession(t *testing.T, h Harness) {
	_, err := h.Store.GetSession(t.Context(), hashID(404))
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession(missing) err = %v, want ErrNotFound", err)
	}
}

func testSessionCopies(t *testing.T, h Harness) {
	ctx := t.Context()
	in := sampleSession(hashID(1), "alice", 0)
	want := in
	want.PendingTOTPSecret = slices.Clone(in.PendingTOTPSecret)
	want.AdminResultSealed = slices.Clone(in.AdminResultSealed)
	if err := h.Store.PutSession(ctx, in, longTTL); err != nil {
		t.Fatal(err)
	}
	in.PendingTOTPSecret[0] = 0
	in.AdminResultSealed[0] = 0
	got, err := h.Store.GetSession(ctx, in.IDHash)
	if err != nil {
		t.Fatal(err)
	}
	checkSession(t, got, want)
	got.PendingTOTPSecret[0] = 0
	got.AdminResultSealed[0] = 0
	list, err := h.Store.ListUserSessions(ctx, "alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("ListUserSessions = %v, %v", list, err)
	}
	checkSession(t, list[0], want)
	list[0].PendingTOTPSecret[0] = 0
	list[0].AdminResultSealed[0] = 0
	again, _ := h.Store.GetSession(ctx, in.IDHash)
	checkSession(t, again, want)
}

func testReplaceSession(t *testing.T, h Harness) {
	ctx := t.Context()
	s := store.Session{IDHash: hashID(1), User: "alice", Stage: store.StagePending, CreatedAt: baseTime}
	if err := h.Store.PutSession(ctx, s, longTTL); err != nil {
		t.Fatal(err)
	}
	s.Stage = store.StageFull
	s.TwoFactor = true
	s.TwoFactorAt = baseTime.Add(time.Minute)
	s.LastSeenAt = baseTime.Add(time.Minute)
	if err := h.Store.PutSession(ctx, s, longTTL); err != nil {
		t.Fatalf("replacing PutSession: %v", err)
	}
	got, err := h.Store.GetSession(ctx, s.IDHash)
	if err != nil {
		t.Fatal(err)
	}
	checkSession(t, got, s)
	list, err := h.Store.ListUserSessions(ctx, "alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("ListUserSessions after replace = %v, %v; want one session", list, err)
	}
	checkSession(t, list[0], s)
}

func testReplaceSessionUser(t *testing.T, h Harness) {
	ctx := t.Context()
	s := sampleSession(hashID(1), "alice", 0)
	if err := h.Store.PutSession(ctx, s, longTTL); err != nil {
		t.Fatal(err)
	}
	s.User = "bob"
	if err := h.Store.PutSession(ctx, s, longTTL); err != nil {
		t.Fatal(err)
	}
	if list, err := h.Store.ListUserSessions(ctx, "alice"); err != nil || len(list) != 0 {
		t.Errorf("ListUserSessions(alice) = %v, %v; want none", list, err)
	}
	if n, err := h.Store.DeleteUserSessions(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("DeleteUserSessions(alice) = %d, %v; want 0", n, err)
	}
	got, err := h.Store.GetSession(ctx, s.IDHash)
	if err != nil {
		t.Fatalf("bob's session was removed through alice: %v", err)
	}
	checkSession(t, got, s)
	if list, err := h.Store.ListUserSessions(ctx, "bob"); err != nil || len(list) != 1 {
		t.Errorf("ListUserSessions(bob) = %v, %v; want one", list, err)
	}
}

// PutSession replaces the TTL too: renewing a session extends its life.
func testReplaceSessionTTL(t *testing.T, h Harness) {
	ctx := t.Context()
	s := sampleSession(hashID(1), "alice", 0)
	if err := h.Store.PutSession(ctx, s, shortTTL); err != nil { // ends at 600ms
		t.Fatal(err)
	}
	h.Advance(400 * time.Millisecond)
	if err := h.Store.PutSession(ctx, s, 800*time.Millisecond); err != nil { // ends at 1200ms
		t.Fatal(err)
	}
	h.Advance(400 * time.Millisecond) // 800ms: past the first TTL, inside the second
	if _, err := h.Store.GetSession(ctx, s.IDHash); err != nil {
		t.Fatalf("renewed session: %v", err)
	}
	h.Advance(500 * time.Millisecond) // 1300ms
	if _, err := h.Store.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renewed session after its TTL err = %v, want ErrNotFound", err)
	}
}

func testDeleteSession(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := sampleSession(hashID(1), "alice", 0), sampleSession(hashID(2), "alice", time.Second)
	for _, s := range []store.Session{a, b} {
		if err := h.Store.PutSession(ctx, s, longTTL); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Store.DeleteSession(ctx, a.IDHash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := h.Store.GetSession(ctx, a.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession after delete err = %v, want ErrNotFound", err)
	}
	if err := h.Store.DeleteSession(ctx, a.IDHash); err != nil {
		t.Errorf("deleting a deleted session: %v", err)
	}
	if err := h.Store.DeleteSession(ctx, hashID(404)); err != nil {
		t.Errorf("deleting a missing session: %v", err)
	}
	list, err := h.Store.ListUserSessions(ctx, "alice")
	if err != nil || len(list) != 1 || list[0].IDHash != b.IDHash {
		t.Errorf("ListUserSessions = %v, %v; want only b", list, err)
	}
}

func testSessionBadTTL(t *testing.T, h Harness) {
	ctx := t.Context()
	for _, ttl := range []time.Duration{0, -time.Second} {
		s := sampleSession(hashID(1), "alice", 0)
		if err := h.Store.PutSession(ctx, s, ttl); err == nil {
			t.Errorf("PutSession(ttl=%v) succeeded, want an error", ttl)
		}
		if _, err := h.Store.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PutSession(ttl=%v) stored the session: err = %v", ttl, err)
		}
	}
}

func testSessionExpiry(t *testing.T, h Harness) {
	ctx := t.Context()
	s := sampleSession(hashID(1), "alice", 0)
	keep := sampleSession(hashID(2), "alice", time.Second)
	if err := h.Store.PutSession(ctx, s, shortTTL); err != nil {
		t.Fatal(err)
	}
	if err := h.Store.PutSession(ctx, keep, longTTL); err != nil {
		t.Fatal(err)
	}
	h.Advance(beforeTTL)
	if _, err := h.Store.GetSession(ctx, s.IDHash); err != nil {
		t.Fatalf("session before its TTL: %v", err)
	}
	h.Advance(pastTTL)
	if _, err := h.Store.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session after its TTL err = %v, want ErrNotFound", err)
	}
	if _, err := h.Store.GetSession(ctx, keep.IDHash); err != nil {
		t.Fatalf("long-lived session: %v", err)
	}
	// An expired id can be used again from scratch.
	if err := h.Store.PutSession(ctx, s, longTTL); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.GetSession(ctx, s.IDHash); err != nil {
		t.Fatalf("session put again after expiry: %v", err)
	}
}

func testListUserSessions(t *testing.T, h Harness) {
	ctx := t.Context()
	if list, err := h.Store.ListUserSessions(ctx, "alice"); err != nil || len(list) != 0 {
		t.Fatalf("ListUserSessions with none = %v, %v", list, err)
	}
	// Put in an order that is neither creation order nor id order.
	offsets := map[int]time.Duration{5: 3 * time.Hour, 1: 2 * time.Hour, 9: 0, 3: time.Hour, 7: 4 * time.Hour}
	put := []int{5, 1, 9, 3, 7}
	for _, id := range put {
		if err := h.Store.PutSession(ctx, sampleSession(hashID(id), "alice", offsets[id]), longTTL); err != nil {
			t.Fatal(err)
		}
	}
	// Other users' sessions, including one whose name extends alice's.
	for i, user := range []string{"bob", "alice2", "Alice", "alic"} {
		if err := h.Store.PutSession(ctx, sampleSession(hashID(100+i), user, 0), longTTL); err != nil {
			t.Fatal(err)
		}
	}
	list, err := h.Store.ListUserSessions(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []int{9, 3, 1, 5, 7} // by CreatedAt
	if len(list) != len(wantOrder) {
		t.Fatalf("ListUserSessions returned %d sessions, want %d", len(list), len(wantOrder))
	}
	for i, id := range wantOrder {
		checkSession(t, list[i], sampleSession(hashID(id), "alice", offsets[id]))
	}
	bob, err := h.Store.ListUserSessions(ctx, "bob")
	if err != nil || len(bob) != 1 || bob[0].IDHash != hashID(100) {
		t.Errorf("ListUserSessions(bob) = %v, %v", bob, err)
	}
}

func testListUserSessionsExpired(t *testing.T, h Harness) {
	ctx := t.Context()
	old := sampleSession(hashID(1), "alice", 0)
	live := sampleSession(hashID(2), "alice", time.Minute)
	if err := h.Store.PutSession(ctx, old, shortTTL); err != nil {
		t.Fatal(err)
	}
	if err := h.Store.PutSession(ctx, live, longTTL); err != nil {
		t.Fatal(err)
	}
	h.Advance(beforeTTL)
	if list, err := h.Store.ListUserSessions(ctx, "alice"); err != nil || len(list) != 2 {
		t.Fatalf("before expiry ListUserSessions = %d sessions, %v; want 2", len(list), err)
	}
	h.Advance(pastTTL)
	list, err := h.Store.ListUserSessions(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].IDHash != live.IDHash {
		t.Fatalf("after expiry ListUserSessions = %v, want only the live one", list)
	}
	checkSession(t, list[0], live)
}

func testDeleteUserSessions(t *testing.T, h Harness) {
	ctx := t.Context()
	for i := range 4 {
		if err := h.Store.PutSession(ctx, sampleSession(hashID(i), "alice", time.Duration(i)*time.Minute), longTTL); err != nil {
			t.Fatal(err)
		}
	}
	other := sampleSession(hashID(50), "alice2", 0)
	if err := h.Store.PutSession(ctx, other, longTTL); err != nil {
		t.Fatal(err)
	}
	n, err := h.Store.DeleteUserSessions(ctx, "alice")
	if err != nil || n != 4 {
		t.Fatalf("DeleteUserSessions = %d, %v; want 4", n, err)
	}
	for i := range 4 {
		if _, err := h.Store.GetSession(ctx, hashID(i)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session %d after DeleteUserSessions err = %v, want ErrNotFound", i, err)
		}
	}
	if list, err := h.Store.ListUserSessions(ctx, "alice"); err != nil || len(list) != 0 {
		t.Errorf("ListUserSessions after DeleteUserSessions = %v, %v", list, err)
	}
	if _, err := h.Store.GetSession(ctx, other.IDHash); err != nil {
		t.Errorf("another user's session was deleted: %v", err)
	}
	if n, err := h.Store.DeleteUserSessions(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("second DeleteUserSessions = %d, %v; want 0", n, err)
	}
	if n, err := h.Store.DeleteUserSessions(ctx, "nobody"); err != nil || n != 0 {
		t.Errorf("DeleteUserSessions(nobody) = %d, %v; want 0", n, err)
	}
	// The user can log in again afterwards.
	if err := h.Store.PutSession(ctx, sampleSession(hashID(9), "alice", 0), longTTL); err != nil {
		t.Fatal(err)
	}
	if list, err := h.Store.ListUserSessions(ctx, "alice"); err != nil || len(list) != 1 {
		t.Errorf("ListUserSessions after new login = %v, %v; want one", list, err)
	}
}

func testDeleteUserSessionsExpired(t *testing.T, h Harness) {
	ctx := t.Context()
	if err := h.Store.PutSession(ctx, sampleSession(hashID(1), "alice", 0), shortTTL); err != nil {
		t.Fatal(err)
	}
	if err := h.Store.PutSession(ctx, sampleSession(hashID(2), "alice", 0), longTTL); err != nil {
		t.Fatal(err)
	}
	h.Advance(shortTTL + pastTTL)
	if n, err := h.Store.DeleteUserSessions(ctx, "alice"); err != nil || n != 1 {
		t.Fatalf("DeleteUserSessions = %d, %v; want 1 (the expired one does not count)", n, err)
	}
	if _, err := h.Store.GetSession(ctx, hashID(2)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("live session survived DeleteUserSessions: err = %v", err)
	}
}
