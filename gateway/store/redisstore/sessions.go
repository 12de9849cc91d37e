package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/store"
)

func normSession(s store.Session) store.Session {
	s.PendingTOTPSecret = slices.Clone(s.PendingTOTPSecret)
	s.PasskeyChallenge = slices.Clone(s.PasskeyChallenge)
	s.TwoFactorAt = utc(s.TwoFactorAt)
	s.CreatedAt = utc(s.CreatedAt)
	s.LastSeenAt = utc(s.LastSeenAt)
	s.ExpiresAt = utc(s.ExpiresAt)
	return s
}

func decodeSession(data []byte) (store.Session, error) {
	var s store.Session
	err := decode(data, &s)
	return s, err
}

// PutSession creates or replaces a session that expires after ttl. The
// user's index entry is written first, so a session is never live
// without being listed; if the session moved to another user, the old
// user's entry is dropped.
func (s *Store) PutSession(ctx context.Context, sess store.Session, ttl time.Duration) error {
	if err := s.putSession(ctx, sess, ttl, false); err != nil {
		return fmt.Errorf("redisstore: put session: %w", err)
	}
	return nil
}

// ReplaceSession replaces a session that exists (SET ... XX): a session
// deleted or expired meanwhile stays gone and ErrNotFound is returned.
func (s *Store) ReplaceSession(ctx context.Context, sess store.Session, ttl time.Duration) error {
	if err := s.putSession(ctx, sess, ttl, true); err != nil {
		return fmt.Errorf("redisstore: replace session: %w", err)
	}
	return nil
}

// putSession writes sess; onlyIfExists makes it a replacement that
// never creates the key (ErrNotFound when there is none).
func (s *Store) putSession(ctx context.Context, sess store.Session, ttl time.Duration, onlyIfExists bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ttl <= 0 {
		return errBadTTL
	}
	if sess.IDHash == "" {
		return errors.New("empty id hash")
	}
	sess = normSession(sess)
	data, err := encode(sess)
	if err != nil {
		return err
	}
	ttlMS := ms(ttl)
	// The index entry first (also for a replacement: its score is the
	// session's end, which a touch moves), so a live session is always
	// listed; an entry whose session is gone is skipped and pruned.
	if err := indexAddScript.Run(ctx, s.rdb, []string{s.indexKey(sess.User)}, sess.IDHash, ttlMS).Err(); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	args := redis.SetArgs{TTL: time.Duration(ttlMS) * time.Millisecond, Get: true}
	if onlyIfExists {
		args.Mode = "XX"
	}
	var set *redis.StatusCmd
	var pub *redis.IntCmd
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		set = p.SetArgs(ctx, s.sessionKey(sess.IDHash), data, args)
		if s.keepsOrder() {
			pub = s.announce(ctx, p, msgSession, sess.IDHash)
		}
		return nil
	})
	old, err := set.Bytes()
	replaced := err == nil
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if pub != nil {
		err = s.announceErr(pub.Err())
	} else {
		err = s.announceNow(ctx, msgSession, sess.IDHash)
	}
	if err != nil {
		return err
	}
	if !replaced {
		if onlyIfExists {
			return store.ErrNotFound
		}
		return nil
	}
	if prev, err := decodeSession(old); err == nil && prev.User != sess.User {
		// Best effort: a leftover entry is skipped by readers anyway.
		_ = s.rdb.ZRem(ctx, s.indexKey(prev.User), sess.IDHash).Err()
	}
	return nil
}

// GetSession returns a live session; ErrNotFound if missing or expired.
func (s *Store) GetSession(ctx context.Context, idHash string) (store.Session, error) {
	if err := ctx.Err(); err != nil {
		return store.Session{}, err
	}
	data, err := s.rdb.Get(ctx, s.sessionKey(idHash)).Bytes()
	if errors.Is(err, redis.Nil) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("redisstore: get session: %w", err)
	}
	sess, err := decodeSession(data)
	if err != nil {
		return store.Session{}, fmt.Errorf("redisstore: get session: %w", err)
	}
	return sess, nil
}

// GetSessionTTL is GetSession that also says how long Redis will keep
// the session from about now (PTTL, in the same round trip); 0 when
// unknown. A cache in front of the store uses it to never serve a session
// past its TTL.
func (s *Store) GetSessionTTL(ctx context.Context, idHash string) (store.Session, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return store.Session{}, 0, err
	}
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, s.sessionKey(idHash))
		pttl = p.PTTL(ctx, s.sessionKey(idHash))
		return nil
	})
	data, err := get.Bytes()
	if errors.Is(err, redis.Nil) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Session{}, 0, fmt.Errorf("redisstore: get session: %w", err)
	}
	sess, err := decodeSession(data)
	if err != nil {
		return store.Session{}, 0, fmt.Errorf("redisstore: get session: %w", err)
	}
	// -1 (no expiry) and -2 (gone since the GET) are unknown; so is an
	// error of PTTL alone.
	ttl, err := pttl.Result()
	if err != nil || ttl < 0 {
		ttl = 0
	}
	return sess, ttl, nil
}

