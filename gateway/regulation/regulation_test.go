package regulation

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
)

var (
	_ Store    = (*embedded.Store)(nil)
	_ Store    = (*redisstore.Store)(nil)
	_ Recorder = (*audit.Recorder)(nil)
)

type events struct {
	mu  sync.Mutex
	evs []store.AuditEvent
}

func (e *events) Record(_ context.Context, ev store.AuditEvent) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) list() []store.AuditEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]store.AuditEvent(nil), e.evs...)
}

type env struct {
	st  store.Store
	clk *testkit.Clock
	rec *events
	// advance moves the store's time (and the regulator's clock).
	advance func(d time.Duration)
}

var prefixSeq atomic.Int64

// backends runs fn against the embedded store (fake clock) and Redis
// (real expiry; only where fn does not need time to pass, advance sleeps).
func backends(t *testing.T, fn func(t *testing.T, e env)) {
	t.Run("embedded", func(t *testing.T) {
		clk := testkit.NewClock(time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC))
		st, err := embedded.Open(filepath.Join(t.TempDir(), "a.db"), embedded.Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		fn(t, env{st: st, clk: clk, rec: &events{}, advance: clk.Advance})
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		st := redisstore.New(redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}}),
			redisstore.Options{KeyPrefix: fmt.Sprintf("reg%d", prefixSeq.Add(1))})
		t.Cleanup(func() { _ = st.Close() })
		clk := testkit.NewClock(time.Now())
		fn(t, env{st: st, clk: clk, rec: &events{}, advance: func(d time.Duration) { clk.Advance(d); time.Sleep(d) }})
	})
}

var (
	ipA = netip.MustParseAddr("203.0.113.7")
	ipB = netip.MustParseAddr("198.51.100.9")
)

func (e env) regulator(o Options) *Regulator { return New(e.st, e.rec, o, e.clk.Now) }

func mustFail(t *testing.T, r *Regulator, user string, ip netip.Addr) []store.Ban {
	t.Helper()
	bs, err := r.Fail(t.Context(), user, ip)
	if err != nil {
		t.Fatalf("Fail(%q, %v): %v", user, ip, err)
	}
	return bs
}

func banned(t *testing.T, r *Regulator, user string, ip netip.Addr) (store.Ban, bool) {
	t.Helper()
	b, ok, err := r.Banned(t.Context(), user, ip)
	if err != nil {
		t.Fatalf("Banned(%q, %v): %v", user, ip, err)
	}
	return b, ok
}

func TestBanAfterMaxFailures(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		r := e.regulator(Options{MaxFailures: 3, Window: time.Minute, Ban: 15 * time.Minute})
		// Each failure from its own address: only the user count grows.
		for i := range 2 {
			if bs := mustFail(t, r, "alice", netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})); len(bs) != 0 {
				t.Fatalf("failure %d started %v", i+1, bs)
			}
			if _, ok := banned(t, r, "alice", ipA); ok {
				t.Fatalf("banned after %d failures", i+1)
			}
		}
		bs := mustFail(t, r, "alice", netip.AddrFrom4([4]byte{10, 0, 0, 9}))
		if len(bs) != 1 || bs[0].Kind != store.BanKindUser || bs[0].Subject != "alice" || bs[0].Failures != 3 || bs[0].Level != 1 {
			t.Fatalf("third failure started %+v, want one user ban of alice", bs)
		}
		if got := bs[0].Until.Sub(bs[0].Since); got != 15*time.Minute {
			t.Errorf("first ban lasts %v, want 15m", got)
		}
		b, ok := banned(t, r, "alice", ipA)
		if !ok || b.Key != UserKey("alice") {
			t.Fatalf("Banned(alice) = %+v, %v", b, ok)
		}
		// Other users and the addresses are not banned.
		if _, ok := banned(t, r, "bob", ipA); ok {
			t.Error("bob banned by alice's failures")
		}
		evs := e.rec.list()
		if len(evs) != 1 || evs[0].Action != audit.BanStarted || evs[0].Target != "alice" {
			t.Errorf("audit = %+v, want one ban_started for alice", evs)
		}
	})
}

// Unknown users are counted and banned exactly like known ones: the
// regulator never asks whether a user exists.
func TestAddressBannedAcrossUserNames(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		r := e.regulator(Options{MaxFailures: 4})
		for i := range 3 {
			mustFail(t, r, fmt.Sprintf("spray%d", i), ipA)
		}
		bs := mustFail(t, r, "spray3", ipA)
		if len(bs) != 1 || bs[0].Kind != store.BanKindIP || bs[0].Subject != "203.0.113.7" {
			t.Fatalf("fourth failure from one address started %+v, want an ip ban", bs)
		}
		for _, user := range []string{"anyone", "", "spray0"} {
			if b, ok := banned(t, r, user, ipA); !ok || b.Kind != store.BanKindIP {
				t.Errorf("Banned(%q, ipA) = %+v, %v; want the ip ban", user, b, ok)
			}
		}
		if _, ok := banned(t, r, "anyone", ipB); ok {
			t.Error("another address is banned")
		}
	})
}

