package settings_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store/embedded"
)

func TestChangeReachesEveryInstanceWithinMaxAge(t *testing.T) {
	clk := testkit.NewClock(time.Now())
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), embedded.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	initial := settings.Values{Mode: settings.ModeOn, Issuer: "from-config"}
	a := settings.New(st, initial, 2*time.Second, clk.Now) // two instances,
	b := settings.New(st, initial, 2*time.Second, clk.Now) // one store

	v, err := b.Current(ctx)
	if err != nil || v != initial {
		t.Fatalf("initial = %+v, %v", v, err)
	}
	if err := a.SetMode(ctx, settings.ModeRequired); err != nil {
		t.Fatal(err)
	}
	if err := a.SetIssuer(ctx, "Panel Gate"); err != nil {
		t.Fatal(err)
	}
	// The writer sees its change at once.
	if v, _ := a.Current(ctx); v.Mode != settings.ModeRequired || v.Issuer != "Panel Gate" {
		t.Fatalf("writer sees %+v", v)
	}
	// The other instance may serve its cached copy, but not past maxAge.
	clk.Advance(2 * time.Second)
	if v, _ := b.Current(ctx); v.Mode != settings.ModeRequired || v.Issuer != "Panel Gate" {
		t.Fatalf("other instance after maxAge sees %+v", v)
	}
	// Empty issuer means "use the default" and is stored as such.
	if err := a.SetIssuer(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Current(ctx); v.Issuer != "" {
		t.Fatalf("issuer = %q, want empty", v.Issuer)
	}
}

func TestInvalidValuesRefused(t *testing.T) {
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	src := settings.New(st, settings.Values{Mode: settings.ModeOn}, 0, nil)
	for _, m := range []string{"", "ON", "maybe", "required "} {
		if err := src.SetMode(ctx, m); !errors.Is(err, settings.ErrInvalid) {
			t.Errorf("SetMode(%q) = %v", m, err)
		}
	}
	for _, iss := range []string{"a:b", "line\nbreak", string(make([]byte, 65))} {
		if err := src.SetIssuer(ctx, iss); !errors.Is(err, settings.ErrInvalid) {
			t.Errorf("SetIssuer(%q) = %v", iss, err)
		}
	}
	// A corrupt stored mode fails closed instead of guessing.
	if err := st.SetSetting(ctx, settings.KeyMode, "sometimes"); err != nil {
		t.Fatal(err)
	}
	if _, err := settings.New(st, settings.Values{Mode: settings.ModeOff}, 0, nil).Current(ctx); !errors.Is(err, settings.ErrInvalid) {
		t.Fatalf("corrupt stored mode: %v", err)
	}
}

// failing wraps a backend and fails reads on demand.
type failing struct {
	settings.Backend
	fail bool
}

func (f *failing) GetSetting(ctx context.Context, key string) (string, error) {
	if f.fail {
		return "", errors.New("store down")
	}
	return f.Backend.GetSetting(ctx, key)
}

func TestStoreOutage(t *testing.T) {
	clk := testkit.NewClock(time.Now())
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), embedded.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := &failing{Backend: st}
	src := settings.New(f, settings.Values{Mode: settings.ModeRequired}, time.Second, clk.Now)
	ctx := context.Background()
	if _, err := src.Current(ctx); err != nil {
		t.Fatal(err)
	}
	f.fail = true
	clk.Advance(5 * time.Second)
	// A short outage is bridged by the last known values...
	if v, err := src.Current(ctx); err != nil || v.Mode != settings.ModeRequired {
		t.Fatalf("during a short outage: %+v, %v", v, err)
	}
	// ...a long one is an error (callers fail closed).
	clk.Advance(10 * time.Second)
	if _, err := src.Current(ctx); err == nil {
		t.Fatal("stale settings served during a long outage")
	}
}
