package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

// Shape and timing of a SentinelSet.
//
// Three sentinels with quorum 2 are the smallest set that behaves like a
// production one: one sentinel's view is not enough to call the master
// down (ODOWN needs 2 of 3), a majority must elect the leader that runs
// the failover, and the others learn the new master from it. A single
// sentinel with quorum 1 would skip both agreements, so a client bug that
// only shows while the sentinels disagree (one still naming the dead
// master) would go unnoticed. Three sentinels cost three small processes
// and about 2–4 s of start-up while they discover each other.
const (
	// SentinelMasterName is the name the sentinels monitor the master as
	// (store.redis.master_name in a gateway config).
	SentinelMasterName = "authgate-test"
	sentinelCount      = 3
	sentinelQuorum     = 2
	// SentinelDownAfter is how long the master must stay silent before a
	// sentinel considers it down (down-after-milliseconds; Redis's
	// default is 30 s). Not lower: right after a switch a sentinel's link
	// to the new master can go unanswered for about a second (it
	// reconnects once per second), and with 500 ms the sentinels saw
	// the fresh master as down and failed over again, to a stale node.
	SentinelDownAfter = 2 * time.Second
	// sentinelFailoverTimeout bounds each failover step; a failed
	// election is retried after twice this (failover-timeout; Redis's
	// default is 3 min).
	sentinelFailoverTimeout = 3 * time.Second
	// sentinelSettle bounds start-up, promotion and re-synchronisation:
	// generous, for a loaded two-core machine.
	sentinelSettle = 45 * time.Second
)

// SentinelSet is a Redis master, one replica (--replicaof) and three
// sentinels watching them, all on free loopback ports and owned by a
// test. Both data nodes write an append-only file, so what reached either
// survives a kill. Which data node is the master changes with failovers:
// ask Master, not Data[0].
type SentinelSet struct {
	// Data are the two data nodes; Data[0] started as the master.
	Data []*Server
	// Sentinels are the three sentinel processes.
	Sentinels []*Server
	// SentinelPassword is what the sentinels require of clients (AUTH),
	// "" for none (SentinelOptions.Password).
	SentinelPassword string

	syncSeq atomic.Int64
}

// SentinelOptions configure StartSentinelWith.
type SentinelOptions struct {
	// Password makes the sentinels require AUTH with it (requirepass,
	// and sentinel-pass between themselves); the data nodes stay open.
	Password string
}

// StartSentinel launches the master, its replica and three sentinels
// (quorum 2), and returns once every sentinel sees the master, the
// replica and the two other sentinels, and the replica is in sync.
// Everything is killed at test cleanup, and with the test binary.
func StartSentinel(t testing.TB) *SentinelSet {
	t.Helper()
	return StartSentinelWith(t, SentinelOptions{})
}

// StartSentinelWith is StartSentinel with options.
func StartSentinelWith(t testing.TB, o SentinelOptions) *SentinelSet {
	t.Helper()
	bin := lookPath(t, "redis-server")
	s := &SentinelSet{SentinelPassword: o.Password}
	// The master's delay before a full sync (5 s by default in Redis 7)
	// would only slow the replica down.
	syncNow := []string{"--repl-diskless-sync-delay", "0"}
	master := newServer(t, bin, Options{AppendOnly: true, Args: syncNow}, false)
	master.startFresh()
	host, port, err := net.SplitHostPort(master.Addr())
	if err != nil {
		t.Fatalf("redistest: master address %q: %v", master.Addr(), err)
	}
	replica := newServer(t, bin, Options{AppendOnly: true, Args: append([]string{"--replicaof", host, port}, syncNow...)}, false)
	replica.startFresh()
	s.Data = []*Server{master, replica}

	conf := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s %[4]d\n"+
		"sentinel down-after-milliseconds %[1]s %[5]d\n"+
		"sentinel failover-timeout %[1]s %[6]d\n"+
		"sentinel parallel-syncs %[1]s 1\n",
		SentinelMasterName, host, port, sentinelQuorum,
		SentinelDownAfter.Milliseconds(), sentinelFailoverTimeout.Milliseconds())
	if o.Password != "" {
		conf += fmt.Sprintf("requirepass %[1]s\nsentinel sentinel-pass %[1]s\n", o.Password)
	}
	for range sentinelCount {
		sn := newServer(t, bin, Options{}, false)
		// Sentinel rewrites its config file as it learns: it must be
		// writable and its own.
		path := filepath.Join(sn.Dir(), "sentinel.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatalf("redistest: write sentinel config: %v", err)
		}
		sn.leadArgs = []string{path, "--sentinel"}
		sn.startFresh()
		s.Sentinels = append(s.Sentinels, sn)
	}
	s.waitSettled(t, master)
	return s
}

