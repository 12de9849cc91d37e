package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/store"
)

// recorder is an InvalidationHandler that keeps what it is told.
type recorder struct {
	mu     sync.Mutex
	events []string
	// causes are the causes of every FeedReset, in order.
	causes []string
	// onSession, when set, runs for each SessionChanged in the feed's
	// goroutine.
	onSession func(idHash string)
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) SessionChanged(id string) {
	if r.onSession != nil {
		r.onSession(id)
	}
	r.add("session:" + id)
}
func (r *recorder) UserChanged(name string)         { r.add("user:" + name) }
func (r *recorder) UserSessionsChanged(name string) { r.add("user_sessions:" + name) }
func (r *recorder) FeedReset(subscribed bool, cause string, _ error) {
	r.mu.Lock()
	r.causes = append(r.causes, cause)
	r.mu.Unlock()
	r.add(fmt.Sprintf("reset:%v", subscribed))
}
func (r *recorder) FeedStalled(stalled bool) { r.add(fmt.Sprintf("stalled:%v", stalled)) }

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// take waits until the last event recorded is last (or fails after 5 s)
// and returns the events since the previous take.
func (r *recorder) take(t *testing.T, last string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		ev := r.events
		if n := len(ev); n > 0 && ev[n-1] == last {
			r.events = nil
			r.mu.Unlock()
			return ev
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %q; events: %q", last, ev)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// takeAll waits until the events recorded include all of want (sorted),
// then 50 ms more, and returns them sorted.
func (r *recorder) takeAll(t *testing.T, want []string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		ev := slices.Clone(r.events)
		r.mu.Unlock()
		slices.Sort(ev)
		if containsAll(ev, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %q; events: %q", want, ev)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	r.mu.Lock()
	ev := r.events
	r.events = nil
	r.mu.Unlock()
	slices.Sort(ev)
	return ev
}

// containsAll reports whether sorted have includes sorted want (as
// multisets).
func containsAll(have, want []string) bool {
	i := 0
	for _, w := range want {
		for i < len(have) && have[i] < w {
			i++
		}
		if i == len(have) || have[i] != w {
			return false
		}
		i++
	}
	return true
}

// follow runs Invalidations for the test and returns its recorder once
// subscribed.
func follow(t *testing.T, s *Store, r *recorder) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Invalidations(ctx, r)
	}()
	t.Cleanup(func() { cancel(); <-done })
	r.take(t, "reset:true")
	return r
}

// Every write of a session or user announces exactly what it changed, on
// one server and on a Cluster (where the announcement follows the write
// instead of riding in its pipeline).
func TestWritesAnnounce(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		testWritesAnnounce(t, []string{srv.Addr()})
	})
	t.Run("cluster", func(t *testing.T) {
		if testing.Short() {
			t.Skip("cluster start-up takes seconds")
		}
		testWritesAnnounce(t, redistest.StartCluster(t).Addrs())
	})
}

