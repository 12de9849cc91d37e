package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// Store wraps st so every operation's latency and failures are counted
// (authgate_store_operation_duration_seconds, authgate_store_errors_total),
// and every step UseStep refuses (the step was used: a replayed code) is
// counted as authgate_totp_replays_refused_total. It returns st itself on
// a nil *Metrics. The wrapper changes no result: it passes the store
// conformance suite.
func (m *Metrics) Store(st store.Store) store.Store {
	if m == nil {
		return st
	}
	return &instrumentedStore{next: st, m: m}
}

// DriftObserver wraps next (a factor.Observer, may be nil) so each drift
// observation is also counted. On a nil *Metrics it returns next.
func (m *Metrics) DriftObserver(next DriftObserver) DriftObserver {
	if m == nil {
		return next
	}
	return driftCounter{m: m, next: next}
}

// DriftObserver receives drift evidence (factor.Observer).
type DriftObserver interface {
	Observe(user string, steps int, at time.Time)
}

type driftCounter struct {
	m    *Metrics
	next DriftObserver
}

func (d driftCounter) Observe(user string, steps int, at time.Time) {
	d.m.DriftEvidence()
	if d.next != nil {
		d.next.Observe(user, steps, at)
	}
}

type instrumentedStore struct {
	next store.Store
	m    *Metrics
}

var _ store.Store = (*instrumentedStore)(nil)

// observe records one operation that started at start and ended with
// err. Answers of the contract (not found, already exists, a bad ban key)
// and callers' own errors (callerErr, from an UpdateUser fn) are not failures, nor is
// a caller that went away.
func (s *instrumentedStore) observe(op string, start time.Time, err, callerErr error) {
	s.m.storeDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrBadBan) ||
		errors.Is(err, context.Canceled) || (callerErr != nil && errors.Is(err, callerErr)) {
		return
	}
	s.m.storeErrors.WithLabelValues(op).Inc()
}

func (s *instrumentedStore) CreateUser(ctx context.Context, u store.User) error {
	start := time.Now()
	err := s.next.CreateUser(ctx, u)
	s.observe("create_user", start, err, nil)
	return err
}

func (s *instrumentedStore) GetUser(ctx context.Context, name string) (store.User, error) {
	start := time.Now()
	u, err := s.next.GetUser(ctx, name)
	s.observe("get_user", start, err, nil)
	return u, err
}

func (s *instrumentedStore) UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error) {
	var callerErr error
	wrapped := func(u *store.User) error {
		err := fn(u)
		callerErr = err // fn may run more than once: the last run decides
		return err
	}
	start := time.Now()
	u, err := s.next.UpdateUser(ctx, name, wrapped)
	s.observe("update_user", start, err, callerErr)
	return u, err
}

func (s *instrumentedStore) DeleteUser(ctx context.Context, name string) error {
	start := time.Now()
	err := s.next.DeleteUser(ctx, name)
	s.observe("delete_user", start, err, nil)
	return err
}

func (s *instrumentedStore) ListUsers(ctx context.Context, opts store.ListOptions) ([]store.User, error) {
	start := time.Now()
	us, err := s.next.ListUsers(ctx, opts)
	s.observe("list_users", start, err, nil)
	return us, err
}

func (s *instrumentedStore) CountUsers(ctx context.Context) (int, error) {
	start := time.Now()
	n, err := s.next.CountUsers(ctx)
	s.observe("count_users", start, err, nil)
	return n, err
}

func (s *instrumentedStore) PutSession(ctx context.Context, ss store.Session, ttl time.Duration) error {
	start := time.Now()
	err := s.next.PutSession(ctx, ss, ttl)
	s.observe("put_session", start, err, nil)
	return err
}

func (s *instrumentedStore) GetSession(ctx context.Context, idHash string) (store.Session, error) {
	start := time.Now()
	ss, err := s.next.GetSession(ctx, idHash)
	s.observe("get_session", start, err, nil)
	return ss, err
}

// GetSessionTTL times the backend's GetSessionTTL (as get_session), so a
// cache in front of this wrapper still learns each session's TTL. A
// backend without it reads the session with its TTL unknown (0).
func (s *instrumentedStore) GetSessionTTL(ctx context.Context, idHash string) (store.Session, time.Duration, error) {
	r, ok := s.next.(interface {
		GetSessionTTL(ctx context.Context, idHash string) (store.Session, time.Duration, error)
	})
	if !ok {
		ss, err := s.GetSession(ctx, idHash)
		return ss, 0, err
	}
	start := time.Now()
	ss, ttl, err := r.GetSessionTTL(ctx, idHash)
	s.observe("get_session", start, err, nil)
	return ss, ttl, err
}

