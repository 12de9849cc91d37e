package metrics_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/storetest"
)

func openEmbedded(t *testing.T, clk *testkit.Clock) store.Store {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "authgate.db"), embedded.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// The instrumented store changes no result: it passes the conformance
// suite every backend passes.
func TestInstrumentedStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		clk := testkit.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
		m := metrics.New(metrics.Options{})
		return storetest.Harness{Store: m.Store(openEmbedded(t, clk)), Advance: clk.Advance}
	})
}

var errMine = errors.New("caller's own error")

// Latency is recorded per operation; only real failures count as errors.
func TestInstrumentedStoreCounts(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(time.Now())
	m := metrics.New(metrics.Options{})
	st := m.Store(openEmbedded(t, clk))
	if err := st.CreateUser(ctx, store.User{Name: "alice", Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	// Answers of the contract and callers' own errors are not failures.
	if err := st.CreateUser(ctx, store.User{Name: "alice", Role: store.RoleUser}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := st.GetUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := st.UpdateUser(ctx, "alice", func(*store.User) error { return errMine }); !errors.Is(err, errMine) {
		t.Fatalf("update: %v", err)
	}
	// A used step refused is a replay.
	for range 3 {
		if _, err := st.UseStep(ctx, "alice", 42, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// A canceled caller is not a store failure either.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = st.GetUser(cctx, "alice")

	if n := counterValue(t, m, "authgate_totp_replays_refused_total"); n != 2 {
		t.Errorf("replays = %v, want 2", n)
	}
	if f := family(t, m, "authgate_store_errors_total"); f != nil {
		t.Errorf("store errors counted: %v", f)
	}
	samples := histogramCounts(t, m, "authgate_store_operation_duration_seconds")
	for op, want := range map[string]uint64{"create_user": 2, "get_user": 2, "update_user": 1, "use_step": 3} {
		if samples[op] != want {
			t.Errorf("%s observed %d times, want %d (all: %v)", op, samples[op], want, samples)
		}
	}

	// A closed store fails for real.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetUser(ctx, "alice"); err == nil {
		t.Fatal("closed store answered")
	}
	if n := storeErrors(t, m, "get_user"); n != 1 {
		t.Errorf("get_user errors = %v, want 1", n)
	}
}

func TestNilMetricsAreNoOps(t *testing.T) {
	var m *metrics.Metrics
	m.LoginAttempt(metrics.FactorPassword, metrics.ResultSuccess)
	m.BanStarted("ip")
	m.ReplayRefused()
	m.DriftEvidence()
	m.ProxyResponse("r", 200, time.Second)
	m.UpstreamError("r")
	m.ReadAtScrape(metrics.Sources{})
	clk := testkit.NewClock(time.Now())
	st := openEmbedded(t, clk)
	if got := m.Store(st); got != st {
		t.Error("a nil Metrics wrapped the store")
	}
}
