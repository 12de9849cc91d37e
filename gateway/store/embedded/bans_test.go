package embedded

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// Expired bans are deleted by the sweeper, so a spray of bans cannot
// grow the file for ever.
func TestSweepRemovesExpiredBans(t *testing.T) {
	clk := newFakeClock()
	s := openTest(t, filepath.Join(t.TempDir(), "authgate.db"), Options{Now: clk.Now, SweepInterval: time.Hour})
	ctx := t.Context()
	for _, b := range []struct {
		key string
		ttl time.Duration
	}{{"u:short", time.Minute}, {"ip:192.0.2.1", time.Minute}, {"u:long", time.Hour}} {
		if err := s.PutBan(ctx, store.Ban{Key: b.key, Kind: store.BanKindUser}, b.ttl); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	n, err := s.sweep()
	if err != nil || n != 2 {
		t.Fatalf("sweep removed %d, %v; want the 2 expired bans", n, err)
	}
	if got := countKeys(t, s)["bans"]; got != 1 {
		t.Errorf("bans bucket holds %d keys after sweep, want 1", got)
	}
	if _, err := s.GetBan(ctx, "u:long"); err != nil {
		t.Errorf("live ban swept: %v", err)
	}
}
