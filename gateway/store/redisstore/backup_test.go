package redisstore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/store"
)

// seedBackupData stores what a gateway keeps: users (one with a sealed
// TOTP secret), a session, a used step, a failure counter, a ban, a
// setting, an audit event, a certificate and a certificate lock.
func seedBackupData(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, u := range []store.User{
		{Name: "alice", Role: store.RoleAdmin, TOTPSecret: []byte("sealed-secret"), AuthEpoch: 3, CreatedAt: now},
		{Name: "bob", Role: store.RoleUser, Groups: []string{"ops"}, CreatedAt: now},
	} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutSession(ctx, store.Session{IDHash: "s1", User: "alice", Stage: store.StageFull, ExpiresAt: now.Add(time.Hour)}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseStep(ctx, "alice", 42, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(ctx, "fail:u:alice", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBan(ctx, store.Ban{Key: "ip:192.0.2.1", Kind: store.BanKindIP, Subject: "192.0.2.1", Until: now.Add(time.Hour)}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSetting(ctx, "secretbox.check", "sealed-check"); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, store.AuditChanges, store.AuditEvent{Time: now, Action: "user_added", Target: "bob"}, 100); err != nil {
		t.Fatal(err)
	}
	cb := s.CertBlobs()
	if err := cb.Put(ctx, "certificates/acme/example.com/example.com.crt", []byte("PEM")); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Lock(ctx, "issue_cert_example.com"); err != nil {
		t.Fatal(err)
	}
}

// keysUnder lists the keys matching pattern on every master, sorted.
func keysUnder(t *testing.T, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 100).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(t.Context(), rdb)
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

func backupOf(t *testing.T, s *Store) (*bytes.Buffer, BackupInfo) {
	t.Helper()
	var buf bytes.Buffer
	info, err := s.Backup(t.Context(), &buf, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &buf, info
}

func readBackup(t *testing.T, data []byte) *BackupFile {
	t.Helper()
	f, err := ReadBackup(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestBackupRestoreRoundTrip: a backup holds users, settings, audit and
// certificates but no session, counter, ban or lock; a restore into a
// fresh prefix brings exactly those back, and touches no key outside
// its prefix — not even one under a prefix that merely starts with it.
func TestBackupRestoreRoundTrip(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	rdb := srv.Client(t)
	src := newStore(t, []string{srv.Addr()}, "src")
	seedBackupData(t, src)

	buf, info := backupOf(t, src)
	if info.Users != 2 || info.Skipped == 0 {
		t.Fatalf("backup info %+v: want 2 users and skipped keys", info)
	}
	text := buf.String()
	if !strings.HasPrefix(text, `{"format":"authgate-redis-backup","version":1,"prefix":"src"`) {
		t.Fatalf("backup header: %.200s", text)
	}
	for _, leftOut := range []string{`":s:s1"`, `":c:fail:u:alice"`, `{bans}`, `lock:`, `}:sessions"`} {
		if strings.Contains(text, leftOut) {
			t.Errorf("backup holds %s:\n%s", leftOut, text)
		}
	}

	// Neighbours: another prefix that starts with "dst", a key without
	// prefix, and one that looks like a prefix key without the colon.
	for _, k := range []string{"dst2:{u:alice}:user", "unrelated", "dstx"} {
		if err := rdb.Set(ctx, k, "keep", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	dst := newStore(t, []string{srv.Addr()}, "dst")
	f := readBackup(t, buf.Bytes())
	got, err := dst.Restore(ctx, f, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Users != 2 {
		t.Fatalf("restore info %+v", got)
	}
	u, err := dst.GetUser(ctx, "alice")
	if err != nil || string(u.TOTPSecret) != "sealed-secret" || u.AuthEpoch != 3 || u.Role != store.RoleAdmin {
		t.Fatalf("restored alice: %+v, %v", u, err)
	}
	users, err := dst.ListUsers(ctx, store.ListOptions{})
	if err != nil || len(users) != 2 {
		t.Fatalf("restored users: %v, %v", users, err)
	}
	if v, err := dst.GetSetting(ctx, "secretbox.check"); err != nil || v != "sealed-check" {
		t.Fatalf("restored setting: %q, %v", v, err)
	}
	if _, err := dst.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session came back: %v", err)
	}
	if n, err := dst.Counter(ctx, "fail:u:alice"); err != nil || n != 0 {
		t.Fatalf("a failure counter came back: %d, %v", n, err)
	}
	if bans, err := dst.ListBans(ctx, 10); err != nil || len(bans) != 0 {
		t.Fatalf("bans came back: %v, %v", bans, err)
	}
	if v, err := dst.CertBlobs().Get(ctx, "certificates/acme/example.com/example.com.crt"); err != nil || string(v) != "PEM" {
		t.Fatalf("restored certificate: %q, %v", v, err)
	}
	evs, err := dst.ListAudit(ctx, store.AuditChanges, 10)
	if err != nil || len(evs) != 1 || evs[0].Target != "bob" {
		t.Fatalf("restored audit: %v, %v", evs, err)
	}
	if first, err := dst.UseStep(ctx, "alice", 42, time.Hour); err != nil || first {
		t.Fatalf("the used step was not restored (replay): first=%v, %v", first, err)
	}
	for _, k := range []string{"dst2:{u:alice}:user", "unrelated", "dstx"} {
		if v, err := rdb.Get(ctx, k).Result(); err != nil || v != "keep" {
			t.Errorf("key %s outside the prefix: %q, %v", k, v, err)
		}
	}
	// The source is as it was.
	if _, err := src.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("source session: %v", err)
	}
}

// TestRestoreRefusesPrefixWithUsers: a prefix holding users is left alone
// without Force; with Force every key under it is replaced (a user the
// backup does not have is gone, a changed one is as in the backup) and
// nothing outside it changes.
func TestRestoreRefusesPrefixWithUsers(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	rdb := srv.Client(t)
	s := newStore(t, []string{srv.Addr()}, "p")
	seedBackupData(t, s)
	buf, _ := backupOf(t, s)
	f := readBackup(t, buf.Bytes())

	if err := s.CreateUser(ctx, store.User{Name: "carol", Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, "bob", func(u *store.User) error { u.Role = store.RoleAdmin; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, "p2:keep", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Restore(ctx, f, RestoreOptions{}); !errors.Is(err, ErrHasUsers) || !strings.Contains(err.Error(), "3 user(s)") {
		t.Fatalf("restore over users without Force: %v", err)
	}
	if _, err := s.GetUser(ctx, "carol"); err != nil {
		t.Fatalf("a refused restore changed the data: %v", err)
	}

	got, err := s.Restore(ctx, f, RestoreOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Deleted == 0 {
		t.Errorf("restore info %+v: nothing deleted", got)
	}
	if _, err := s.GetUser(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("carol survived a forced restore: %v", err)
	}
	if u, err := s.GetUser(ctx, "bob"); err != nil || u.Role != store.RoleUser {
		t.Fatalf("bob after the restore: %+v, %v", u, err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 2 {
		t.Fatalf("users after the restore: %d, %v", n, err)
	}
	if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session survived a forced restore: %v", err)
	}
	if v, _ := rdb.Get(ctx, "p2:keep").Result(); v != "x" {
		t.Fatal("a forced restore touched a key outside its prefix")
	}
	if left := keysUnder(t, rdb, "p:restore-check:*"); len(left) != 0 {
		t.Fatalf("scratch keys left: %v", left)
	}
}

// TestRestoreCheckRefusal: a Check that rejects the backup's settings
// (another secret key) changes nothing.
func TestRestoreCheckRefusal(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	s := newStore(t, []string{srv.Addr()}, "p")
	seedBackupData(t, s)
	buf, _ := backupOf(t, s)
	f := readBackup(t, buf.Bytes())
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	errWrongKey := errors.New("wrong key")
	var seen map[string]string
	_, err := s.Restore(ctx, f, RestoreOptions{Force: true, Check: func(m map[string]string) error { seen = m; return errWrongKey }})
	if !errors.Is(err, errWrongKey) {
		t.Fatalf("restore with a failing check: %v", err)
	}
	if seen["secretbox.check"] != "sealed-check" {
		t.Fatalf("check saw settings %v", seen)
	}
	if _, err := s.GetUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused restore brought bob back: %v", err)
	}
	if left := keysUnder(t, srv.Client(t), "p:restore-check:*"); len(left) != 0 {
		t.Fatalf("scratch keys left: %v", left)
	}
}

// TestReadBackupRejects: what is not a whole backup is refused, saying why.
func TestReadBackupRejects(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, []string{srv.Addr()}, "p")
	seedBackupData(t, s)
	buf, _ := backupOf(t, s)
	good := buf.String()
	lines := strings.SplitAfter(strings.TrimSuffix(good, "\n"), "\n")
	tests := []struct{ name, data, want string }{
		{"empty", "", "no \"authgate-redis-backup\" header"},
		{"bbolt file", "\x00\x00\x00\x00\xed\xda\x0c\xed", "no \"authgate-redis-backup\" header"},
		{"other json", `{"format":"something"}` + "\n", "no \"authgate-redis-backup\" header"},
		{"newer version", strings.Replace(good, `"version":1`, `"version":9`, 1), "format version 9"},
		{"cut off", strings.Join(lines[:len(lines)-1], ""), "cut off after"},
		{"cut mid-line", good[:len(good)-len(lines[len(lines)-1])-10], "cut off after"},
		{"bad record", strings.Join(lines[:2], "") + `{"key":"no-colon","dump":"eA=="}` + "\n", "record 2 is malformed"},
		{"wrong count", strings.Join(lines[:len(lines)-1], "") + `{"end":true,"keys":1}` + "\n", "the end line counts 1 key(s)"},
		{"trailing data", good + good, "data after the end line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadBackup(strings.NewReader(tt.data))
			if !errors.Is(err, ErrNotBackup) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want ErrNotBackup saying %q, got %v", tt.want, err)
			}
		})
	}
}

// TestAnnounceFlush: "flush:all" reaches a follower as a reset that keeps
// serving (FeedReset(true)): the cache drops everything.
func TestAnnounceFlush(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, []string{srv.Addr()}, uniquePrefix())
	rec := &recorder{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Invalidations(ctx, rec) }()
	defer func() { cancel(); <-done }()
	rec.take(t, "reset:true")
	if err := s.AnnounceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(t, "reset:true"); !slices.Equal(got, []string{"reset:true"}) {
		t.Fatalf("after a flush: %v", got)
	}
}

// TestBackupRestoreCluster: on a Cluster the backup scans every master
// and the restore writes every slot.
func TestBackupRestoreCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start-up takes seconds")
	}
	cluster := redistest.StartCluster(t)
	ctx := t.Context()
	src := newStore(t, cluster.Addrs(), "src")
	seedBackupData(t, src)
	for i := range 30 {
		if err := src.CreateUser(ctx, store.User{Name: "user" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Role: store.RoleUser}); err != nil {
			t.Fatal(err)
		}
	}
	buf, info := backupOf(t, src)
	if info.Users != 32 {
		t.Fatalf("cluster backup: %+v", info)
	}
	dst := newStore(t, cluster.Addrs(), "dst")
	got, err := dst.Restore(ctx, readBackup(t, buf.Bytes()), RestoreOptions{})
	if err != nil || got.Users != 32 {
		t.Fatalf("cluster restore: %+v, %v", got, err)
	}
	if n, err := dst.CountUsers(ctx); err != nil || n != 32 {
		t.Fatalf("users after the cluster restore: %d, %v", n, err)
	}
	if u, err := dst.GetUser(ctx, "alice"); err != nil || string(u.TOTPSecret) != "sealed-secret" {
		t.Fatalf("alice after the cluster restore: %+v, %v", u, err)
	}
	rdb := cluster.Client(t)
	if n := len(keysUnder(t, rdb, "src:*")); n == 0 {
		t.Fatal("the source prefix is empty")
	}
}