func (s *instrumentedStore) ReplaceSession(ctx context.Context, ss store.Session, ttl time.Duration) error {
	start := time.Now()
	err := s.next.ReplaceSession(ctx, ss, ttl)
	s.observe("replace_session", start, err, nil)
	return err
}

func (s *instrumentedStore) TakeSession(ctx context.Context, idHash string) (store.Session, error) {
	start := time.Now()
	ss, err := s.next.TakeSession(ctx, idHash)
	s.observe("take_session", start, err, nil)
	return ss, err
}

func (s *instrumentedStore) DeleteSession(ctx context.Context, idHash string) error {
	start := time.Now()
	err := s.next.DeleteSession(ctx, idHash)
	s.observe("delete_session", start, err, nil)
	return err
}

func (s *instrumentedStore) ListUserSessions(ctx context.Context, user string) ([]store.Session, error) {
	start := time.Now()
	ss, err := s.next.ListUserSessions(ctx, user)
	s.observe("list_user_sessions", start, err, nil)
	return ss, err
}

func (s *instrumentedStore) DeleteUserSessions(ctx context.Context, user string) (int, error) {
	start := time.Now()
	n, err := s.next.DeleteUserSessions(ctx, user)
	s.observe("delete_user_sessions", start, err, nil)
	return n, err
}

func (s *instrumentedStore) UseStep(ctx context.Context, user string, step int64, ttl time.Duration) (bool, error) {
	start := time.Now()
	fresh, err := s.next.UseStep(ctx, user, step, ttl)
	s.observe("use_step", start, err, nil)
	if err == nil && !fresh {
		s.m.ReplayRefused()
	}
	return fresh, err
}

func (s *instrumentedStore) Incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, error) {
	start := time.Now()
	n, err := s.next.Incr(ctx, key, delta, window)
	s.observe("incr", start, err, nil)
	return n, err
}

func (s *instrumentedStore) Counter(ctx context.Context, key string) (int64, error) {
	start := time.Now()
	n, err := s.next.Counter(ctx, key)
	s.observe("counter", start, err, nil)
	return n, err
}

func (s *instrumentedStore) ResetCounter(ctx context.Context, key string) error {
	start := time.Now()
	err := s.next.ResetCounter(ctx, key)
	s.observe("reset_counter", start, err, nil)
	return err
}

func (s *instrumentedStore) GetSetting(ctx context.Context, key string) (string, error) {
	start := time.Now()
	v, err := s.next.GetSetting(ctx, key)
	s.observe("get_setting", start, err, nil)
	return v, err
}

func (s *instrumentedStore) SetSetting(ctx context.Context, key, value string) error {
	start := time.Now()
	err := s.next.SetSetting(ctx, key, value)
	s.observe("set_setting", start, err, nil)
	return err
}

func (s *instrumentedStore) AppendAudit(ctx context.Context, trail store.AuditTrail, ev store.AuditEvent, keep int) error {
	start := time.Now()
	err := s.next.AppendAudit(ctx, trail, ev, keep)
	s.observe("append_audit", start, err, nil)
	return err
}

func (s *instrumentedStore) ListAudit(ctx context.Context, trail store.AuditTrail, limit int) ([]store.AuditEvent, error) {
	start := time.Now()
	evs, err := s.next.ListAudit(ctx, trail, limit)
	s.observe("list_audit", start, err, nil)
	return evs, err
}

func (s *instrumentedStore) PutBan(ctx context.Context, b store.Ban, ttl time.Duration) error {
	start := time.Now()
	err := s.next.PutBan(ctx, b, ttl)
	s.observe("put_ban", start, err, nil)
	return err
}

func (s *instrumentedStore) GetBan(ctx context.Context, key string) (store.Ban, error) {
	start := time.Now()
	b, err := s.next.GetBan(ctx, key)
	s.observe("get_ban", start, err, nil)
	return b, err
}

func (s *instrumentedStore) DeleteBan(ctx context.Context, key string) error {
	start := time.Now()
	err := s.next.DeleteBan(ctx, key)
	s.observe("delete_ban", start, err, nil)
	return err
}

func (s *instrumentedStore) ListBans(ctx context.Context, limit int) ([]store.Ban, error) {
	start := time.Now()
	bs, err := s.next.ListBans(ctx, limit)
	s.observe("list_bans", start, err, nil)
	return bs, err
}

func (s *instrumentedStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.next.Ping(ctx)
	s.observe("ping", start, err, nil)
	return err
}

// Close closes the wrapped store (not timed).
func (s *instrumentedStore) Close() error { return s.next.Close() }
