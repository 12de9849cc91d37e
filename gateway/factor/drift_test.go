package factor_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/secretbox"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/totp"
)

// observer collects evidence as the real Recorder would receive it.
type observer struct {
	mu  sync.Mutex
	got []int
}

func (o *observer) Observe(_ string, steps int, _ time.Time) {
	o.mu.Lock()
	o.got = append(o.got, steps)
	o.mu.Unlock()
}

func (o *observer) take() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	g := o.got
	o.got = nil
	return g
}

// fixture is a TOTP checker on the real embedded store with a settable
// clock and a drift scan of 10 minutes (20 steps).
type fixture struct {
	f      *factor.TOTP
	obs    *observer
	clk    *testkit.Clock
	sealed []byte
	raw    []byte
}

const scanSteps = 20 // two_factor.drift_scan 10m at 30 s

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{obs: &observer{}, clk: testkit.NewClock(time.Date(2026, 11, 27, 12, 0, 10, 0, time.UTC))}
	now := fx.clk.Now
	st, err := embedded.Open(filepath.Join(t.TempDir(), "f.db"), embedded.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	box, err := secretbox.New(secretbox.Key{9})
	if err != nil {
		t.Fatal(err)
	}
	fx.f = factor.NewTOTP(box, st, totp.DefaultOptions(), now, nil, factor.WithDriftScan(scanSteps, fx.obs))
	if fx.sealed, err = fx.f.NewSecret("alice"); err != nil {
		t.Fatal(err)
	}
	en, err := fx.f.Describe("alice", "Panel", fx.sealed)
	if err != nil {
		t.Fatal(err)
	}
	fx.raw, _ = totp.DecodeSecret(en.KeyGrouped)
	return fx
}

func (fx *fixture) advance(d time.Duration) { fx.clk.Advance(d) }

// phone returns the code a phone whose clock is off by d shows now.
func (fx *fixture) phone(t *testing.T, d time.Duration) string {
	t.Helper()
	c, err := totp.Code(fx.raw, fx.clk.Now().Add(d), totp.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDriftedCodesAreRefusedAndRecorded(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		offset time.Duration
		want   []int // recorded evidence
	}{
		{"90s ahead", 90 * time.Second, []int{3}},
		{"90s behind", -90 * time.Second, []int{-3}},
		{"5min ahead", 5 * time.Minute, []int{10}},
		{"5min behind", -5 * time.Minute, []int{-10}},
		{"20min ahead: beyond the scan", 20 * time.Minute, nil},
		{"20min behind: beyond the scan", -20 * time.Minute, nil},
		{"wrong code", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := fx.phone(t, tc.offset)
			if tc.offset == 0 {
				code = wrongCode(t, fx)
			}
			res, err := fx.f.Check(ctx, "alice", fx.sealed, 0, code)
			// Both are ErrInvalid (one public message); a drifted code is
			// also ErrDrifted, so the caller does not count it as a guess.
			// A code beyond the scan is a plain wrong code.
			want := factor.ErrInvalid
			if tc.want != nil {
				want = factor.ErrDrifted
			}
			if err != want || !errors.Is(err, factor.ErrInvalid) { //nolint:errorlint // identity is the point
				t.Fatalf("Check = %+v, %v; want exactly %v", res, err, want)
			}
			if got := fx.obs.take(); !equalInts(got, tc.want) {
				t.Fatalf("evidence %v, want %v", got, tc.want)
			}
		})
	}
}

// wrongCode is a code that matches no step within ±scan (so it is wrong,
// not drifted).
func wrongCode(t *testing.T, fx *fixture) string {
	t.Helper()
	for _, c := range []string{"000000", "123456", "999999", "314159", "271828"} {
		hit := false
		for k := -scanSteps; k <= scanSteps; k++ {
			if fx.phone(t, time.Duration(k)*30*time.Second) == c {
				hit = true
			}
		}
		if !hit {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCheckIsCentredOnTheStoredDrift(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	// Drift +10 (5 min ahead): the phone's codes pass, nudging nothing.
	res, err := fx.f.Check(ctx, "alice", fx.sealed, 10, fx.phone(t, 5*time.Minute))
	if err != nil || res.Offset != 10 || res.Drift != 10 {
		t.Fatalf("at drift: %+v, %v", res, err)
	}
	// Still ±skew around it: one step further passes and nudges.
	fx.advance(30 * time.Second)
	res, err = fx.f.Check(ctx, "alice", fx.sealed, 10, fx.phone(t, 5*time.Minute+30*time.Second))
	if err != nil || res.Offset != 11 || res.Drift != 11 {
		t.Fatalf("one step off-centre: %+v, %v", res, err)
	}
	// A code on the server's own time is now evidence, not accepted.
	fx.advance(30 * time.Second)
	if _, err := fx.f.Check(ctx, "alice", fx.sealed, 11, fx.phone(t, 0)); !errors.Is(err, factor.ErrInvalid) {
		t.Fatalf("code at offset 0 with drift 11: %v", err)
	}
	if got := fx.obs.take(); !equalInts(got, []int{0}) {
		t.Fatalf("evidence %v, want [0]", got)
	}
	// A stored drift beyond the scan is clamped to it.
	fx.advance(30 * time.Second)
	if _, err := fx.f.Check(ctx, "alice", fx.sealed, 500, fx.phone(t, 250*time.Minute)); !errors.Is(err, factor.ErrInvalid) {
		t.Fatalf("drift beyond the scan applied: %v", err)
	}
}

func TestNudge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		drift  int
		offset time.Duration
		want   int
	}{
		{"on centre", 0, 0, 0},
		{"one step ahead", 0, 30 * time.Second, 1},
		{"one step behind", 0, -30 * time.Second, -1},
		{"back towards zero", 4, 90 * time.Second, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			res, err := fx.f.Check(context.Background(), "alice", fx.sealed, tc.drift, fx.phone(t, tc.offset))
			if err != nil || res.Drift != tc.want {
				t.Fatalf("Check = %+v, %v; want drift %d", res, err, tc.want)
			}
		})
	}
}

