package drift_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/drift"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/secretbox"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
	"github.com/authgate/authgate/gateway/totp"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 10, 0, time.UTC)

func embeddedStore(t *testing.T) store.Store {
	t.Helper()
	emb, err := embedded.Open(filepath.Join(t.TempDir(), "d.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emb.Close() })
	return emb
}

// stores are both backends: the real embedded store and a Redis started
// for the test.
func stores(t *testing.T) map[string]store.Store {
	t.Helper()
	emb := embeddedStore(t)
	srv := redistest.Start(t, redistest.Options{})
	rs := redisstore.New(redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}}), redisstore.Options{KeyPrefix: "drift"})
	t.Cleanup(func() { _ = rs.Close() })
	return map[string]store.Store{"embedded": emb, "redis": rs}
}

func addUser(t *testing.T, st store.Store, name string, sealed []byte) {
	t.Helper()
	if err := st.CreateUser(context.Background(), store.User{Name: name, Role: store.RoleUser, TOTPSecret: sealed, CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
}

// From a failed code to the stored evidence and the admin's verdict, on
// both backends: a phone 90 s and 5 min ahead/behind is recorded with its
// offset, one 20 min off (beyond a 10 min scan) is not; nothing is
// accepted.
func TestEvidenceEndToEnd(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			clk := testkit.NewClock(t0)
			var logs testkit.SyncBuffer
			rec := drift.NewRecorder(st, zerolog.New(&logs), drift.RecorderOptions{MaxDelay: -1})
			t.Cleanup(func() { _ = rec.Close() })
			box, _ := secretbox.New(secretbox.Key{7})
			f := factor.NewTOTP(box, st, totp.DefaultOptions(), clk.Now, nil, factor.WithDriftScan(20, rec))
			cases := []struct {
				user   string
				offset time.Duration
				want   int // 0: nothing recorded
			}{
				{"p90a", 90 * time.Second, 3}, {"p90b", -90 * time.Second, -3},
				{"p5ma", 5 * time.Minute, 10}, {"p5mb", -5 * time.Minute, -10},
				{"p20a", 20 * time.Minute, 0}, {"p20b", -20 * time.Minute, 0},
			}
			for _, c := range cases {
				sealed, err := f.NewSecret(c.user)
				if err != nil {
					t.Fatal(err)
				}
				addUser(t, st, c.user, sealed)
				en, _ := f.Describe(c.user, "P", sealed)
				raw, _ := totp.DecodeSecret(en.KeyGrouped)
				code, _ := totp.Code(raw, clk.Now().Add(c.offset), totp.DefaultOptions())
				if _, err := f.Check(t.Context(), c.user, sealed, 0, code); !errors.Is(err, factor.ErrInvalid) {
					t.Fatalf("%s: Check = %v, want ErrInvalid", c.user, err)
				}
			}
			if err := rec.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, c := range cases {
				u, err := st.GetUser(t.Context(), c.user)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case c.want == 0 && len(u.DriftSeen) != 0:
					t.Errorf("%s: recorded %v beyond the scan", c.user, u.DriftSeen)
				case c.want != 0 && (len(u.DriftSeen) != 1 || u.DriftSeen[0].Steps != c.want || !u.DriftSeen[0].At.Equal(t0)):
					t.Errorf("%s: recorded %+v, want one observation of %d at %v", c.user, u.DriftSeen, c.want, t0)
				}
				if u.TOTPDriftSteps != 0 {
					t.Errorf("%s: evidence changed the applied drift to %d", c.user, u.TOTPDriftSteps)
				}
			}
			out := logs.String()
			if !strings.Contains(out, `"user":"p5mb"`) || !strings.Contains(out, `"offset_steps":-10`) || !strings.Contains(out, `"level":"warn"`) {
				t.Errorf("log lacks the warning with user and offset: %s", out)
			}
			// Four users, four different offsets: four phones, no server.
			rep, err := drift.Analyze(t.Context(), st, clk.Now(), drift.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Users != 4 || rep.ServerLikely {
				t.Fatalf("report %+v: want 4 phones, no server verdict", rep)
			}
			u, ok := rep.User("p90a")
			if !ok || rep.Advice(u) != "phone clock ~90 s ahead: enable automatic time on the phone" {
				t.Fatalf("advice for p90a: %q", rep.Advice(u))
			}
		})
	}
}

func TestRecorderKeepsTheLastFive(t *testing.T) {
	st := embeddedStore(t)
	addUser(t, st, "alice", []byte("x"))
	rec := drift.NewRecorder(st, zerolog.Nop(), drift.RecorderOptions{MaxDelay: time.Hour})
	for i := range 7 {
		rec.Observe("alice", i+2, t0.Add(time.Duration(i)*time.Minute))
	}
	rec.Observe("nobody", 3, t0) // a deleted user is skipped
	// Close writes what is queued even before the delay is over.
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	rec.Observe("alice", 99, t0) // after Close: ignored, no panic
	if err := rec.Flush(t.Context()); !errors.Is(err, drift.ErrClosed) {
		t.Fatalf("Flush after Close = %v", err)
	}
	u, _ := st.GetUser(t.Context(), "alice")
	if len(u.DriftSeen) != store.MaxDriftSeen || u.DriftSeen[0].Steps != 4 || u.DriftSeen[4].Steps != 8 {
		t.Fatalf("DriftSeen = %+v, want steps 4..8", u.DriftSeen)
	}
}

