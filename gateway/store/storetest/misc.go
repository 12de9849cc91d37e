package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

func stepCases() []testCase {
	return []testCase{
		{"Steps/UseOnce", testUseStep},
		{"Steps/Concurrent", testUseStepConcurrent},
		{"Steps/Expiry", testUseStepExpiry},
		{"Steps/NonPositiveTTL", testUseStepBadTTL},
	}
}

func counterCases() []testCase {
	return []testCase{
		{"Counters/Incr", testIncr},
		{"Counters/WindowNotExtended", testCounterWindow},
		{"Counters/Reset", testResetCounter},
		{"Counters/Concurrent", testIncrConcurrent},
	}
}

func settingCases() []testCase {
	return []testCase{
		{"Settings/GetSet", testSettings},
	}
}

func lifecycleCases() []testCase {
	return []testCase{
		{"Ping", testPing},
		{"CanceledContext", testCanceledContext},
		{"Close", testClose},
	}
}

func testUseStep(t *testing.T, h Harness) {
	ctx := t.Context()
	steps := []struct {
		user string
		step int64
		want bool
	}{
		{"alice", 58000001, true},
		{"alice", 58000001, false}, // replay
		{"alice", 58000002, true},  // next step
		{"bob", 58000001, true},    // same step, other user
		{"alice", 58000001, false}, // still a replay
		{"alice", 0, true},
		{"alice", -1, true},
	}
	for _, tc := range steps {
		got, err := h.Store.UseStep(ctx, tc.user, tc.step, longTTL)
		if err != nil {
			t.Fatalf("UseStep(%s, %d): %v", tc.user, tc.step, err)
		}
		if got != tc.want {
			t.Errorf("UseStep(%s, %d) = %v, want %v", tc.user, tc.step, got, tc.want)
		}
	}
}

