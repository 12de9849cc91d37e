package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

func auditCases() []testCase {
	return []testCase{
		{"Audit/NewestFirstAndCapped", testAuditCapped},
		{"Audit/Concurrent", testAuditConcurrent},
		{"Audit/BadLimits", testAuditBadLimits},
	}
}

func testAuditCapped(t *testing.T, h Harness) {
	ctx := t.Context()
	if evs, err := h.Store.ListAudit(ctx, 10); err != nil || len(evs) != 0 {
		t.Fatalf("empty audit = %v, %v", evs, err)
	}
	base := time.Date(2026, 11, 27, 12, 0, 0, 0, time.FixedZone("X", 3600))
	for i := 0; i < 12; i++ {
		ev := store.AuditEvent{Time: base.Add(time.Duration(i) * time.Second), Actor: "root", Action: "totp_disabled", Target: fmt.Sprintf("u%d", i), IP: "192.0.2.1", Detail: "bulk"}
		if err := h.Store.AppendAudit(ctx, ev, 5); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := h.Store.ListAudit(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 {
		t.Fatalf("kept %d events, want the newest 5", len(evs))
	}
	for i, ev := range evs {
		want := fmt.Sprintf("u%d", 11-i)
		if ev.Target != want || ev.Actor != "root" || ev.IP != "192.0.2.1" || ev.Detail != "bulk" || ev.Action != "totp_disabled" {
			t.Errorf("event %d = %+v, want target %s", i, ev, want)
		}
		if !ev.Time.Equal(base.Add(time.Duration(11-i)*time.Second)) || ev.Time.Location() != time.UTC {
			t.Errorf("event %d time = %v", i, ev.Time)
		}
	}
	if evs, _ := h.Store.ListAudit(ctx, 2); len(evs) != 2 || evs[0].Target != "u11" {
		t.Fatalf("limit 2 = %+v", evs)
	}
}

func testAuditConcurrent(t *testing.T, h Harness) {
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Store.AppendAudit(ctx, store.AuditEvent{Time: time.Now(), Action: "login", Target: fmt.Sprint(i)}, 500); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	evs, err := h.Store.ListAudit(ctx, 500)
	if err != nil || len(evs) != 20 {
		t.Fatalf("%d events after 20 concurrent appends, %v", len(evs), err)
	}
}

func testAuditBadLimits(t *testing.T, h Harness) {
	ctx := t.Context()
	if err := h.Store.AppendAudit(ctx, store.AuditEvent{Action: "x"}, 0); err == nil {
		t.Error("AppendAudit with keep 0 accepted")
	}
	if _, err := h.Store.ListAudit(ctx, 0); err == nil {
		t.Error("ListAudit with limit 0 accepted")
	}
}
