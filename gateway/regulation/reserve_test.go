package regulation

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// checks counts the proofs the regulator let through to a check.
type checks struct{ n atomic.Int64 }

func (c *checks) ProofChecked(string) { c.n.Add(1) }

// Regression: the ban was checked when a request started and failures
// were counted after the check, so 500 guesses sent at once were all
// checked. Now at most MaxFailures of any burst get through to a check.
func TestReserveBurstChecksAtMostTheLimit(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		obs := &checks{}
		r := e.regulator(Options{MaxFailures: 5, Observer: obs})
		var allowed atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 200 {
			wg.Go(func() {
				<-start
				ip := netip.AddrFrom4([4]byte{10, 9, byte(i / 250), byte(i%250 + 1)}) // every guess from its own address
				a, err := r.Reserve(t.Context(), "totp", Claim{User: "alice", IP: ip})
				if err != nil {
					if _, ok := errors.AsType[*BannedError](err); !ok {
						t.Errorf("Reserve: %v", err)
					}
					return
				}
				allowed.Add(1)
				if _, err := a.Failed(t.Context()); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := allowed.Load(); n > 5 {
			t.Fatalf("%d of 200 concurrent attempts were let through to a check, want at most 5", n)
		}
		if n := obs.n.Load(); n > 5 {
			t.Fatalf("%d proofs checked, want at most 5", n)
		}
		if _, ok := banned(t, r, "alice", netip.Addr{}); !ok {
			t.Fatal("alice is not banned after the burst")
		}
	})
}

// A right proof gives its reservation back: a user who signs in now and
// then is never banned by their own successes.
func TestReservePassedGivesBack(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		r := e.regulator(Options{MaxFailures: 2})
		for i := range 10 {
			a, err := r.Reserve(t.Context(), "password", Claim{User: "bob", IP: ipA})
			if err != nil {
				t.Fatalf("attempt %d refused: %v", i+1, err)
			}
			if err := a.Passed(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		// Cancel gives back too; a failure does not.
		a, _ := r.Reserve(t.Context(), "password", Claim{User: "bob"})
		_ = a.Cancel(t.Context())
		a, _ = r.Reserve(t.Context(), "password", Claim{User: "bob"})
		if _, err := a.Failed(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Reserve(t.Context(), "password", Claim{User: "bob"}); err != nil {
			t.Fatalf("second attempt after one failure refused: %v", err)
		}
	})
}

// A session gets MaxPerSession tries, then is spent, whatever the user's
// and address's counts.
func TestReserveSessionSpent(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		r := e.regulator(Options{MaxFailures: 100, MaxPerSession: 3})
		for i := range 3 {
			a, err := r.Reserve(t.Context(), "totp", Claim{User: "carol", Session: "s1"})
			if err != nil {
				t.Fatalf("try %d: %v", i+1, err)
			}
			_, _ = a.Failed(t.Context())
		}
		if _, err := r.Reserve(t.Context(), "totp", Claim{User: "carol", Session: "s1"}); !errors.Is(err, ErrSessionSpent) {
			t.Fatalf("fourth try in the session = %v, want ErrSessionSpent", err)
		}
		if _, err := r.Reserve(t.Context(), "totp", Claim{User: "carol", Session: "s2"}); err != nil {
			t.Fatalf("a new sign-in is refused: %v", err)
		}
	})
}

// banWriteFails is a store whose bans cannot be written.
type banWriteFails struct{ Store }

func (banWriteFails) PutBan(context.Context, store.Ban, time.Duration) error {
	return errors.New("disk full")
}

// Regression: a ban started only when the count equalled MaxFailures
// exactly; when writing it failed on that one request, later failures
// never banned until the window ended. The count itself now refuses.
func TestBanWriteFailureStillRefuses(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		r := New(banWriteFails{e.st}, e.rec, Options{MaxFailures: 3}, e.clk.Now)
		for i := range 3 {
			a, err := r.Reserve(t.Context(), "password", Claim{User: "dave"})
			if err != nil {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
			_, _ = a.Failed(t.Context()) // the third cannot write its ban
		}
		for i := range 5 {
			_, err := r.Reserve(t.Context(), "password", Claim{User: "dave", IP: ipB})
			if _, ok := errors.AsType[*BannedError](err); !ok {
				t.Fatalf("attempt %d after the failed ban write = %v, want refused as banned", i+4, err)
			}
		}
	})
}

// A store that cannot count refuses (fail closed).
func TestReserveFailsClosed(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		r := New(countFails{e.st}, e.rec, Options{}, e.clk.Now)
		if _, err := r.Reserve(t.Context(), "password", Claim{User: "erin", IP: ipA}); err == nil {
			t.Fatal("Reserve on a store that cannot count succeeded")
		}
	})
}

type countFails struct{ Store }

func (countFails) Incr(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, fmt.Errorf("connection refused")
}