func testWritesAnnounce(t *testing.T, addrs []string) {
	ctx := t.Context()
	prefix := uniquePrefix()
	s := newStore(t, addrs, prefix)
	r := follow(t, newStore(t, addrs, prefix), &recorder{})
	step := func(what string, want []string, do func() error) {
		t.Helper()
		if err := do(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		// A marker write ends each step. A Cluster may deliver messages
		// published through different nodes out of order: compare as
		// sets, once everything expected arrived and a moment passed
		// for anything unexpected.
		if err := s.DeleteSession(ctx, "mark"); err != nil {
			t.Fatal(err)
		}
		want = append(slices.Clone(want), "session:mark")
		slices.Sort(want)
		got := r.takeAll(t, want)
		if !slices.Equal(got, want) {
			t.Errorf("%s announced %q, want %q", what, got, want)
		}
	}
	now := time.Now()
	sess := store.Session{IDHash: "h1", User: "alice", Stage: store.StageFull, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	step("CreateUser", []string{"user:alice"}, func() error { return s.CreateUser(ctx, store.User{Name: "alice"}) })
	step("CreateUser of an existing user", nil, func() error {
		if err := s.CreateUser(ctx, store.User{Name: "alice"}); !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("err %v, want ErrExists", err)
		}
		return nil
	})
	step("UpdateUser", []string{"user:alice"}, func() error {
		_, err := s.UpdateUser(ctx, "alice", func(u *store.User) error { u.Role = store.RoleAdmin; return nil })
		return err
	})
	errMine := errors.New("mine")
	step("UpdateUser refused by fn", nil, func() error {
		if _, err := s.UpdateUser(ctx, "alice", func(*store.User) error { return errMine }); !errors.Is(err, errMine) {
			return fmt.Errorf("err %v", err)
		}
		return nil
	})
	step("PutSession", []string{"session:h1"}, func() error { return s.PutSession(ctx, sess, time.Hour) })
	step("PutSession again", []string{"session:h1"}, func() error { return s.PutSession(ctx, sess, time.Hour) })
	step("DeleteSession", []string{"session:h1"}, func() error { return s.DeleteSession(ctx, "h1") })
	step("PutSession before DeleteUserSessions", []string{"session:h1"}, func() error { return s.PutSession(ctx, sess, time.Hour) })
	step("DeleteUserSessions", []string{"user_sessions:alice"}, func() error {
		_, err := s.DeleteUserSessions(ctx, "alice")
		return err
	})
	step("DeleteUserSessions with none", []string{"user_sessions:alice"}, func() error {
		_, err := s.DeleteUserSessions(ctx, "alice")
		return err
	})
	step("DeleteUser", []string{"user:alice", "user_sessions:alice"}, func() error { return s.DeleteUser(ctx, "alice") })
	// Reads, counters and the rest announce nothing.
	step("reads and other writes", nil, func() error {
		_, _ = s.GetUser(ctx, "alice")
		_, _ = s.GetSession(ctx, "h1")
		_, _ = s.ListUserSessions(ctx, "alice")
		_, _ = s.Incr(ctx, "k", 1, time.Minute)
		_, _ = s.UseStep(ctx, "alice", 1, time.Minute)
		return s.SetSetting(ctx, "mode", "on")
	})
}

// An announcement is never delivered before its write is visible: a
// reader told of a change reads the new value (or newer), on one server
// and on a Cluster.
func TestAnnouncedAfterWrite(t *testing.T) {
	t.Run("standalone", func(t *testing.T) {
		srv := redistest.Start(t, redistest.Options{})
		testAnnouncedAfterWrite(t, []string{srv.Addr()})
	})
	t.Run("cluster", func(t *testing.T) {
		if testing.Short() {
			t.Skip("cluster start-up takes seconds")
		}
		testAnnouncedAfterWrite(t, redistest.StartCluster(t).Addrs())
	})
}

func testAnnouncedAfterWrite(t *testing.T, addrs []string) {
	ctx := t.Context()
	prefix := uniquePrefix()
	writer, reader := newStore(t, addrs, prefix), newStore(t, addrs, prefix)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var seen []int // minutes of LastSeenAt read at each announcement
	r := &recorder{onSession: func(id string) {
		if id != "h" {
			return
		}
		s, err := reader.GetSession(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			seen = append(seen, -1)
			return
		}
		seen = append(seen, int(s.LastSeenAt.Sub(base)/time.Minute))
	}}
	follow(t, newStore(t, addrs, prefix), r)
	const writes = 50
	for i := range writes {
		s := store.Session{IDHash: "h", User: "alice", Stage: store.StageFull, CreatedAt: base, LastSeenAt: base.Add(time.Duration(i) * time.Minute), ExpiresAt: base.Add(time.Hour)}
		if err := writer.PutSession(ctx, s, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	r.take(t, "session:h")
	waitLen := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == writes {
			break
		}
		if time.Now().After(waitLen) {
			t.Fatalf("%d announcements, want %d", n, writes)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range seen {
		if v < i {
			t.Fatalf("announcement %d read version %d: the write was not visible yet (%v)", i, v, seen)
		}
	}
}

// The feed reports losing Redis and subscribing again.
func TestInvalidationsAcrossRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := uniquePrefix()
	r := follow(t, newStore(t, []string{srv.Addr()}, prefix), &recorder{})
	srv.Kill()
	r.take(t, "reset:false")
	srv.Restart()
	r.take(t, "reset:true")
	// And it delivers again.
	if err := newStore(t, []string{srv.Addr()}, prefix).DeleteSession(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	r.take(t, "session:x")
}

// A subscription that stops answering (no error reaches the client:
// here the server pauses every client) is reported stalled within about a
// second of silence (whoever caches stops serving), given up once its
// ping has gone unanswered for lostAfter, and taken up again when the
// server answers.
func TestInvalidationsSilentConnection(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	r := follow(t, newStore(t, []string{srv.Addr()}, uniquePrefix()), &recorder{})
	admin := srv.Client(t)
	start := time.Now()
	if err := admin.Do(t.Context(), "CLIENT", "PAUSE", "5000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	r.take(t, "stalled:true")
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("the silent subscription was reported stalled after %v", took)
	}
	r.take(t, "reset:false")
	if took := time.Since(start); took > pingEvery+lostAfter+time.Second {
		t.Fatalf("the silent subscription was given up after %v", took)
	}
	r.take(t, "reset:true")
	if took := time.Since(start); took < 5*time.Second {
		t.Fatalf("subscribed again after %v, while the server was paused", took)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Subscribed, lost as silent, (attempts to subscribe during the
	// pause may fail: error), subscribed again.
	if n := len(r.causes); n < 3 || r.causes[0] != store.FeedSubscribed || r.causes[1] != store.FeedSilent || r.causes[n-1] != store.FeedSubscribed {
		t.Fatalf("reset causes %q, want subscribed, silent, ..., subscribed", r.causes)
	}
}

// An answer that comes late (here Redis is paused for 1.2 s; a saturated
// CPU reading the answer late looks the same to the feed) is a stall,
// not a loss: the feed says so when it is overdue and again when it
// arrives, and never resets, since the connection delivered everything
// in order. (It used to count one unanswered ping as a lost feed: under
// load every late read emptied the cache.) Changes announced during the
// stall are delivered after it.
func TestInvalidationsLateAnswer(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := uniquePrefix()
	r := follow(t, newStore(t, []string{srv.Addr()}, prefix), &recorder{})
	admin := srv.Client(t)
	if err := admin.Do(t.Context(), "CLIENT", "PAUSE", "1200", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	// A writer queued behind the pause: announced during the stall.
	writer := make(chan error, 1)
	go func() {
		writer <- newStore(t, []string{srv.Addr()}, prefix).DeleteSession(context.Background(), "during")
	}()
	got := r.take(t, "session:during")
	if err := <-writer; err != nil {
		t.Fatal(err)
	}
	want := []string{"stalled:true", "stalled:false", "session:during"}
	if !slices.Equal(got, want) && !slices.Equal(got, []string{"stalled:true", "session:during"}) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for _, e := range got {
		if strings.HasPrefix(e, "reset:") {
			t.Fatalf("a late answer reset the feed: %q", got)
		}
	}
}

func TestGetSessionTTL(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := newStore(t, []string{srv.Addr()}, uniquePrefix())
	now := time.Now()
	if err := s.PutSession(ctx, store.Session{IDHash: "h", User: "alice", Stage: store.StageFull, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	got, ttl, err := s.GetSessionTTL(ctx, "h")
	if err != nil || got.User != "alice" {
		t.Fatalf("GetSessionTTL = %+v, %v", got, err)
	}
	if ttl <= 85*time.Second || ttl > 90*time.Second {
		t.Fatalf("ttl %v, want just under 90s", ttl)
	}
	if _, _, err := s.GetSessionTTL(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

// A Redis ACL user without the channel cannot announce, so its writes
// fail (every instance must hear of them), saying what to grant.
func TestAnnounceNeedsChannelPermission(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	admin := srv.Client(t)
	prefix := uniquePrefix()
	if err := admin.Do(ctx, "ACL", "SETUSER", "gw", "on", ">secret", "~*", "+@all", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	limited := New(NewClient(ClientOptions{Addrs: []string{srv.Addr()}, Username: "gw", Password: "secret"}), Options{KeyPrefix: prefix})
	t.Cleanup(func() { _ = limited.Close() })
	err := limited.PutSession(ctx, store.Session{IDHash: "h", User: "alice", Stage: store.StageFull}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "&"+prefix+":invalidate") {
		t.Fatalf("PutSession without the channel: %v, want a NOPERM error naming the channel", err)
	}
	if err := admin.Do(ctx, "ACL", "SETUSER", "gw", "&"+prefix+":invalidate").Err(); err != nil {
		t.Fatal(err)
	}
	if err := limited.PutSession(ctx, store.Session{IDHash: "h", User: "alice", Stage: store.StageFull}, time.Minute); err != nil {
		t.Fatalf("PutSession with the channel granted: %v", err)
	}
}

// A reader that falls behind a busy channel (here each message takes
// 300 ms to apply while one arrives every 50 ms) is found although
// messages keep arriving: the feed pings on a fixed beat, the answer
// queues behind the backlog, the feed stalls and then counts as lost
// (cause "silent"). A silence-only ping would never have been sent.
func TestInvalidationsLaggingReader(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := uniquePrefix()
	r := &recorder{onSession: func(string) { time.Sleep(300 * time.Millisecond) }}
	r = follow(t, newStore(t, []string{srv.Addr()}, prefix), r)
	writer := newStore(t, []string{srv.Addr()}, prefix)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_ = writer.DeleteSession(context.Background(), fmt.Sprintf("s%d", i))
		}
	}()
	defer func() { close(stop); <-done }()
	start := time.Now()
	r.waitFor(t, "stalled:true", 10*time.Second)
	r.waitFor(t, "reset:false", 10*time.Second)
	t.Logf("stalled, then lost, %v after the backlog began", time.Since(start).Round(time.Millisecond))
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.causes, store.FeedSilent) {
		t.Fatalf("reset causes %q, want silent", r.causes)
	}
}

// waitFor waits until event has been recorded (anywhere since the last
// take), failing after d.
func (r *recorder) waitFor(t *testing.T, event string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !slices.Contains(r.snapshot(), event) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v: %q", event, d, r.snapshot())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