// The queue is bounded: Observe never blocks a request.
func TestRecorderNeverBlocks(t *testing.T) {
	st := embeddedStore(t)
	rec := drift.NewRecorder(st, zerolog.Nop(), drift.RecorderOptions{Queue: 1, MaxDelay: time.Hour})
	defer rec.Close()
	done := make(chan struct{})
	go func() {
		for range 10000 {
			rec.Observe("alice", 3, t0)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Observe blocked")
	}
}

func obs(at time.Time, steps ...int) []store.DriftObservation {
	var out []store.DriftObservation
	for _, s := range steps {
		out = append(out, store.DriftObservation{At: at, Steps: s})
	}
	return out
}

func TestAnalyzeServerOrPhone(t *testing.T) {
	recent := t0.Add(-time.Hour)
	old := t0.Add(-48 * time.Hour)
	for _, tc := range []struct {
		name        string
		users       []store.User
		server      bool
		estSteps    int
		estSeconds  int
		agreeing    int
		phones      []string
		userCount   int
		adviceOf    string
		adviceWants string
	}{
		{name: "no evidence", users: []store.User{{Name: "a"}, {Name: "b"}}},
		{
			name:   "one user off, the others fine: the phone",
			users:  []store.User{{Name: "a", DriftSeen: obs(recent, 3, 3)}, {Name: "b"}, {Name: "c"}},
			phones: []string{"a"}, userCount: 1,
			adviceOf: "a", adviceWants: "phone clock ~90 s ahead: enable automatic time on the phone",
		},
		{
			name: "three users agree within a step: the server",
			users: []store.User{
				{Name: "a", DriftSeen: obs(recent, 3)}, {Name: "b", DriftSeen: obs(recent, 4, 4)},
				{Name: "c", DriftSeen: obs(recent, 3, 2)}, {Name: "d", DriftSeen: obs(recent, -10)}, {Name: "e"},
			},
			server: true, estSteps: 3, estSeconds: -90, agreeing: 3, phones: []string{"d"}, userCount: 4,
			adviceOf: "b", adviceWants: "matches the server clock, which is likely ~90 s behind: fix the server clock, not the phone",
		},
		{
			name:   "two users agree (MinAgreeingUsers)",
			users:  []store.User{{Name: "a", DriftSeen: obs(recent, -10)}, {Name: "b", DriftSeen: obs(recent, -10)}},
			server: true, estSteps: -10, estSeconds: 300, agreeing: 2, userCount: 2,
			adviceOf: "a", adviceWants: "matches the server clock, which is likely ~5 min ahead: fix the server clock, not the phone",
		},
		{
			name:   "two users far apart: two phones",
			users:  []store.User{{Name: "a", DriftSeen: obs(recent, 3)}, {Name: "b", DriftSeen: obs(recent, -3)}},
			phones: []string{"a", "b"}, userCount: 2,
			adviceOf: "b", adviceWants: "phone clock ~90 s behind: enable automatic time on the phone",
		},
		{
			name:   "old evidence is ignored",
			users:  []store.User{{Name: "a", DriftSeen: obs(old, 3)}, {Name: "b", DriftSeen: append(obs(old, 3), obs(recent, 10)...)}},
			phones: []string{"b"}, userCount: 1,
			adviceOf: "b", adviceWants: "phone clock ~5 min ahead: enable automatic time on the phone",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := drift.AnalyzeUsers(tc.users, t0, drift.Options{})
			if rep.ServerLikely != tc.server || rep.EstimateSteps != tc.estSteps || rep.EstimateSeconds != tc.estSeconds ||
				rep.Agreeing != tc.agreeing || rep.Users != tc.userCount {
				t.Fatalf("report %+v", rep)
			}
			var phones []string
			for _, p := range rep.Phones() {
				phones = append(phones, p.Name)
			}
			if strings.Join(phones, ",") != strings.Join(tc.phones, ",") {
				t.Fatalf("phones %v, want %v", phones, tc.phones)
			}
			if tc.adviceOf != "" {
				u, ok := rep.User(tc.adviceOf)
				if !ok || rep.Advice(u) != tc.adviceWants {
					t.Fatalf("advice for %s = %q, want %q", tc.adviceOf, rep.Advice(u), tc.adviceWants)
				}
			}
		})
	}
}

