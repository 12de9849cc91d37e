package testkit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Concurrent writes all land, whole, and String can read meanwhile (the
// race detector checks the locking).
func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 8*50 {
		t.Fatalf("got %d lines, want %d", len(lines), 8*50)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l] = true
	}
	for i := range 8 {
		for j := range 50 {
			if w := fmt.Sprintf("w%d-%d", i, j); !seen[w] {
				t.Fatalf("line %q missing or torn", w)
			}
		}
	}
}

func TestClockMoves(t *testing.T) {
	t0 := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	c := NewClock(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now = %v, want %v", got, t0)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), t0.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("after Advance: %v, want %v", got, want)
	}
	c.Advance(-time.Hour)
	if got, want := c.Now(), t0.Add(90*time.Second-time.Hour); !got.Equal(want) {
		t.Fatalf("after Advance back: %v, want %v", got, want)
	}
	t1 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c.Set(t1)
	if got := c.Now(); !got.Equal(t1) {
		t.Fatalf("after Set: %v, want %v", got, t1)
	}
}

// Readers and movers run together without a race, and every Advance counts.
func TestClockConcurrent(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	c := NewClock(t0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Advance(time.Second)
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				if c.Now().Before(t0) {
					t.Error("clock went back")
					return
				}
			}
		}()
	}
	wg.Wait()
	if got, want := c.Now(), t0.Add(400*time.Second); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
}
