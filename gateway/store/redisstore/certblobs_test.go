package redisstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/store"
)

// fastLocks keeps lock tests short: refreshes every 300 ms.
var fastLocks = CertBlobsOptions{LockTTL: 900 * time.Millisecond, PollMin: 10 * time.Millisecond, PollMax: 50 * time.Millisecond}

func TestCertBlobs(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	runCertBlobs(t, blobsEnv{[]string{srv.Addr()}})
}

// The same on a three-node Cluster catches keys of one operation landing
// in different slots (CROSSSLOT).
func TestCertBlobsCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start-up takes seconds")
	}
	cluster := redistest.StartCluster(t)
	runCertBlobs(t, blobsEnv{cluster.Addrs()})
}

func runCertBlobs(t *testing.T, env blobsEnv) {
	t.Run("files", func(t *testing.T) { testBlobFiles(t, env) })
	t.Run("directories", func(t *testing.T) { testBlobDirectories(t, env) })
	t.Run("bad keys", func(t *testing.T) { testBlobBadKeys(t, env) })
	t.Run("keys under the prefix", func(t *testing.T) { testBlobKeyLayout(t, env) })
	t.Run("lock contention", func(t *testing.T) { testLockContention(t, env) })
	t.Run("lock wait cancelled", func(t *testing.T) { testLockCancel(t, env) })
	t.Run("lock outlives its TTL while held", func(t *testing.T) { testLockRefreshed(t, env) })
	t.Run("unlock by a former holder", func(t *testing.T) { testUnlockNotOwner(t, env) })
}

// blobsEnv opens CertBlobs on one Redis deployment.
type blobsEnv struct{ addrs []string }

// open returns prefix's namespace over a client of its own, as one
// gateway instance would have.
func (e blobsEnv) open(t *testing.T, prefix string) (*Store, *CertBlobs) {
	s := newStore(t, e.addrs, prefix)
	return s, s.CertBlobsWith(fastLocks)
}

// fresh opens an empty namespace.
func (e blobsEnv) fresh(t *testing.T) (*Store, *CertBlobs) { return e.open(t, uniquePrefix()) }