func TestFailuresExpireWithWindow(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		window := time.Hour
		if _, ok := e.st.(*redisstore.Store); ok {
			window = 300 * time.Millisecond // Redis expires on its own clock
		}
		r := e.regulator(Options{MaxFailures: 2, Window: window, Ban: window})
		mustFail(t, r, "alice", netip.Addr{})
		e.advance(window + 200*time.Millisecond)
		if bs := mustFail(t, r, "alice", netip.Addr{}); len(bs) != 0 {
			t.Fatalf("a failure outside the window still counted: %+v", bs)
		}
		if bs := mustFail(t, r, "alice", netip.Addr{}); len(bs) != 1 {
			t.Fatalf("two failures within the window did not ban: %+v", bs)
		}
	})
}

func TestSuccessResetsOnlyTheUser(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		r := e.regulator(Options{MaxFailures: 3})
		mustFail(t, r, "alice", ipA)
		mustFail(t, r, "alice", ipA)
		if err := r.Succeed(t.Context(), "alice"); err != nil {
			t.Fatal(err)
		}
		// alice starts afresh; the address keeps its two failures.
		bs := mustFail(t, r, "alice", ipA)
		if len(bs) != 1 || bs[0].Kind != store.BanKindIP {
			t.Fatalf("after a success, third failure from ipA started %+v, want only the ip ban", bs)
		}
		if _, ok, _ := r.Banned(t.Context(), "alice", ipB); ok {
			t.Error("alice banned although her count was reset")
		}
	})
}

func TestRepeatOffendersGetLongerBans(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		r := e.regulator(Options{MaxFailures: 1, Ban: 10 * time.Minute, MaxBan: 35 * time.Minute})
		want := []time.Duration{10 * time.Minute, 20 * time.Minute, 35 * time.Minute, 35 * time.Minute}
		for i, w := range want {
			bs := mustFail(t, r, "mallory", netip.Addr{})
			if len(bs) != 1 {
				t.Fatalf("ban %d: started %+v", i+1, bs)
			}
			if got := bs[0].Until.Sub(bs[0].Since); got != w || bs[0].Level != i+1 {
				t.Errorf("ban %d lasts %v at level %d, want %v at level %d", i+1, got, bs[0].Level, w, i+1)
			}
			// An admin lifts it, the offender tries again.
			if _, err := r.Lift(t.Context(), "mallory"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestBanExpires(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		ban := time.Hour
		if _, ok := e.st.(*redisstore.Store); ok {
			ban = 400 * time.Millisecond
		}
		r := e.regulator(Options{MaxFailures: 1, Ban: ban})
		mustFail(t, r, "alice", ipA)
		if _, ok := banned(t, r, "alice", ipA); !ok {
			t.Fatal("not banned")
		}
		e.advance(ban + 200*time.Millisecond)
		if b, ok := banned(t, r, "alice", ipA); ok {
			t.Fatalf("ban still holds after its length: %+v", b)
		}
		if bs, err := r.List(t.Context(), 10); err != nil || len(bs) != 0 {
			t.Errorf("List after expiry = %+v, %v", bs, err)
		}
	})
}

func TestListAndLift(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		r := e.regulator(Options{MaxFailures: 1})
		v6 := netip.MustParseAddr("2001:db8:aa:bb:1:2:3:4")
		mustFail(t, r, "alice", ipA)
		mustFail(t, r, "bob", v6)
		bs, err := r.List(t.Context(), 10)
		if err != nil || len(bs) != 4 {
			t.Fatalf("List = %+v, %v; want 4 bans", bs, err)
		}
		subjects := map[string]string{}
		for _, b := range bs {
			subjects[b.Subject] = b.Kind
		}
		wantSubjects := map[string]string{"alice": "user", "bob": "user", "203.0.113.7": "ip", "2001:db8:aa:bb::/64": "ip"}
		if fmt.Sprint(subjects) != fmt.Sprint(wantSubjects) {
			t.Errorf("listed subjects = %v, want %v", subjects, wantSubjects)
		}
		lifts := []struct {
			target  string
			subject string
		}{
			{"alice", "alice"},
			{"203.0.113.7", "203.0.113.7"},
			{"2001:db8:aa:bb::99", "2001:db8:aa:bb::/64"}, // any address of the /64
			{UserKey("bob"), "bob"},                       // the exact key, as the admin page posts it
		}
		for _, l := range lifts {
			got, err := r.Lift(t.Context(), l.target)
			if err != nil || len(got) != 1 || got[0].Subject != l.subject {
				t.Errorf("Lift(%q) = %+v, %v; want the ban of %s", l.target, got, err, l.subject)
			}
		}
		if bs, err := r.List(t.Context(), 10); err != nil || len(bs) != 0 {
			t.Errorf("List after lifting all = %+v, %v", bs, err)
		}
		if _, err := r.Lift(t.Context(), "alice"); !errors.Is(err, ErrNotBanned) || !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Lift of a lifted ban err = %v, want ErrNotBanned (store.ErrNotFound)", err)
		}
		// A lift also clears the failure count: one more failure is one,
		// not the limit again.
		r2 := e.regulator(Options{MaxFailures: 2})
		if bs := mustFail(t, r2, "carol", netip.Addr{}); len(bs) != 0 {
			t.Fatal(bs)
		}
		if bs := mustFail(t, r2, "carol", netip.Addr{}); len(bs) != 1 {
			t.Fatal("carol not banned")
		}
		if _, err := r2.Lift(t.Context(), "carol"); err != nil {
			t.Fatal(err)
		}
		if bs := mustFail(t, r2, "carol", netip.Addr{}); len(bs) != 0 {
			t.Errorf("first failure after a lift banned again: %+v", bs)
		}
	})
}