func TestResync(t *testing.T) {
	ctx := context.Background()
	t.Run("+7 minutes", func(t *testing.T) {
		fx := newFixture(t)
		// The user reads a code, waits for the next one and submits.
		code1 := fx.phone(t, 7*time.Minute)
		fx.advance(30 * time.Second)
		code2 := fx.phone(t, 7*time.Minute)
		drift, err := fx.f.Resync(ctx, "alice", fx.sealed, code1, code2)
		if err != nil || drift != 14 {
			t.Fatalf("Resync = %d, %v; want 14", drift, err)
		}
		// Neither code can be used again, for a resync or a sign-in.
		for _, c := range []string{code1, code2} {
			if _, err := fx.f.Check(ctx, "alice", fx.sealed, drift, c); !errors.Is(err, factor.ErrReplayed) {
				t.Fatalf("replayed resync code: %v", err)
			}
		}
		if _, err := fx.f.Resync(ctx, "alice", fx.sealed, code1, code2); !errors.Is(err, factor.ErrReplayed) {
			t.Fatalf("resync replayed: %v", err)
		}
		// Later sign-ins at that drift pass.
		for range 3 {
			fx.advance(30 * time.Second)
			if res, err := fx.f.Check(ctx, "alice", fx.sealed, drift, fx.phone(t, 7*time.Minute)); err != nil || res.Offset != 14 {
				t.Fatalf("sign-in at the resynced drift: %+v, %v", res, err)
			}
		}
	})
	t.Run("beyond the scan", func(t *testing.T) {
		fx := newFixture(t)
		code1 := fx.phone(t, -20*time.Minute)
		code2 := fx.phone(t, -20*time.Minute+30*time.Second)
		_, err := fx.f.Resync(ctx, "alice", fx.sealed, code1, code2)
		var far *factor.TooFarError
		if !errors.As(err, &far) || !errors.Is(err, factor.ErrTooFar) || far.Steps != -39 || far.Max != scanSteps {
			t.Fatalf("Resync = %v (%+v), want TooFarError -39", err, far)
		}
	})
	t.Run("not consecutive", func(t *testing.T) {
		fx := newFixture(t)
		code1 := fx.phone(t, time.Minute)
		code2 := fx.phone(t, 2*time.Minute)
		if _, err := fx.f.Resync(ctx, "alice", fx.sealed, code1, code2); !errors.Is(err, factor.ErrInvalid) {
			t.Fatalf("Resync = %v, want ErrInvalid", err)
		}
		if _, err := fx.f.Resync(ctx, "alice", fx.sealed, code1, "not a code"); !errors.Is(err, factor.ErrInvalid) {
			t.Fatalf("Resync = %v, want ErrInvalid", err)
		}
	})
	t.Run("a code already used", func(t *testing.T) {
		fx := newFixture(t)
		code1 := fx.phone(t, 0)
		if _, err := fx.f.Check(ctx, "alice", fx.sealed, 0, code1); err != nil {
			t.Fatal(err)
		}
		fx.advance(30 * time.Second)
		if _, err := fx.f.Resync(ctx, "alice", fx.sealed, code1, fx.phone(t, 0)); !errors.Is(err, factor.ErrReplayed) {
			t.Fatalf("Resync with a used code = %v, want ErrReplayed", err)
		}
	})
}

// Without a drift scan nothing is searched or reported.
func TestNoDriftScan(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 10, 0, time.UTC)
	f := newTOTP(t, func() time.Time { return at })
	sealed, _ := f.NewSecret("alice")
	en, _ := f.Describe("alice", "P", sealed)
	raw, _ := totp.DecodeSecret(en.KeyGrouped)
	code, _ := totp.Code(raw, at.Add(90*time.Second), totp.DefaultOptions())
	if _, err := f.Check(context.Background(), "alice", sealed, 5, code); !errors.Is(err, factor.ErrInvalid) {
		t.Fatalf("drift applied without a scan: %v", err)
	}
	if f.DriftScanSteps() != 0 {
		t.Fatal("scan steps without WithDriftScan")
	}
}