func testBlobFiles(t *testing.T, env blobsEnv) {
	ctx := t.Context()
	_, b := env.fresh(t)
	if _, err := b.Get(ctx, "certificates/a.crt"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
	if _, _, _, err := b.Stat(ctx, "certificates/a.crt"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Stat of a missing key: %v, want ErrNotFound", err)
	}
	if ok, err := b.Exists(ctx, "certificates/a.crt"); ok || err != nil {
		t.Fatalf("Exists of a missing key = %v, %v", ok, err)
	}

	value := []byte("\x00binary\xff\r\n{certmagic}")
	before := time.Now()
	if err := b.Put(ctx, "certificates/a.crt", value); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	got, err := b.Get(ctx, "certificates/a.crt")
	if err != nil || string(got) != string(value) {
		t.Fatalf("Get = %q, %v; want %q", got, err, value)
	}
	mod, size, isFile, err := b.Stat(ctx, "certificates/a.crt")
	if err != nil || !isFile || size != int64(len(value)) {
		t.Fatalf("Stat = %v, %d, %v, %v; want a file of %d bytes", mod, size, isFile, err, len(value))
	}
	// Redis's clock is this machine's; allow for ms truncation.
	if mod.Before(before.Add(-time.Millisecond)) || mod.After(after.Add(time.Millisecond)) {
		t.Errorf("modified %v not within [%v, %v]", mod, before, after)
	}
	if ok, err := b.Exists(ctx, "certificates/a.crt"); !ok || err != nil {
		t.Fatalf("Exists = %v, %v; want true", ok, err)
	}

	// Overwrite replaces the value and moves the time forward.
	time.Sleep(5 * time.Millisecond)
	if err := b.Put(ctx, "certificates/a.crt", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	got, err = b.Get(ctx, "certificates/a.crt")
	if err != nil || string(got) != "v2" {
		t.Fatalf("Get after overwrite = %q, %v", got, err)
	}
	mod2, size, _, err := b.Stat(ctx, "certificates/a.crt")
	if err != nil || size != 2 || !mod2.After(mod) {
		t.Fatalf("Stat after overwrite = %v, %d, %v; want size 2, later than %v", mod2, size, err, mod)
	}

	// An empty value is still a stored key.
	if err := b.Put(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("Get(empty) = %q, %v", got, err)
	}
	if _, size, isFile, err := b.Stat(ctx, "empty"); err != nil || size != 0 || !isFile {
		t.Fatalf("Stat(empty) = %d, %v, %v", size, isFile, err)
	}

	if err := b.Delete(ctx, "certificates/a.crt"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "certificates/a.crt"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if ok, err := b.Exists(ctx, "certificates"); ok || err != nil {
		t.Fatalf("Exists(dir of only the deleted key) = %v, %v; want false", ok, err)
	}
	// Deleting what is not there is fine.
	if err := b.Delete(ctx, "certificates/a.crt"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
}

func testBlobDirectories(t *testing.T, env blobsEnv) {
	ctx := t.Context()
	_, b := env.fresh(t)
	files := []string{
		"acme/ca/users/ops/ops.json",
		"acme/ca/users/ops/ops.key",
		"acme/ca/users/old/old.key",
		"certificates/ca/a.example.com/a.example.com.crt",
		"certificates/ca/a.example.com/a.example.com.key",
		"certificates/ca/b.example.com/b.example.com.crt",
		"certificates/ca-b/x/x.crt", // "ca" is not a prefix of "ca-b"
		"certificates/ca!/y.crt",    // '!' sorts before '/'
		"certificates/readme",
	}
	for i, f := range files {
		if i == 2 {
			time.Sleep(5 * time.Millisecond) // old.key is the newest
		}
		if err := b.Put(ctx, f, []byte(f)); err != nil {
			t.Fatal(err)
		}
	}

	lists := []struct {
		prefix    string
		recursive bool
		want      []string
	}{
		{"certificates", false, []string{"certificates/ca", "certificates/ca!", "certificates/ca-b", "certificates/readme"}},
		{"certificates/ca", false, []string{"certificates/ca/a.example.com", "certificates/ca/b.example.com"}},
		{"certificates/ca/a.example.com", false, []string{"certificates/ca/a.example.com/a.example.com.crt", "certificates/ca/a.example.com/a.example.com.key"}},
		{"certificates/ca", true, []string{
			"certificates/ca/a.example.com",
			"certificates/ca/a.example.com/a.example.com.crt",
			"certificates/ca/a.example.com/a.example.com.key",
			"certificates/ca/b.example.com",
			"certificates/ca/b.example.com/b.example.com.crt",
		}},
		{"", false, []string{"acme", "certificates"}},
		{"acme", true, []string{
			"acme/ca", "acme/ca/users",
			"acme/ca/users/old", "acme/ca/users/old/old.key",
			"acme/ca/users/ops", "acme/ca/users/ops/ops.json", "acme/ca/users/ops/ops.key",
		}},
	}
	for _, l := range lists {
		got, err := b.List(ctx, l.prefix, l.recursive)
		if err != nil || !slices.Equal(got, l.want) {
			t.Errorf("List(%q, %v) =\n%q, %v\nwant\n%q", l.prefix, l.recursive, got, err, l.want)
		}
	}
	for _, missing := range []string{"nothing", "certificates/c", "certificates/readme"} {
		if _, err := b.List(ctx, missing, false); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("List(%q): %v, want ErrNotFound", missing, err)
		}
	}

	for key, want := range map[string]bool{
		"acme": true, "acme/ca/users": true, "certificates/ca": true, "certificates/readme": true,
		"acm": false, "certificates/c": false, "certificates/ca/a": false, "acme/ca/users/ops/ops": false,
	} {
		if ok, err := b.Exists(ctx, key); ok != want || err != nil {
			t.Errorf("Exists(%q) = %v, %v; want %v", key, ok, err, want)
		}
	}

	// A directory's time is its newest write below.
	oldMod, _, _, err := b.Stat(ctx, "acme/ca/users/old/old.key")
	if err != nil {
		t.Fatal(err)
	}
	mod, size, isFile, err := b.Stat(ctx, "acme/ca/users")
	if err != nil || isFile || size != 0 || !mod.Equal(oldMod) {
		t.Errorf("Stat(dir) = %v, %d, %v, %v; want a directory modified %v", mod, size, isFile, err, oldMod)
	}
	if _, _, _, err := b.Stat(ctx, "acme/c"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat of a partial component: %v, want ErrNotFound", err)
	}

	// Deleting a directory removes everything below it, and nothing that
	// merely shares its leading characters.
	if err := b.Delete(ctx, "certificates/ca"); err != nil {
		t.Fatal(err)
	}
	got, err := b.List(ctx, "certificates", true)
	want := []string{"certificates/ca!", "certificates/ca!/y.crt", "certificates/ca-b", "certificates/ca-b/x", "certificates/ca-b/x/x.crt", "certificates/readme"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("after Delete(dir): List = %q, %v; want %q", got, err, want)
	}
	if _, err := b.Get(ctx, "certificates/ca/a.example.com/a.example.com.key"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get below a deleted directory: %v, want ErrNotFound", err)
	}
	if ok, _ := b.Exists(ctx, "certificates/ca"); ok {
		t.Error("deleted directory still exists")
	}
}

func testBlobBadKeys(t *testing.T, env blobsEnv) {
	ctx := t.Context()
	_, b := env.fresh(t)
	for _, key := range []string{"", "/a", "a/", "/"} {
		if err := b.Put(ctx, key, []byte("x")); !errors.Is(err, ErrBadBlobKey) {
			t.Errorf("Put(%q): %v, want ErrBadBlobKey", key, err)
		}
		if err := b.Delete(ctx, key); !errors.Is(err, ErrBadBlobKey) {
			t.Errorf("Delete(%q): %v, want ErrBadBlobKey", key, err)
		}
		if _, err := b.Get(ctx, key); !errors.Is(err, ErrBadBlobKey) {
			t.Errorf("Get(%q): %v, want ErrBadBlobKey", key, err)
		}
	}
	if _, err := b.List(ctx, "a/", false); !errors.Is(err, ErrBadBlobKey) {
		t.Errorf("List(a/): %v, want ErrBadBlobKey", err)
	}
}

func testBlobKeyLayout(t *testing.T, env blobsEnv) {
	ctx := t.Context()
	s, b := env.fresh(t)
	_, other := env.fresh(t)
	if err := b.Put(ctx, "certificates/x/layout-marker.crt", []byte("x")); err != nil {
		t.Fatal(err)
	}
	unlock, err := b.Lock(ctx, "layout_marker")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock(ctx)
	keys := allKeys(t, s)
	var mine []string
	for _, k := range keys {
		if strings.HasPrefix(k, s.prefix+":") {
			mine = append(mine, k)
			if !strings.HasPrefix(k, s.prefix+":{certmagic}:") {
				t.Errorf("key %q is outside the certmagic namespace", k)
			}
		} else if strings.Contains(k, "layout") {
			t.Errorf("key %q is outside the store's prefix", k)
		}
	}
	// the value, the index, the times, the lock
	if len(mine) != 4 {
		t.Errorf("keys under the prefix: %q; want 4", mine)
	}
	// Another prefix sees neither the data nor the lock.
	if ok, err := other.Exists(ctx, "certificates"); ok || err != nil {
		t.Errorf("data visible under another prefix: %v, %v", ok, err)
	}
	if u, ok, err := other.TryLock(ctx, "layout_marker"); !ok || err != nil {
		t.Errorf("lock held under another prefix: %v, %v", ok, err)
	} else {
		_ = u(ctx)
	}
}

// allKeys returns every key of the deployment (every master of a
// Cluster).
func allKeys(t *testing.T, s *Store) []string {
	t.Helper()
	ctx := t.Context()
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		keys, err := s.rdb.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	var mu sync.Mutex
	var keys []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		k, err := n.Keys(ctx, "*").Result()
		mu.Lock()
		keys = append(keys, k...)
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func testLockContention(t *testing.T, env blobsEnv) {
	ctx := t.Context()
	sa, a := env.fresh(t)
	_, b := env.open(t, sa.prefix) // another instance

	unlockA, err := a.Lock(ctx, "issue_cert_x")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.TryLock(ctx, "issue_cert_x"); ok || err != nil {
		t.Fatalf("TryLock of a held lock = %v, %v; want false", ok, err)
	}
	// Other names are independent.
	unlockY, ok, err := b.TryLock(ctx, "issue_cert_y")
	if !ok || err != nil {
		t.Fatalf("TryLock of another name = %v, %v", ok, err)
	}
	if err := unlockY(ctx); err != nil {
		t.Fatal(err)
	}

	acquired := make(chan func(context.Context) error, 1)
	go func() {
		u, err := b.Lock(ctx, "issue_cert_x")
		if err != nil {
			t.Error(err)
		}
		acquired <- u
	}()
	select {
	case <-acquired:
		t.Fatal("second Lock returned while the first holder held the lock")
	case <-time.After(300 * time.Millisecond):
	}
	released := time.Now()
	if err := unlockA(ctx); err != nil {
		t.Fatal(err)
	}
	var unlockB func(context.Context) error
	select {
	case unlockB = <-acquired:
		if wait := time.Since(released); wait > time.Second {
			t.Errorf("second Lock took %v after Unlock", wait)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second Lock did not return after Unlock")
	}
	if unlockB == nil {
		t.FailNow()
	}
	if _, ok, _ := a.TryLock(ctx, "issue_cert_x"); ok {
		t.Fatal("lock free while the second holder has it")
	}
	if err := unlockB(ctx); err != nil {
		t.Fatal(err)
	}
	// A second call of an unlock function changes nothing.
	if err := unlockB(ctx); err != nil {
		t.Errorf("second unlock: %v", err)
	}
	u, ok, err := a.TryLock(ctx, "issue_cert_x")
	if !ok || err != nil {
		t.Fatalf("TryLock after both released = %v, %v", ok, err)
	}
	_ = u(ctx)
}

func testLockCancel(t *testing.T, env blobsEnv) {
	_, b := env.fresh(t)
	unlock, err := b.Lock(t.Context(), "n")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock(t.Context())
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if _, err := b.Lock(ctx, "n"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock with a cancelled wait: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("Lock returned after %v, want soon after the cancel at 100ms", d)
	}
	dctx, dcancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer dcancel()
	if _, err := b.Lock(dctx, "n"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock past its deadline: %v, want context.DeadlineExceeded", err)
	}
}

// A live holder keeps its lock past the TTL: the refresh extends it.
func testLockRefreshed(t *testing.T, env blobsEnv) {
	ctx := t.Context()
	s, b := env.fresh(t)
	unlock, err := b.Lock(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * b.ttl)
	for time.Now().Before(deadline) {
		if _, ok, err := b.TryLock(ctx, "n"); ok || err != nil {
			t.Fatalf("lock taken over %v, %v while its holder lives", ok, err)
		}
		time.Sleep(b.ttl / 10)
	}
	if pttl, err := s.rdb.PTTL(ctx, b.lockKey("n")).Result(); err != nil || pttl <= 0 || pttl > b.ttl {
		t.Errorf("lock PTTL = %v, %v; want (0, %v]", pttl, err, b.ttl)
	}
	if err := unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.rdb.Exists(ctx, b.lockKey("n")).Result(); err != nil || n != 0 {
		t.Errorf("lock key after unlock: exists=%d, %v", n, err)
	}
}

// A holder whose lock expired (as after a long Redis outage) and was
// taken by another must not release the new holder's lock.
func testUnlockNotOwner(t *testing.T, env blobsEnv) {
	ctx := t.Context()
	s, b := env.fresh(t)
	unlockOld, err := b.Lock(ctx, "n")
	if err != nil {
		t.Fatal(err)
	}
	// Expire it now, as Redis would after the TTL without refreshes.
	if err := s.rdb.Del(ctx, b.lockKey("n")).Err(); err != nil {
		t.Fatal(err)
	}
	unlockNew, ok, err := b.TryLock(ctx, "n")
	if !ok || err != nil {
		t.Fatalf("TryLock after expiry = %v, %v", ok, err)
	}
	if err := unlockOld(ctx); !errors.Is(err, ErrLockLost) {
		t.Errorf("unlock by the former holder: %v, want ErrLockLost", err)
	}
	if _, ok, _ := b.TryLock(ctx, "n"); ok {
		t.Fatal("the former holder's unlock released the new holder's lock")
	}
	if err := unlockNew(ctx); err != nil {
		t.Fatal(err)
	}
}

// holderEnv makes the test binary a lock holder that never unlocks; see
// TestLockOfKilledHolderExpires.
const holderEnv = "AUTHGATE_TEST_CERTLOCK_HOLDER"

// crashLocks is the lock timing of the killed-holder test.
var crashLocks = CertBlobsOptions{LockTTL: 1500 * time.Millisecond, PollMin: 10 * time.Millisecond, PollMax: 50 * time.Millisecond}

// TestMain turns the test binary into a lock holder when holderEnv is
// set (to "addr prefix"): it takes lock "n", says "locked" and waits to
// be killed.
func TestMain(m *testing.M) {
	spec := os.Getenv(holderEnv)
	if spec == "" {
		os.Exit(m.Run())
	}
	addr, prefix, _ := strings.Cut(spec, " ")
	s := New(NewClient(ClientOptions{Addrs: []string{addr}}), Options{KeyPrefix: prefix})
	if _, err := s.CertBlobsWith(crashLocks).Lock(context.Background(), "n"); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(1)
}

// A holder that crashes (SIGKILL: no unlock, no more refreshes) loses
// its lock once the TTL of its last refresh has run, not before.
func TestLockOfKilledHolderExpires(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := t.Context()
	prefix := uniquePrefix()
	b := newStore(t, []string{srv.Addr()}, prefix).CertBlobsWith(crashLocks)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+srv.Addr()+" "+prefix)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("holder said %q, %v", line, err)
	}
	// Past the first TTL: the holder's refreshes keep the lock.
	time.Sleep(crashLocks.LockTTL + crashLocks.LockTTL/3)
	if _, ok, err := b.TryLock(ctx, "n"); ok || err != nil {
		t.Fatalf("TryLock while the holder lives = %v, %v", ok, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	unlock, err := b.Lock(lctx, "n")
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	defer unlock(ctx)
	waited := time.Since(killed)
	// At the kill, between 2/3 of the TTL and all of it remained (less
	// if a refresh ran late on a busy machine).
	if waited < crashLocks.LockTTL/4 || waited > crashLocks.LockTTL+time.Second {
		t.Errorf("lock taken %v after the holder died; want its remaining TTL (at most %v)", waited, crashLocks.LockTTL)
	}
}
