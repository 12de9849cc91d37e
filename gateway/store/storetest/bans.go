package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

func banCases() []testCase {
	return []testCase{
		{"Bans/PutGet", testBanPutGet},
		{"Bans/Replace", testBanReplace},
		{"Bans/Expiry", testBanExpiry},
		{"Bans/Delete", testBanDelete},
		{"Bans/List", testBanList},
		{"Bans/ListSkipsExpiredAndDeleted", testBanListExpired},
		{"Bans/BadArguments", testBanBadArgs},
		{"Bans/Concurrent", testBanConcurrent},
	}
}

func sampleBan(key, subject string, level int) store.Ban {
	kind := store.BanKindUser
	if strings.HasPrefix(key, "ip:") {
		kind = store.BanKindIP
	}
	return store.Ban{
		Key:      key,
		Kind:     kind,
		Subject:  subject,
		Failures: 5,
		Level:    level,
		Since:    baseTime,
		Until:    baseTime.Add(15 * time.Minute),
	}
}

func checkBan(t *testing.T, got, want store.Ban) {
	t.Helper()
	checkTime(t, "Since", got.Since, want.Since)
	checkTime(t, "Until", got.Until, want.Until)
	g, w := got, want
	g.Since, g.Until, w.Since, w.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("ban mismatch:\n got  %+v\n want %+v", g, w)
	}
}

func testBanPutGet(t *testing.T, h Harness) {
	ctx := t.Context()
	if _, err := h.Store.GetBan(ctx, "u:missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetBan(missing) err = %v, want ErrNotFound", err)
	}
	bans := []store.Ban{
		sampleBan("u:9f86d081884c7d659a2feaa0c55ad015", "alice", 1),
		sampleBan("ip:203.0.113.7", "203.0.113.7", 3),
		sampleBan("ip:2001:db8:1:2::/64", "2001:db8:1:2::/64", 2),
		sampleBan("u:"+strings.Repeat("x", store.MaxBanKeyLen-2), "Ünïcode name <script>", 1),
	}
	for _, b := range bans {
		if err := h.Store.PutBan(ctx, b, longTTL); err != nil {
			t.Fatalf("PutBan(%s): %v", b.Key, err)
		}
	}
	for _, want := range bans {
		got, err := h.Store.GetBan(ctx, want.Key)
		if err != nil {
			t.Fatalf("GetBan(%s): %v", want.Key, err)
		}
		checkBan(t, got, want)
	}
}

func testBanReplace(t *testing.T, h Harness) {
	ctx := t.Context()
	b := sampleBan("ip:192.0.2.1", "192.0.2.1", 1)
	if err := h.Store.PutBan(ctx, b, shortTTL); err != nil {
		t.Fatal(err)
	}
	b.Level, b.Failures, b.Until = 2, 7, baseTime.Add(30*time.Minute)
	if err := h.Store.PutBan(ctx, b, longTTL); err != nil {
		t.Fatal(err)
	}
	got, err := h.Store.GetBan(ctx, b.Key)
	if err != nil {
		t.Fatal(err)
	}
	checkBan(t, got, b)
	// The replacement's ttl applies, not the first one's.
	h.Advance(shortTTL + pastTTL)
	if _, err := h.Store.GetBan(ctx, b.Key); err != nil {
		t.Fatalf("replaced ban gone after the first ttl: %v", err)
	}
	if bs, err := h.Store.ListBans(ctx, 10); err != nil || len(bs) != 1 {
		t.Fatalf("ListBans after replace = %d bans, %v; want 1", len(bs), err)
	}
}

func testBanExpiry(t *testing.T, h Harness) {
	ctx := t.Context()
	b := sampleBan("u:bob", "bob", 1)
	if err := h.Store.PutBan(ctx, b, shortTTL); err != nil {
		t.Fatal(err)
	}
	h.Advance(beforeTTL)
	if _, err := h.Store.GetBan(ctx, b.Key); err != nil {
		t.Fatalf("GetBan inside the ttl: %v", err)
	}
	h.Advance(pastTTL)
	if _, err := h.Store.GetBan(ctx, b.Key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetBan after the ttl err = %v, want ErrNotFound", err)
	}
}

