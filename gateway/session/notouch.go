package session

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/authgate/authgate/gateway/store"
)

// WithoutTouch returns a Manager for checking sessions only: it reads and
// judges them exactly as m does (same store, cache, clock and lifetimes)
// but never refreshes LastSeenAt, so Get returns a session due for a
// touch without writing it. A session found expired or idle is still
// deleted, as m would. It creates and moves nothing: Create and Rotate
// fail before they change anything.
//
// The gate uses it to re-check requests that are still running (open
// WebSockets, streamed responses; gateway/stream): a tunnel left open is
// not activity, so it must not keep its session from going idle, and a
// check every second must not write.
func (m *Manager) WithoutTouch() *Manager {
	q := *m
	q.st = noTouch{m.st}
	// Its "touches" write nothing: they must not stand in for m's.
	q.touches = new(singleflight.Group)
	return &q
}

// errNoTouch is what a WithoutTouch Manager answers to a creation or a
// move to a new id.
var errNoTouch = errors.New("session: a manager without touch creates and moves no session")

// noTouch is a Store whose writes of a session's record do nothing
// (ReplaceSession: the touch) or fail (PutSession, TakeSession: a
// creation, a move). Deletes go through. It spells
// out each method instead of embedding Store, so that a method added to
// Store must be decided on here rather than writing through.
type noTouch struct{ st Store }

func (n noTouch) PutSession(context.Context, store.Session, time.Duration) error { return errNoTouch }

func (n noTouch) ReplaceSession(context.Context, store.Session, time.Duration) error { return nil }

func (n noTouch) GetSession(ctx context.Context, idHash string) (store.Session, error) {
	return n.st.GetSession(ctx, idHash)
}

func (n noTouch) TakeSession(context.Context, string) (store.Session, error) {
	return store.Session{}, errNoTouch
}

func (n noTouch) DeleteSession(ctx context.Context, idHash string) error {
	return n.st.DeleteSession(ctx, idHash)
}
