package cache

import (
	"context"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// Writes go to the backend between beginWrite and endWrite: what they
// change is dropped here before and after (also after an error: the
// write may have happened), and no read racing with the write caches
// what it got. Other instances learn of the write from the backend's
// feed.

// PutSession writes through and drops the cached session.
func (c *Cache) PutSession(ctx context.Context, s store.Session, ttl time.Duration) error {
	c.sessions.beginWrite(s.IDHash)
	defer c.sessions.endWrite(s.IDHash)
	return c.next.PutSession(ctx, s, ttl)
}

// ReplaceSession writes through and drops the cached session.
func (c *Cache) ReplaceSession(ctx context.Context, s store.Session, ttl time.Duration) error {
	c.sessions.beginWrite(s.IDHash)
	defer c.sessions.endWrite(s.IDHash)
	return c.next.ReplaceSession(ctx, s, ttl)
}

// TakeSession takes through the backend (never from memory: only the
// backend knows which of several takers wins) and drops the cached
// session.
func (c *Cache) TakeSession(ctx context.Context, idHash string) (store.Session, error) {
	c.sessions.beginWrite(idHash)
	defer c.sessions.endWrite(idHash)
	return c.next.TakeSession(ctx, idHash)
}

// DeleteSession deletes through and drops the cached session.
func (c *Cache) DeleteSession(ctx context.Context, idHash string) error {
	c.sessions.beginWrite(idHash)
	defer c.sessions.endWrite(idHash)
	return c.next.DeleteSession(ctx, idHash)
}

// DeleteUserSessions deletes through and drops the user's cached
// sessions.
func (c *Cache) DeleteUserSessions(ctx context.Context, user string) (int, error) {
	c.dropUserSessions(user, +1)
	defer c.dropUserSessions(user, -1)
	return c.next.DeleteUserSessions(ctx, user)
}

// ListUserSessions passes through.
func (c *Cache) ListUserSessions(ctx context.Context, user string) ([]store.Session, error) {
	return c.next.ListUserSessions(ctx, user)
}

// CreateUser writes through and drops the name (nothing is cached for a
// missing user, but a racing read must not insert an old record).
func (c *Cache) CreateUser(ctx context.Context, u store.User) error {
	c.users.beginWrite(u.Name)
	defer c.users.endWrite(u.Name)
	return c.next.CreateUser(ctx, u)
}

// UpdateUser writes through and drops the cached user.
func (c *Cache) UpdateUser(ctx context.Context, name string, fn func(*store.User) error) (store.User, error) {
	c.users.beginWrite(name)
	defer c.users.endWrite(name)
	return c.next.UpdateUser(ctx, name, fn)
}

// DeleteUser deletes through and drops the user and their sessions (the
// backend deletes those with the user).
func (c *Cache) DeleteUser(ctx context.Context, name string) error {
	c.users.beginWrite(name)
	defer c.users.endWrite(name)
	c.dropUserSessions(name, +1)
	defer c.dropUserSessions(name, -1)
	return c.next.DeleteUser(ctx, name)
}

// ListUsers passes through.
func (c *Cache) ListUsers(ctx context.Context, opts store.ListOptions) ([]store.User, error) {
	return c.next.ListUsers(ctx, opts)
}

// CountUsers passes through.
func (c *Cache) CountUsers(ctx context.Context) (int, error) { return c.next.CountUsers(ctx) }

// UseStep passes through.
func (c *Cache) UseStep(ctx context.Context, user string, step int64, ttl time.Duration) (bool, error) {
	return c.next.UseStep(ctx, user, step, ttl)
}

// Incr passes through.
func (c *Cache) Incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, error) {
	return c.next.Incr(ctx, key, delta, window)
}

// Counter passes through.
func (c *Cache) Counter(ctx context.Context, key string) (int64, error) {
	return c.next.Counter(ctx, key)
}

// ResetCounter passes through.
func (c *Cache) ResetCounter(ctx context.Context, key string) error {
	return c.next.ResetCounter(ctx, key)
}

// GetSetting passes through.
func (c *Cache) GetSetting(ctx context.Context, key string) (string, error) {
	return c.next.GetSetting(ctx, key)
}

// SetSetting passes through.
func (c *Cache) SetSetting(ctx context.Context, key, value string) error {
	return c.next.SetSetting(ctx, key, value)
}

// AppendAudit passes through.
func (c *Cache) AppendAudit(ctx context.Context, trail store.AuditTrail, ev store.AuditEvent, keep int) error {
	return c.next.AppendAudit(ctx, trail, ev, keep)
}

// ListAudit passes through.
func (c *Cache) ListAudit(ctx context.Context, trail store.AuditTrail, limit int) ([]store.AuditEvent, error) {
	return c.next.ListAudit(ctx, trail, limit)
}

// PutBan passes through.
func (c *Cache) PutBan(ctx context.Context, b store.Ban, ttl time.Duration) error {
	return c.next.PutBan(ctx, b, ttl)
}

// GetBan passes through.
func (c *Cache) GetBan(ctx context.Context, key string) (store.Ban, error) {
	return c.next.GetBan(ctx, key)
}

// DeleteBan passes through.
func (c *Cache) DeleteBan(ctx context.Context, key string) error {
	return c.next.DeleteBan(ctx, key)
}

// ListBans passes through.
func (c *Cache) ListBans(ctx context.Context, limit int) ([]store.Ban, error) {
	return c.next.ListBans(ctx, limit)
}

// Ping passes through.
func (c *Cache) Ping(ctx context.Context) error { return c.next.Ping(ctx) }
