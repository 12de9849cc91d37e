package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

func auditCases() []testCase {
	return []testCase{
		{"Audit/NewestFirstAndCapped", testAuditCapped},
		{"Audit/TrailsCappedApart", testAuditTrailsApart},
		{"Audit/SmallerKeepTrims", testAuditSmallerKeep},
		{"Audit/Concurrent", testAuditConcurrent},
		{"Audit/BadLimits", testAuditBadLimits},
	}
}

func testAuditCapped(t *testing.T, h Harness) {
	ctx := t.Context()
	for _, trail := range store.AuditTrails {
		t.Run(string(trail), func(t *testing.T) {
			if evs, err := h.Store.ListAudit(ctx, trail, 10); err != nil || len(evs) != 0 {
				t.Fatalf("empty audit = %v, %v", evs, err)
			}
			base := time.Date(2026, 11, 27, 12, 0, 0, 0, time.FixedZone("X", 3600))
			for i := 0; i < 12; i++ {
				ev := store.AuditEvent{Time: base.Add(time.Duration(i) * time.Second), Actor: "root", Action: "totp_disabled", Target: fmt.Sprintf("u%d", i), IP: "192.0.2.1", Detail: string(trail)}
				if err := h.Store.AppendAudit(ctx, trail, ev, 5); err != nil {
					t.Fatal(err)
				}
			}
			evs, err := h.Store.ListAudit(ctx, trail, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 5 {
				t.Fatalf("kept %d events, want the newest 5", len(evs))
			}
			for i, ev := range evs {
				want := fmt.Sprintf("u%d", 11-i)
				if ev.Target != want || ev.Actor != "root" || ev.IP != "192.0.2.1" || ev.Detail != string(trail) || ev.Action != "totp_disabled" {
					t.Errorf("event %d = %+v, want target %s", i, ev, want)
				}
				if !ev.Time.Equal(base.Add(time.Duration(11-i)*time.Second)) || ev.Time.Location() != time.UTC {
					t.Errorf("event %d time = %v", i, ev.Time)
				}
			}
			if evs, _ := h.Store.ListAudit(ctx, trail, 2); len(evs) != 2 || evs[0].Target != "u11" {
				t.Fatalf("limit 2 = %+v", evs)
			}
		})
	}
}

// testAuditTrailsApart: each trail is capped on its own. A flood of
// failures (many times the failures' keep) leaves the changes trail as it
// was, and neither trail lists the other's events.
func testAuditTrailsApart(t *testing.T, h Harness) {
	ctx := t.Context()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 3 {
		ev := store.AuditEvent{Time: base.Add(time.Duration(i) * time.Second), Actor: "root", Action: "role_changed", Target: fmt.Sprintf("admin%d", i)}
		if err := h.Store.AppendAudit(ctx, store.AuditChanges, ev, 10); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		ev := store.AuditEvent{Time: base.Add(time.Minute + time.Duration(i)*time.Second), Action: "login_failed", Target: fmt.Sprintf("guess%d", i)}
		if err := h.Store.AppendAudit(ctx, store.AuditFailures, ev, 10); err != nil {
			t.Fatal(err)
		}
	}
	changes, err := h.Store.ListAudit(ctx, store.AuditChanges, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 3 {
		t.Fatalf("changes after a flood of failures: %d events, want the 3 recorded: %+v", len(changes), changes)
	}
	for i, ev := range changes {
		if want := fmt.Sprintf("admin%d", 2-i); ev.Target != want || ev.Action != "role_changed" {
			t.Errorf("change %d = %+v, want target %s", i, ev, want)
		}
	}
	failures, err := h.Store.ListAudit(ctx, store.AuditFailures, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 10 || failures[0].Target != "guess59" || failures[9].Target != "guess50" {
		t.Fatalf("failures = %d events (%+v), want guess59..guess50", len(failures), failures)
	}
	for _, ev := range failures {
		if ev.Action != "login_failed" {
			t.Errorf("a change in the failures trail: %+v", ev)
		}
	}
}

// testAuditSmallerKeep: a keep smaller than before trims the older events
// at the next append.
func testAuditSmallerKeep(t *testing.T, h Harness) {
	ctx := t.Context()
	for i := range 8 {
		if err := h.Store.AppendAudit(ctx, store.AuditChanges, store.AuditEvent{Time: baseTime, Action: "login", Target: fmt.Sprint(i)}, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Store.AppendAudit(ctx, store.AuditChanges, store.AuditEvent{Time: baseTime, Action: "login", Target: "8"}, 3); err != nil {
		t.Fatal(err)
	}
	evs, err := h.Store.ListAudit(ctx, store.AuditChanges, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Target != "8" || evs[2].Target != "6" {
		t.Fatalf("after keep 3: %+v", evs)
	}
}

func testAuditConcurrent(t *testing.T, h Harness) {
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		trail := store.AuditTrails[i%len(store.AuditTrails)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Store.AppendAudit(ctx, trail, store.AuditEvent{Time: time.Now(), Action: "login", Target: fmt.Sprint(i)}, 500); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, trail := range store.AuditTrails {
		evs, err := h.Store.ListAudit(ctx, trail, 500)
		if err != nil || len(evs) != 20/len(store.AuditTrails) {
			t.Fatalf("%s: %d events after 20 concurrent appends to %d trails, %v", trail, len(evs), len(store.AuditTrails), err)
		}
	}
}

func testAuditBadLimits(t *testing.T, h Harness) {
	ctx := t.Context()
	if err := h.Store.AppendAudit(ctx, store.AuditChanges, store.AuditEvent{Action: "x"}, 0); err == nil {
		t.Error("AppendAudit with keep 0 accepted")
	}
	if _, err := h.Store.ListAudit(ctx, store.AuditChanges, 0); err == nil {
		t.Error("ListAudit with limit 0 accepted")
	}
	for _, trail := range []store.AuditTrail{"", "audit", "Changes", "all"} {
		if err := h.Store.AppendAudit(ctx, trail, store.AuditEvent{Action: "x"}, 5); !errors.Is(err, store.ErrBadAuditTrail) {
			t.Errorf("AppendAudit to trail %q: err = %v, want ErrBadAuditTrail", trail, err)
		}
		if _, err := h.Store.ListAudit(ctx, trail, 5); !errors.Is(err, store.ErrBadAuditTrail) {
			t.Errorf("ListAudit of trail %q: err = %v, want ErrBadAuditTrail", trail, err)
		}
	}
	for _, trail := range store.AuditTrails {
		if evs, err := h.Store.ListAudit(ctx, trail, 5); err != nil || len(evs) != 0 {
			t.Errorf("%s after refused appends: %v, %v", trail, evs, err)
		}
	}
}