// Analyze pages through every user.
func TestAnalyzePages(t *testing.T) {
	st := embeddedStore(t)
	for i := range 1203 {
		u := store.User{Name: "u" + strings.Repeat("0", 4-len(itoa(i))) + itoa(i), Role: store.RoleUser, CreatedAt: t0, UpdatedAt: t0}
		if i%400 == 0 {
			u.DriftSeen = obs(t0.Add(-time.Minute), 6)
		}
		if err := st.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := drift.Analyze(t.Context(), st, t0, drift.Options{})
	if err != nil || rep.Users != 4 || !rep.ServerLikely || rep.Agreeing != 4 || rep.EstimateSeconds != -180 {
		t.Fatalf("Analyze = %+v, %v", rep, err)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

type auditLog struct {
	mu  sync.Mutex
	evs []store.AuditEvent
}

func (a *auditLog) Record(ctx context.Context, ev store.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ev.Actor == "" {
		ev.Actor, _ = audit.ActorFrom(ctx)
	}
	a.evs = append(a.evs, ev)
}

// Resync through the Service on both backends: two consecutive codes at
// +7 minutes store drift +14, clear the evidence, audit; sign-ins at that
// drift pass; the codes cannot be replayed.
func TestServiceResync(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			clk := testkit.NewClock(t0)
			box, _ := secretbox.New(secretbox.Key{7})
			f := factor.NewTOTP(box, st, totp.DefaultOptions(), clk.Now, nil, factor.WithDriftScan(20, nil))
			al := &auditLog{}
			svc := drift.NewService(st, f, al, drift.Options{}, clk.Now)
			sealed, _ := f.NewSecret("alice")
			addUser(t, st, "alice", sealed)
			if _, err := st.UpdateUser(t.Context(), "alice", func(u *store.User) error {
				u.DriftSeen = obs(t0, 14)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			en, _ := f.Describe("alice", "P", sealed)
			raw, _ := totp.DecodeSecret(en.KeyGrouped)
			phone := func() string {
				c, _ := totp.Code(raw, clk.Now().Add(7*time.Minute), totp.DefaultOptions())
				return c
			}
			code1 := phone()
			clk.Advance(30 * time.Second)
			code2 := phone()
			ctx := audit.WithActor(t.Context(), "root", "192.0.2.1")
			steps, err := svc.Resync(ctx, "alice", code1, code2)
			if err != nil || steps != 14 {
				t.Fatalf("Resync = %d, %v", steps, err)
			}
			u, _ := st.GetUser(t.Context(), "alice")
			if u.TOTPDriftSteps != 14 || len(u.DriftSeen) != 0 {
				t.Fatalf("stored drift %d, evidence %v", u.TOTPDriftSteps, u.DriftSeen)
			}
			if len(al.evs) != 1 || al.evs[0].Action != audit.TOTPResynced || al.evs[0].Target != "alice" || al.evs[0].Actor != "root" ||
				al.evs[0].Detail != "device clock +14 steps (7 min), was +0 steps (0 s)" {
				t.Fatalf("audit %+v", al.evs)
			}
			for _, c := range []string{code1, code2} {
				if _, err := f.Check(t.Context(), "alice", sealed, u.TOTPDriftSteps, c); !errors.Is(err, factor.ErrReplayed) {
					t.Fatalf("replay after resync: %v", err)
				}
			}
			clk.Advance(30 * time.Second)
			if _, err := f.Check(t.Context(), "alice", sealed, u.TOTPDriftSteps, phone()); err != nil {
				t.Fatalf("sign-in at the resynced drift: %v", err)
			}
			// Beyond the scan: refused, nothing stored.
			far := func(d time.Duration) string {
				c, _ := totp.Code(raw, clk.Now().Add(d), totp.DefaultOptions())
				return c
			}
			if _, err := svc.Resync(ctx, "alice", far(30*time.Minute), far(30*time.Minute+30*time.Second)); !errors.Is(err, factor.ErrTooFar) {
				t.Fatalf("resync at +30 min = %v", err)
			}
			if u, _ := st.GetUser(t.Context(), "alice"); u.TOTPDriftSteps != 14 {
				t.Fatalf("drift changed to %d by a refused resync", u.TOTPDriftSteps)
			}
			// Without 2FA there is nothing to resync.
			addUser(t, st, "bob", nil)
			if _, err := svc.Resync(ctx, "bob", "123456", "654321"); !errors.Is(err, drift.ErrNoTOTP) {
				t.Fatalf("resync without 2FA = %v", err)
			}
		})
	}
}

func TestTexts(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{drift.PhoneAdvice(3, 30), "phone clock ~90 s ahead: enable automatic time on the phone"},
		{drift.PhoneAdvice(-10, 30), "phone clock ~5 min behind: enable automatic time on the phone"},
		{drift.OffsetText(7200), "~2 h ahead"},
		{drift.StepsText(-1, 30), "-1 step (30 s)"},
		{drift.StepsText(14, 30), "+14 steps (7 min)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