func testBanDelete(t *testing.T, h Harness) {
	ctx := t.Context()
	a, b := sampleBan("u:a", "a", 1), sampleBan("u:b", "b", 1)
	for _, x := range []store.Ban{a, b} {
		if err := h.Store.PutBan(ctx, x, longTTL); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Store.DeleteBan(ctx, a.Key); err != nil {
		t.Fatalf("DeleteBan: %v", err)
	}
	if _, err := h.Store.GetBan(ctx, a.Key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetBan after delete err = %v, want ErrNotFound", err)
	}
	if _, err := h.Store.GetBan(ctx, b.Key); err != nil {
		t.Errorf("unrelated ban: %v", err)
	}
	if err := h.Store.DeleteBan(ctx, a.Key); err != nil {
		t.Errorf("DeleteBan(missing): %v", err)
	}
	if err := h.Store.DeleteBan(ctx, "u:never"); err != nil {
		t.Errorf("DeleteBan(never set): %v", err)
	}
}

func testBanList(t *testing.T, h Harness) {
	ctx := t.Context()
	if bs, err := h.Store.ListBans(ctx, 10); err != nil || len(bs) != 0 {
		t.Fatalf("ListBans(empty) = %v, %v; want none", bs, err)
	}
	// ttl i hours: the one ending last comes first.
	for i := 1; i <= 5; i++ {
		b := sampleBan(fmt.Sprintf("u:%d", i), fmt.Sprintf("user%d", i), i)
		if err := h.Store.PutBan(ctx, b, time.Duration(i)*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	all, err := h.Store.ListBans(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, b := range all {
		keys = append(keys, b.Key)
	}
	if got, want := strings.Join(keys, ","), "u:5,u:4,u:3,u:2,u:1"; got != want {
		t.Errorf("ListBans order = %s, want %s", got, want)
	}
	if len(all) > 0 {
		checkBan(t, all[0], sampleBan("u:5", "user5", 5))
	}
	two, err := h.Store.ListBans(ctx, 2)
	if err != nil || len(two) != 2 || two[0].Key != "u:5" || two[1].Key != "u:4" {
		t.Errorf("ListBans(2) = %+v, %v; want u:5, u:4", two, err)
	}
	// Copies: changing a listed ban changes nothing stored.
	all[0].Subject = "changed"
	if b, _ := h.Store.GetBan(ctx, "u:5"); b.Subject != "user5" {
		t.Errorf("stored ban changed through a listed copy: %+v", b)
	}
}

func testBanListExpired(t *testing.T, h Harness) {
	ctx := t.Context()
	short, long, gone := sampleBan("ip:192.0.2.1", "192.0.2.1", 1), sampleBan("ip:192.0.2.2", "192.0.2.2", 1), sampleBan("u:x", "x", 1)
	if err := h.Store.PutBan(ctx, short, shortTTL); err != nil {
		t.Fatal(err)
	}
	for _, b := range []store.Ban{long, gone} {
		if err := h.Store.PutBan(ctx, b, longTTL); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Store.DeleteBan(ctx, gone.Key); err != nil {
		t.Fatal(err)
	}
	bs, err := h.Store.ListBans(ctx, 10)
	if err != nil || len(bs) != 2 {
		t.Fatalf("ListBans = %+v, %v; want 2 live bans", bs, err)
	}
	h.Advance(shortTTL + pastTTL)
	bs, err = h.Store.ListBans(ctx, 10)
	if err != nil || len(bs) != 1 || bs[0].Key != long.Key {
		t.Fatalf("ListBans after one expired = %+v, %v; want only %s", bs, err, long.Key)
	}
}

func testBanBadArgs(t *testing.T, h Harness) {
	ctx := t.Context()
	if err := h.Store.PutBan(ctx, sampleBan("u:a", "a", 1), 0); err == nil {
		t.Error("PutBan(ttl=0) succeeded, want an error")
	}
	for _, key := range []string{"", "u:" + strings.Repeat("y", store.MaxBanKeyLen)} {
		if err := h.Store.PutBan(ctx, sampleBan(key, "a", 1), longTTL); !errors.Is(err, store.ErrBadBan) {
			t.Errorf("PutBan(key of %d bytes) err = %v, want ErrBadBan", len(key), err)
		}
	}
	if _, err := h.Store.ListBans(ctx, 0); err == nil {
		t.Error("ListBans(0) succeeded, want an error")
	}
}

// Instances banning different subjects at once lose none of them.
func testBanConcurrent(t *testing.T, h Harness) {
	ctx := t.Context()
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := h.Store.PutBan(ctx, sampleBan(fmt.Sprintf("ip:10.0.0.%d", i), "x", 1), longTTL); err != nil {
				t.Errorf("PutBan: %v", err)
			}
		})
	}
	wg.Wait()
	if bs, err := h.Store.ListBans(ctx, 100); err != nil || len(bs) != n {
		t.Fatalf("ListBans after %d concurrent PutBan = %d bans, %v", n, len(bs), err)
	}
}
