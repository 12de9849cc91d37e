package redistest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a three-master Redis Cluster (no replicas) owned by a test.
type Cluster struct {
	Nodes []*Server
}

const clusterSize = 3

// StartCluster launches three cluster-enabled servers, joins them with
// `redis-cli --cluster create` and waits until every node reports the
// cluster healthy. Everything is killed at test cleanup.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := lookPath(t, "redis-server")
	cli := lookPath(t, "redis-cli")
	c := &Cluster{}
	for range clusterSize {
		s := newServer(t, bin, Options{}, true)
		s.startFresh()
		c.Nodes = append(c.Nodes, s)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitHealthy(t)
	return c
}

// Addrs are the nodes' host:port, usable as a cluster client's seeds.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Client returns a fail-fast cluster client, closed at cleanup.
func (c *Cluster) Client(t testing.TB) redis.UniversalClient {
	return newClient(t, c.Addrs(), true)
}

func (c *Cluster) waitHealthy(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		rc := redis.NewClient(&redis.Options{Addr: n.Addr(), DisableIdentity: true, MaxRetries: -1})
		for {
			info, err := rc.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_slots_ok:16384") &&
				strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				_ = rc.Close()
				t.Fatalf("redistest: cluster node %s not healthy: %v\n%s", n.Addr(), err, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = rc.Close()
	}
}