func testUseStepConcurrent(t *testing.T, h Harness) {
	ctx := t.Context()
	const n = 20
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			ok, err := h.Store.UseStep(ctx, "alice", 12345, longTTL)
			if err != nil {
				t.Errorf("UseStep: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := wins.Load(); got != 1 {
		t.Fatalf("%d of %d concurrent UseStep calls got true, want exactly 1", got, n)
	}
}

func testUseStepExpiry(t *testing.T, h Harness) {
	ctx := t.Context()
	if ok, err := h.Store.UseStep(ctx, "alice", 7, shortTTL); err != nil || !ok {
		t.Fatalf("first UseStep = %v, %v", ok, err)
	}
	h.Advance(beforeTTL)
	if ok, err := h.Store.UseStep(ctx, "alice", 7, shortTTL); err != nil || ok {
		t.Fatalf("replay inside the TTL = %v, %v; want false", ok, err)
	}
	h.Advance(pastTTL)
	if ok, err := h.Store.UseStep(ctx, "alice", 7, shortTTL); err != nil || !ok {
		t.Fatalf("UseStep after the TTL = %v, %v; want true", ok, err)
	}
}

func testUseStepBadTTL(t *testing.T, h Harness) {
	if _, err := h.Store.UseStep(t.Context(), "alice", 1, 0); err == nil {
		t.Error("UseStep(ttl=0) succeeded, want an error")
	}
}

func testIncr(t *testing.T, h Harness) {
	ctx := t.Context()
	if v, err := h.Store.Counter(ctx, "missing"); err != nil || v != 0 {
		t.Fatalf("Counter(missing) = %d, %v; want 0", v, err)
	}
	steps := []struct {
		key   string
		delta int64
		want  int64
	}{
		{"login:alice", 1, 1},
		{"login:alice", 1, 2},
		{"login:alice", 5, 7},
		{"login:alice", -3, 4},
		{"login:bob", 1, 1},
		{"login:alice", 0, 4},
		{"metric:zero", 0, 0},
	}
	for _, tc := range steps {
		got, err := h.Store.Incr(ctx, tc.key, tc.delta, longTTL)
		if err != nil {
			t.Fatalf("Incr(%s, %d): %v", tc.key, tc.delta, err)
		}
		if got != tc.want {
			t.Errorf("Incr(%s, %d) = %d, want %d", tc.key, tc.delta, got, tc.want)
		}
	}
	for key, want := range map[string]int64{"login:alice": 4, "login:bob": 1, "metric:zero": 0} {
		if v, err := h.Store.Counter(ctx, key); err != nil || v != want {
			t.Errorf("Counter(%s) = %d, %v; want %d", key, v, err, want)
		}
	}
}

func testCounterWindow(t *testing.T, h Harness) {
	ctx := t.Context()
	const window = time.Second
	if v, err := h.Store.Incr(ctx, "k", 1, window); err != nil || v != 1 { // ends at 1000ms
		t.Fatalf("Incr = %d, %v", v, err)
	}
	h.Advance(500 * time.Millisecond)
	if v, err := h.Store.Incr(ctx, "k", 1, window); err != nil || v != 2 {
		t.Fatalf("Incr inside the window = %d, %v; want 2", v, err)
	}
	h.Advance(600 * time.Millisecond) // 1100ms: past the first window, not past 500ms+window
	if v, err := h.Store.Counter(ctx, "k"); err != nil || v != 0 {
		t.Fatalf("Counter after the window = %d, %v; want 0 (a later Incr must not extend the window)", v, err)
	}
	// A new window starts with the next increment.
	if v, err := h.Store.Incr(ctx, "k", 3, window); err != nil || v != 3 {
		t.Fatalf("Incr after the window = %d, %v; want 3", v, err)
	}
	h.Advance(beforeTTL)
	if v, err := h.Store.Counter(ctx, "k"); err != nil || v != 3 {
		t.Fatalf("Counter in the new window = %d, %v; want 3", v, err)
	}
	h.Advance(window - beforeTTL)
	if v, err := h.Store.Counter(ctx, "k"); err != nil || v != 0 {
		t.Fatalf("Counter after the new window = %d, %v; want 0", v, err)
	}
}

func testResetCounter(t *testing.T, h Harness) {
	ctx := t.Context()
	for range 3 {
		if _, err := h.Store.Incr(ctx, "k", 1, longTTL); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Store.Incr(ctx, "other", 1, longTTL); err != nil {
		t.Fatal(err)
	}
	if err := h.Store.ResetCounter(ctx, "k"); err != nil {
		t.Fatalf("ResetCounter: %v", err)
	}
	if v, err := h.Store.Counter(ctx, "k"); err != nil || v != 0 {
		t.Errorf("Counter after reset = %d, %v; want 0", v, err)
	}
	if v, err := h.Store.Counter(ctx, "other"); err != nil || v != 1 {
		t.Errorf("unrelated counter = %d, %v; want 1", v, err)
	}
	if err := h.Store.ResetCounter(ctx, "never-set"); err != nil {
		t.Errorf("ResetCounter(missing): %v", err)
	}
	// After a reset the counter starts again, with a fresh window.
	if v, err := h.Store.Incr(ctx, "k", 1, shortTTL); err != nil || v != 1 {
		t.Fatalf("Incr after reset = %d, %v; want 1", v, err)
	}
	h.Advance(shortTTL + pastTTL)
	if v, err := h.Store.Counter(ctx, "k"); err != nil || v != 0 {
		t.Errorf("Counter after the post-reset window = %d, %v; want 0", v, err)
	}
}

func testIncrConcurrent(t *testing.T, h Harness) {
	ctx := t.Context()
	const n = 20
	var wg sync.WaitGroup
	seen := make([]int64, n)
	for i := range n {
		wg.Go(func() {
			v, err := h.Store.Incr(ctx, "hits", 1, longTTL)
			if err != nil {
				t.Errorf("Incr: %v", err)
			}
			seen[i] = v
		})
	}
	wg.Wait()
	if v, err := h.Store.Counter(ctx, "hits"); err != nil || v != n {
		t.Fatalf("Counter after %d concurrent Incr = %d, %v", n, v, err)
	}
	// Every caller saw a distinct value: the increments were atomic.
	got := map[int64]bool{}
	for _, v := range seen {
		got[v] = true
	}
	if len(got) != n {
		t.Errorf("concurrent Incr returned duplicate values: %v", seen)
	}
}

func testSettings(t *testing.T, h Harness) {
	ctx := t.Context()
	if _, err := h.Store.GetSetting(ctx, "maintenance"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSetting(missing) err = %v, want ErrNotFound", err)
	}
	sets := []struct{ key, value string }{
		{"maintenance", "on"},
		{"banner", "Scheduled work tonight"},
		{"maintenance", "off"}, // overwrite
		{"empty", ""},          // an empty value is not a missing one
	}
	for _, s := range sets {
		if err := h.Store.SetSetting(ctx, s.key, s.value); err != nil {
			t.Fatalf("SetSetting(%s): %v", s.key, err)
		}
	}
	for key, want := range map[string]string{"maintenance": "off", "banner": "Scheduled work tonight", "empty": ""} {
		got, err := h.Store.GetSetting(ctx, key)
		if err != nil || got != want {
			t.Errorf("GetSetting(%s) = %q, %v; want %q", key, got, err, want)
		}
	}
}

func testPing(t *testing.T, h Harness) {
	if err := h.Store.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCanceledContext(t *testing.T, h Harness) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := h.Store
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateUser", func() error { return s.CreateUser(ctx, minimalUser("alice")) }},
		{"GetUser", func() error { _, err := s.GetUser(ctx, "alice"); return err }},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(ctx, "alice", func(*store.User) error { return nil })
			return err
		}},
		{"DeleteUser", func() error { return s.DeleteUser(ctx, "alice") }},
		{"ListUsers", func() error { _, err := s.ListUsers(ctx, store.ListOptions{}); return err }},
		{"CountUsers", func() error { _, err := s.CountUsers(ctx); return err }},
		{"PutSession", func() error { return s.PutSession(ctx, sampleSession(hashID(1), "alice", 0), longTTL) }},
		{"GetSession", func() error { _, err := s.GetSession(ctx, hashID(1)); return err }},
		{"DeleteSession", func() error { return s.DeleteSession(ctx, hashID(1)) }},
		{"ListUserSessions", func() error { _, err := s.ListUserSessions(ctx, "alice"); return err }},
		{"DeleteUserSessions", func() error { _, err := s.DeleteUserSessions(ctx, "alice"); return err }},
		{"UseStep", func() error { _, err := s.UseStep(ctx, "alice", 1, longTTL); return err }},
		{"Incr", func() error { _, err := s.Incr(ctx, "k", 1, longTTL); return err }},
		{"Counter", func() error { _, err := s.Counter(ctx, "k"); return err }},
		{"ResetCounter", func() error { return s.ResetCounter(ctx, "k") }},
		{"GetSetting", func() error { _, err := s.GetSetting(ctx, "k"); return err }},
		{"SetSetting", func() error { return s.SetSetting(ctx, "k", "v") }},
		{"AppendAudit", func() error { return s.AppendAudit(ctx, store.AuditChanges, store.AuditEvent{Action: "x"}, 5) }},
		{"ListAudit", func() error { _, err := s.ListAudit(ctx, store.AuditFailures, 5); return err }},
		{"PutBan", func() error { return s.PutBan(ctx, sampleBan("u:a", "a", 1), longTTL) }},
		{"GetBan", func() error { _, err := s.GetBan(ctx, "u:a"); return err }},
		{"DeleteBan", func() error { return s.DeleteBan(ctx, "u:a") }},
		{"ListBans", func() error { _, err := s.ListBans(ctx, 5); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: err = %v, want context.Canceled", c.name, err)
		}
	}
	// Nothing was written.
	live := t.Context()
	if _, err := s.GetUser(live, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateUser with a canceled context wrote the user: err = %v", err)
	}
	if _, err := s.GetSetting(live, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetSetting with a canceled context wrote the setting: err = %v", err)
	}
}

func testClose(t *testing.T, h Harness) {
	if err := h.Store.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := h.Store.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded, want an error")
	}
	if _, err := h.Store.GetUser(t.Context(), "alice"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser after Close err = %v, want a closed-store error", err)
	}
	// A second Close (the harness's cleanup) must not panic or hang.
	_ = h.Store.Close()
}