// SentinelAddrs are the sentinels' host:port (store.redis.addrs with
// master_name).
func (s *SentinelSet) SentinelAddrs() []string {
	addrs := make([]string, len(s.Sentinels))
	for i, sn := range s.Sentinels {
		addrs[i] = sn.Addr()
	}
	return addrs
}

// Client returns a fail-fast Sentinel (failover) client for the master,
// closed at cleanup.
func (s *SentinelSet) Client(t testing.TB) redis.UniversalClient {
	silenceOnce.Do(func() { redis.SetLogger(&logging.VoidLogger{}) })
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:       SentinelMasterName,
		SentinelAddrs:    s.SentinelAddrs(),
		SentinelPassword: s.SentinelPassword,
		DialTimeout:      2 * time.Second,
		ReadTimeout:      2 * time.Second,
		WriteTimeout:     2 * time.Second,
		DialerRetries:    1,
		MaxRetries:       -1,
		DisableIdentity:  true,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// MasterAddr is the master's address as a sentinel reports it now.
func (s *SentinelSet) MasterAddr(t testing.TB) string {
	t.Helper()
	var lastErr error
	for _, sn := range s.Sentinels {
		addr, err := masterAddrFrom(sn.Addr(), s.SentinelPassword)
		if err == nil {
			return addr
		}
		lastErr = err
	}
	t.Fatalf("redistest: no sentinel names the master: %v", lastErr)
	return ""
}

// Master is the data node the sentinels currently name as master.
func (s *SentinelSet) Master(t testing.TB) *Server {
	t.Helper()
	return s.node(t, s.MasterAddr(t))
}

// Replica is the data node that is not the master.
func (s *SentinelSet) Replica(t testing.TB) *Server {
	t.Helper()
	m := s.Master(t)
	for _, d := range s.Data {
		if d != m {
			return d
		}
	}
	t.Fatal("redistest: no replica")
	return nil
}

func (s *SentinelSet) node(t testing.TB, addr string) *Server {
	t.Helper()
	for _, d := range s.Data {
		if d.Addr() == addr {
			return d
		}
	}
	t.Fatalf("redistest: sentinels name %s, which is none of the data nodes", addr)
	return nil
}

// WaitReplicated returns once the replica has acknowledged every write
// the master accepted before the call. It writes a marker on the master
// and runs WAIT 1 on the same connection: WAIT only covers the calling
// connection's own writes, and the replication stream is in order, so
// the marker's acknowledgement covers every earlier write of every
// client.
func (s *SentinelSet) WaitReplicated(t testing.TB) {
	t.Helper()
	addr := s.MasterAddr(t)
	rc := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, MaxRetries: -1, DisableIdentity: true, DialerRetries: 1})
	defer rc.Close()
	key := fmt.Sprintf("redistest:replicated:%d", s.syncSeq.Add(1))
	deadline := time.Now().Add(sentinelSettle)
	for {
		// PoolSize 1: SET and WAIT run on one connection.
		acks, err := int64(0), rc.Set(context.Background(), key, 1, time.Minute).Err()
		if err == nil {
			acks, err = rc.Wait(context.Background(), 1, 5*time.Second).Result()
		}
		if err == nil && acks >= 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: replica did not acknowledge the master's writes within %v (err %v, acks %d)", sentinelSettle, err, acks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// KillMaster kills the master with SIGKILL, as a crash would, and waits
// until every sentinel names the promoted replica and it answers as
// master. It returns the killed node and the new master. It first waits
// until the sentinels list a healthy replica, so there is one to
// promote. The killed node stays down; Rejoin brings it back.
func (s *SentinelSet) KillMaster(t testing.TB) (killed, promoted *Server) {
	t.Helper()
	killed = s.Master(t)
	s.waitSettled(t, killed)
	killed.Kill()
	promoted = s.waitPromoted(t, killed)
	return killed, promoted
}

// Failover asks a sentinel for a failover (SENTINEL FAILOVER, no
// agreement needed) while the master is alive, and waits until the
// replica is promoted and the old master replicates from it. It returns
// the old and the new master.
//
// The sentinels would turn the old master into a replica only after
// their next INFO rounds (up to ~20 s); Failover sends it the same
// REPLICAOF at once. The sentinels' own list of replicas catches up
// later: KillMaster and Failover wait for it before they act.
func (s *SentinelSet) Failover(t testing.TB) (demoted, promoted *Server) {
	t.Helper()
	demoted = s.Master(t)
	s.waitSettled(t, demoted)
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[0].Addr(), Password: s.SentinelPassword, MaxRetries: -1, DisableIdentity: true})
	defer sc.Close()
	deadline := time.Now().Add(sentinelSettle)
	for {
		err := sc.Failover(context.Background(), SentinelMasterName).Err()
		if err == nil {
			break
		}
		// INPROG or NOGOODSLAVE while a previous change settles: retry.
		if time.Now().After(deadline) {
			t.Fatalf("redistest: SENTINEL FAILOVER: %v\n%s", err, s.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	promoted = s.waitPromoted(t, demoted)
	host, port, _ := net.SplitHostPort(promoted.Addr())
	for {
		err := replicatesFrom(demoted.Addr(), promoted.Addr())
		if err == nil {
			return demoted, promoted
		}
		if role, rerr := roleOf(demoted.Addr()); rerr == nil && role == "master" {
			rc := redis.NewClient(&redis.Options{Addr: demoted.Addr(), MaxRetries: -1, DisableIdentity: true, DialerRetries: 1})
			err = rc.SlaveOf(context.Background(), host, port).Err()
			_ = rc.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: old master %s does not replicate from %s: %v\n%s", demoted.Addr(), promoted.Addr(), err, s.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Rejoin restarts a killed data node (same port and data directory) as a
// replica of the current master, as an operator would, and waits until
// it is in sync and every sentinel lists it. Restarted as it was, the old
// master would come back as a master with stale data, and a sentinel
// could pick it in a later failover.
func (s *SentinelSet) Rejoin(t testing.TB, node *Server) {
	t.Helper()
	master := s.Master(t)
	host, port, err := net.SplitHostPort(master.Addr())
	if err != nil {
		t.Fatalf("redistest: master address %q: %v", master.Addr(), err)
	}
	node.mu.Lock()
	node.opts.Args = withReplicaOf(node.opts.Args, host, port)
	node.mu.Unlock()
	node.Restart()
	s.waitSettled(t, master)
}

// withReplicaOf returns args with any --replicaof replaced by host port.
func withReplicaOf(args []string, host, port string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--replicaof" && i+2 < len(args) {
			i += 2
			continue
		}
		out = append(out, args[i])
	}
	return append(out, "--replicaof", host, port)
}

// waitPromoted waits until every sentinel names the same master, not
// old, and that node reports the master role.
func (s *SentinelSet) waitPromoted(t testing.TB, old *Server) *Server {
	t.Helper()
	deadline := time.Now().Add(sentinelSettle)
	var state string
	for {
		addr, err := s.agreedMaster()
		if err == nil && addr != old.Addr() {
			if role, err := roleOf(addr); err == nil && role == "master" {
				return s.node(t, addr)
			}
		}
		state = fmt.Sprintf("sentinels: %q, %v", addr, err)
		if time.Now().After(deadline) {
			t.Fatalf("redistest: no promotion away from %s within %v (%s)\n%s", old.Addr(), sentinelSettle, state, s.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// agreedMaster returns the master address if every sentinel names the
// same one.
func (s *SentinelSet) agreedMaster() (string, error) {
	var agreed string
	for i, sn := range s.Sentinels {
		addr, err := masterAddrFrom(sn.Addr(), s.SentinelPassword)
		if err != nil {
			return "", fmt.Errorf("sentinel %s: %w", sn.Addr(), err)
		}
		if i > 0 && addr != agreed {
			return "", fmt.Errorf("sentinels disagree: %s vs %s", agreed, addr)
		}
		agreed = addr
	}
	return agreed, nil
}

// waitSettled waits until every sentinel names master, sees one healthy
// replica and the other sentinels, and the replica's link is up.
func (s *SentinelSet) waitSettled(t testing.TB, master *Server) {
	t.Helper()
	deadline := time.Now().Add(sentinelSettle)
	for {
		err := s.settled(master)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: sentinel set not settled within %v: %v\n%s", sentinelSettle, err, s.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *SentinelSet) settled(master *Server) error {
	ctx := context.Background()
	for _, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), Password: s.SentinelPassword, MaxRetries: -1, DisableIdentity: true, DialerRetries: 1})
		m, err := sc.Master(ctx, SentinelMasterName).Result()
		if err != nil {
			_ = sc.Close()
			return fmt.Errorf("sentinel %s: %w", sn.Addr(), err)
		}
		replicas, err := sc.Replicas(ctx, SentinelMasterName).Result()
		_ = sc.Close()
		if err != nil {
			return fmt.Errorf("sentinel %s: replicas: %w", sn.Addr(), err)
		}
		if got := net.JoinHostPort(m["ip"], m["port"]); got != master.Addr() {
			return fmt.Errorf("sentinel %s names master %s, want %s", sn.Addr(), got, master.Addr())
		}
		if m["flags"] != "master" || m["num-other-sentinels"] != strconv.Itoa(sentinelCount-1) {
			return fmt.Errorf("sentinel %s: master flags %q, other sentinels %s", sn.Addr(), m["flags"], m["num-other-sentinels"])
		}
		healthy := 0
		for _, r := range replicas {
			if r["flags"] == "slave" && r["master-link-status"] == "ok" {
				healthy++
			}
		}
		if healthy != len(s.Data)-1 {
			return fmt.Errorf("sentinel %s sees %d healthy replicas, want %d", sn.Addr(), healthy, len(s.Data)-1)
		}
	}
	for _, d := range s.Data {
		if d == master {
			continue
		}
		if err := replicatesFrom(d.Addr(), master.Addr()); err != nil {
			return err
		}
	}
	return nil
}

// replicatesFrom checks that replica has an up link to master.
func replicatesFrom(replica, master string) error {
	info, err := infoOf(replica, "replication")
	if err != nil {
		return fmt.Errorf("replica %s: %w", replica, err)
	}
	if !strings.Contains(info, "master_link_status:up") || !strings.Contains(info, "master_port:"+portOf(master)+"\r\n") {
		return fmt.Errorf("replica %s not in sync with %s", replica, master)
	}
	return nil
}

// logs is every process's output, for failure messages.
func (s *SentinelSet) logs() string {
	var b strings.Builder
	for _, d := range s.Data {
		fmt.Fprintf(&b, "--- data node %s\n%s", d.Addr(), tail(d.Output(), 25))
	}
	for _, sn := range s.Sentinels {
		fmt.Fprintf(&b, "--- sentinel %s\n%s", sn.Addr(), tail(sn.Output(), 25))
	}
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// masterAddrFrom asks one sentinel for the master's address.
func masterAddrFrom(sentinel, password string) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel, Password: password, MaxRetries: -1, DisableIdentity: true, DialerRetries: 1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer sc.Close()
	hp, err := sc.GetMasterAddrByName(context.Background(), SentinelMasterName).Result()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("get-master-addr-by-name answered %q", hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// roleOf returns the first element of ROLE: "master" or "slave".
func roleOf(addr string) (string, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DisableIdentity: true, DialerRetries: 1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer rc.Close()
	v, err := rc.Do(context.Background(), "ROLE").Slice()
	if err != nil {
		return "", err
	}
	if len(v) == 0 {
		return "", fmt.Errorf("empty ROLE answer")
	}
	role, _ := v[0].(string)
	return role, nil
}

func infoOf(addr, section string) (string, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DisableIdentity: true, DialerRetries: 1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer rc.Close()
	return rc.Info(context.Background(), section).Result()
}