// Many instances failing at once start exactly one ban per subject.
func TestConcurrentFailuresStartOneBan(t *testing.T) {
	backends(t, func(t *testing.T, e env) {
		r := e.regulator(Options{MaxFailures: 5})
		var started atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				bs, err := r.Fail(t.Context(), "alice", netip.Addr{})
				if err != nil {
					t.Error(err)
				}
				started.Add(int32(len(bs)))
			})
		}
		wg.Wait()
		if n := started.Load(); n != 1 {
			t.Errorf("%d bans started by 20 concurrent failures, want exactly 1", n)
		}
		if _, ok := banned(t, r, "alice", netip.Addr{}); !ok {
			t.Error("not banned")
		}
	})
}

// A spray of long, random user names makes fixed-size keys.
func TestKeysAreBounded(t *testing.T) {
	long := strings.Repeat("ä", 500) + "\x00\xff"
	k := UserKey(long)
	if len(k) != len(UserKey("a")) || !store.ValidBanKey(k) {
		t.Errorf("UserKey of a %d-byte name = %q", len(long), k)
	}
	s := userSubject(long)
	if len(s.display) > maxSubjectLen || !strings.HasSuffix(s.display, "…") {
		t.Errorf("display of a long name = %q (%d bytes)", s.display, len(s.display))
	}
	tests := []struct {
		ip, want string
	}{
		{"192.0.2.1", "ip:192.0.2.1"},
		{"::ffff:192.0.2.1", "ip:192.0.2.1"},
		{"2001:db8::1", "ip:2001:db8::/64"},
		{"2001:db8::ffff:1:2:3", "ip:2001:db8::/64"},
		{"fe80::1%eth0", "ip:fe80::/64"},
	}
	for _, tt := range tests {
		if got := IPKey(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("IPKey(%s) = %s, want %s", tt.ip, got, tt.want)
		}
	}
}

func TestTargetKeys(t *testing.T) {
	tests := []struct {
		target string
		want   []string
	}{
		{"", nil},
		{"alice", []string{UserKey("alice")}},
		{" alice ", []string{UserKey("alice")}},
		{"192.0.2.1", []string{"ip:192.0.2.1", UserKey("192.0.2.1")}},
		{"2001:db8::/64", []string{"ip:2001:db8::/64", UserKey("2001:db8::/64")}},
		{"2001:db8::1/64", []string{"ip:2001:db8::/64", UserKey("2001:db8::1/64")}},
		{"ip:192.0.2.1", []string{"ip:192.0.2.1"}},
		{UserKey("x"), []string{UserKey("x")}},
	}
	for _, tt := range tests {
		if got := TargetKeys(tt.target); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("TargetKeys(%q) = %v, want %v", tt.target, got, tt.want)
		}
	}
}

// A store error while checking is returned, so callers refuse the attempt.
func TestBannedFailsClosed(t *testing.T) {
	clk := testkit.NewClock(time.Now())
	st, err := embedded.Open(filepath.Join(t.TempDir(), "a.db"), embedded.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	r := New(st, nil, Options{}, clk.Now)
	_ = st.Close()
	if _, _, err := r.Banned(context.Background(), "alice", ipA); err == nil {
		t.Error("Banned on a closed store returned no error")
	}
	if _, err := r.Fail(context.Background(), "alice", ipA); err == nil {
		t.Error("Fail on a closed store returned no error")
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct{ in, want Options }{
		{Options{}, Options{MaxPerSession: 5, SessionWindow: 10 * time.Minute, MaxFailures: 5, Window: 5 * time.Minute, Ban: 15 * time.Minute, MaxBan: 4 * time.Hour, RepeatWindow: 24 * time.Hour}},
		// max_ban below ban is raised; a window longer than the ban shortened.
		{Options{Ban: time.Hour, MaxBan: time.Minute, Window: 2 * time.Hour},
			Options{MaxPerSession: 5, SessionWindow: 10 * time.Minute, MaxFailures: 5, Window: time.Hour, Ban: time.Hour, MaxBan: time.Hour, RepeatWindow: 24 * time.Hour}},
	}
	for _, tt := range tests {
		if got := New(nil, nil, tt.in, nil).Options(); got != tt.want {
			t.Errorf("Options(%+v) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
