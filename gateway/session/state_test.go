package session_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
)

// Regression: a touch wrote the whole record back unconditionally, so a
// request that read the session just before a logout re-created it.
func TestTouchNeverRevivesAnEndedSession(t *testing.T) {
	m, st, clk := newManager(t)
	ctx := context.Background()
	id, s, err := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull, TwoFactor: true})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute) // past the touch interval: the next Get writes
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-start
			_, _ = m.Get(ctx, id)
		})
	}
	wg.Go(func() {
		<-start
		if err := m.Destroy(ctx, s.IDHash); err != nil {
			t.Error(err)
		}
	})
	close(start)
	wg.Wait()
	if _, err := m.Get(ctx, id); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the session came back after logout: Get err = %v", err)
	}
	if _, err := st.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the store holds the ended session again: %v", err)
	}
	// A save of a session ended meanwhile fails closed too.
	if err := m.Save(ctx, s); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Save of an ended session = %v, want ErrNoSession", err)
	}
}

// Regression: Rotate built the new session from the request's copy and
// accepted an old session that no longer existed, so many requests of
// one pending session could each complete it.
func TestRotateOnceAndOnlyFromTheStoredRecord(t *testing.T) {
	m, _, _ := newManager(t)
	ctx := context.Background()
	_, p, err := m.Create(ctx, store.Session{User: "alice", Stage: store.StagePending})
	if err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 20 {
		wg.Go(func() {
			<-start
			_, _, err := m.Rotate(ctx, p, func(x *store.Session) { x.Stage, x.TwoFactor = store.StageFull, true })
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, session.ErrNoSession):
				t.Errorf("Rotate: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d rotations of one pending session succeeded, want 1", n)
	}
	// Rotating a session that was ended meanwhile creates nothing.
	_, gone, _ := m.Create(ctx, store.Session{User: "bob", Stage: store.StagePending})
	if err := m.Destroy(ctx, gone.IDHash); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Rotate(ctx, gone, func(x *store.Session) { x.Stage, x.TwoFactor = store.StageFull, true }); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Rotate of an ended session = %v, want ErrNoSession", err)
	}
}

// A rotation from a copy whose stored record changed meanwhile (another
// request moved the epoch or the stage) fails closed and leaves nothing.
func TestRotateRefusesAChangedRecord(t *testing.T) {
	m, st, _ := newManager(t)
	ctx := context.Background()
	_, s, _ := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull, UserEpoch: 1})
	changed := s
	changed.TwoFactor = true
	if err := st.ReplaceSession(ctx, changed, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Rotate(ctx, s, nil); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Rotate from a stale copy = %v, want ErrNoSession", err)
	}
	if list, _ := st.ListUserSessions(ctx, "alice"); len(list) != 0 {
		t.Fatalf("a failed rotation left sessions: %+v", list)
	}
}

func TestCheckTransition(t *testing.T) {
	pending := store.Session{User: "a", Stage: store.StagePending, UserEpoch: 2}
	pw := store.Session{User: "a", Stage: store.StageFull, UserEpoch: 2}
	tf := store.Session{User: "a", Stage: store.StageFull, TwoFactor: true, UserEpoch: 2}
	with := func(s store.Session, f func(*store.Session)) store.Session { f(&s); return s }
	tests := []struct {
		name     string
		from, to store.Session
		ok       bool
	}{
		{"code owed -> second factor", pending, with(pending, func(s *store.Session) { s.Stage, s.TwoFactor = store.StageFull, true }), true},
		{"code owed -> password only", pending, with(pending, func(s *store.Session) { s.Stage = store.StageFull }), false},
		{"code owed -> code owed", pending, pending, false},
		{"password only -> second factor (step-up)", pw, tf, true},
		{"password only -> password only, new epoch (password change)", pw, with(pw, func(s *store.Session) { s.UserEpoch = 3 }), true},
		{"second factor -> second factor, new epoch (reconfigured)", tf, with(tf, func(s *store.Session) { s.UserEpoch = 3 }), true},
		{"second factor -> password only, new epoch (removed)", tf, with(pw, func(s *store.Session) { s.UserEpoch = 3 }), true},
		{"second factor -> password only, same epoch", tf, pw, false},
		{"second factor -> code owed", tf, pending, false},
		{"another user", tf, with(tf, func(s *store.Session) { s.User = "b" }), false},
		{"epoch backwards", tf, with(tf, func(s *store.Session) { s.UserEpoch = 1 }), false},
		{"unknown stage", with(pw, func(s *store.Session) { s.Stage = "weird" }), tf, false},
	}
	for _, tt := range tests {
		err := session.CheckTransition(tt.from, tt.to)
		if (err == nil) != tt.ok {
			t.Errorf("%s: CheckTransition = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestValid(t *testing.T) {
	u := store.User{Name: "a", AuthEpoch: 4}
	tests := []struct {
		name string
		s    store.Session
		mode string
		want error
	}{
		{"current, 2FA", store.Session{User: "a", UserEpoch: 4, TwoFactor: true, Mode: settings.ModeOff}, settings.ModeRequired, nil},
		{"older epoch", store.Session{User: "a", UserEpoch: 3, TwoFactor: true}, settings.ModeOn, session.ErrAccountChanged},
		{"newer epoch", store.Session{User: "a", UserEpoch: 5, TwoFactor: true}, settings.ModeOn, session.ErrAccountChanged},
		{"another user", store.Session{User: "b", UserEpoch: 4, TwoFactor: true}, settings.ModeOn, session.ErrAccountChanged},
		{"password only, mode unchanged", store.Session{User: "a", UserEpoch: 4, Mode: settings.ModeOn}, settings.ModeOn, nil},
		{"password only, mode lowered", store.Session{User: "a", UserEpoch: 4, Mode: settings.ModeRequired}, settings.ModeOff, nil},
		{"password only, off -> on", store.Session{User: "a", UserEpoch: 4, Mode: settings.ModeOff}, settings.ModeOn, session.ErrModeRaised},
		{"password only, off -> required", store.Session{User: "a", UserEpoch: 4, Mode: settings.ModeOff}, settings.ModeRequired, session.ErrModeRaised},
		{"password only, on -> required", store.Session{User: "a", UserEpoch: 4, Mode: settings.ModeOn}, settings.ModeRequired, session.ErrModeRaised},
		{"password only, no mode recorded", store.Session{User: "a", UserEpoch: 4}, settings.ModeOn, session.ErrModeRaised},
	}
	for _, tt := range tests {
		err := session.Valid(tt.s, u, tt.mode)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: Valid = %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && !errors.Is(err, session.ErrNoSession) {
			t.Errorf("%s: %v does not match ErrNoSession", tt.name, err)
		}
	}
}