// DeleteSession removes a session and its index entry; a missing session
// is not an error.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	_, err := s.takeSession(ctx, idHash)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("redisstore: delete session: %w", err)
	}
	return nil
}

// TakeSession reads and deletes a session in one command (GETDEL): of
// concurrent takes of one session exactly one gets it, the others get
// ErrNotFound.
func (s *Store) TakeSession(ctx context.Context, idHash string) (store.Session, error) {
	sess, err := s.takeSession(ctx, idHash)
	if err != nil {
		return store.Session{}, fmt.Errorf("redisstore: take session: %w", err)
	}
	return sess, nil
}

// takeSession deletes the session, announces it and drops its index
// entry; it returns the deleted session, or ErrNotFound if there was none.
func (s *Store) takeSession(ctx context.Context, idHash string) (store.Session, error) {
	if err := ctx.Err(); err != nil {
		return store.Session{}, err
	}
	var del *redis.StringCmd
	var pub *redis.IntCmd
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		del = p.GetDel(ctx, s.sessionKey(idHash))
		if s.keepsOrder() {
			pub = s.announce(ctx, p, msgSession, idHash)
		}
		return nil
	})
	old, err := del.Bytes()
	deleted := err == nil
	if err != nil && !errors.Is(err, redis.Nil) {
		return store.Session{}, err
	}
	if pub != nil {
		err = s.announceErr(pub.Err())
	} else {
		err = s.announceNow(ctx, msgSession, idHash)
	}
	if err != nil {
		return store.Session{}, err
	}
	if !deleted {
		return store.Session{}, store.ErrNotFound
	}
	prev, err := decodeSession(old)
	if err != nil {
		// Deleted, but unreadable: nobody may act on it.
		return store.Session{}, err
	}
	if err := s.rdb.ZRem(ctx, s.indexKey(prev.User), idHash).Err(); err != nil {
		return store.Session{}, fmt.Errorf("unindex: %w", err)
	}
	return prev, nil
}

// indexedIDs prunes the user's index of expired entries and returns the
// remaining session id hashes.
func (s *Store) indexedIDs(ctx context.Context, user string) ([]string, error) {
	ids, err := indexListScript.Run(ctx, s.rdb, []string{s.indexKey(user)}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	return ids, nil
}

// ListUserSessions returns the user's live sessions, oldest first.
func (s *Store) ListUserSessions(ctx context.Context, user string) ([]store.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids, err := s.indexedIDs(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("redisstore: list sessions of %q: %w", user, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.sessionKey(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: list sessions of %q: %w", user, err)
	}
	var out []store.Session
	for _, cmd := range cmds {
		data, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // deleted or expired; the entry is pruned once past its score
		}
		if err != nil {
			return nil, fmt.Errorf("redisstore: list sessions of %q: %w", user, err)
		}
		sess, err := decodeSession(data)
		if err != nil {
			return nil, fmt.Errorf("redisstore: list sessions of %q: %w", user, err)
		}
		if sess.User != user {
			continue // stale entry: the session moved to another user
		}
		out = append(out, sess)
	}
	slices.SortFunc(out, func(a, b store.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.IDHash, b.IDHash))
	})
	return out, nil
}

// DeleteUserSessions removes all of the user's sessions and returns how
// many were live.
func (s *Store) DeleteUserSessions(ctx context.Context, user string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n, err := s.deleteUserSessions(ctx, user)
	if err != nil {
		return 0, fmt.Errorf("redisstore: delete sessions of %q: %w", user, err)
	}
	return n, nil
}

// deleteUserSessions deletes the user's indexed sessions and announces
// it (also when there were none: a cache elsewhere may still hold one).
func (s *Store) deleteUserSessions(ctx context.Context, user string) (int, error) {
	ids, err := s.indexedIDs(ctx, user)
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, s.announceNow(ctx, msgUserSessions, user)
	}
	cmds := make([]*redis.Cmd, len(ids))
	ordered := s.keepsOrder()
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = deleteIfOwnedScript.Eval(ctx, p, []string{s.sessionKey(id)}, user)
		}
		if ordered {
			s.announce(ctx, p, msgUserSessions, user)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete sessions: %w", s.announceErr(err))
	}
	if !ordered {
		if err := s.announceNow(ctx, msgUserSessions, user); err != nil {
			return 0, fmt.Errorf("delete sessions: %w", err)
		}
	}
	live := 0
	for _, cmd := range cmds {
		if n, err := cmd.Int(); err == nil && n == 1 {
			live++
		}
	}
	// Remove exactly the entries handled: a session put meanwhile keeps
	// its fresh entry.
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	if err := s.rdb.ZRem(ctx, s.indexKey(user), members...).Err(); err != nil {
		return live, fmt.Errorf("unindex sessions: %w", err)
	}
	return live, nil
}
