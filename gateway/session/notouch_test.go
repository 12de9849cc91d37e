package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
)

// A session read through WithoutTouch is judged like any other (valid,
// then idle) but its LastSeenAt is never written: re-checking an open
// stream every second must neither write nor keep the session alive.
func TestWithoutTouchNeverRefreshes(t *testing.T) {
	m, st, clk := newManager(t)
	ctx := context.Background()
	id, s, err := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull})
	if err != nil {
		t.Fatal(err)
	}
	q := m.WithoutTouch()
	// Past the touch interval (1 min), inside the idle timeout (1 h).
	for range 5 {
		clk.Advance(10 * time.Minute)
		got, err := q.Get(ctx, id)
		if err != nil || got.User != "alice" {
			t.Fatalf("Get without touch = %+v, %v", got, err)
		}
		stored, err := st.GetSession(ctx, s.IDHash)
		if err != nil {
			t.Fatal(err)
		}
		if !stored.LastSeenAt.Equal(s.LastSeenAt) {
			t.Fatalf("LastSeenAt written: %v, want %v", stored.LastSeenAt, s.LastSeenAt)
		}
	}
	// 50 minutes of checks did not count as use: ten more make it idle.
	clk.Advance(10 * time.Minute)
	if _, err := q.Get(ctx, id); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("idle session through WithoutTouch: %v, want ErrNoSession", err)
	}
	if _, err := st.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("idle session left in the store: %v", err)
	}
	// It creates and moves nothing; a failed move leaves the session.
	id3, s3, err := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Create(ctx, store.Session{User: "alice", Stage: store.StageFull}); err == nil {
		t.Fatal("Create without touch succeeded")
	}
	if _, _, err := q.Rotate(ctx, s3, nil); err == nil {
		t.Fatal("Rotate without touch succeeded")
	}
	if _, err := m.Get(ctx, id3); err != nil {
		t.Fatalf("the session after a refused Rotate: %v", err)
	}
	// The original manager still touches.
	id2, s2, err := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := m.Get(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if stored, _ := st.GetSession(ctx, s2.IDHash); !stored.LastSeenAt.After(s2.LastSeenAt) {
		t.Fatal("the original manager no longer touches")
	}
}
