package redisstore

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Durability is what the Redis server will do with authgate's data when
// it restarts or runs out of memory: with the Redis store it holds the
// only copy of users, TOTP secrets and the key check.
type Durability struct {
	// AOF: the append-only file is on, so a restart loses at most about
	// a second of writes.
	AOF bool
	// EvictionPolicy is maxmemory-policy; MaxMemory is maxmemory in bytes
	// (0: no limit).
	EvictionPolicy string
	MaxMemory      int64
}

// Problems lists what can lose data, each as one sentence with its fix
// (none when the server keeps everything).
func (d Durability) Problems() []string {
	var out []string
	if !d.AOF {
		out = append(out, "Redis runs without the append-only file (appendonly no): a restart loses every change since the last snapshot, or everything if snapshots are off. Set appendonly yes.")
	}
	if d.MaxMemory > 0 && d.EvictionPolicy != "noeviction" {
		out = append(out, fmt.Sprintf("Redis may evict keys when full (maxmemory %d bytes, maxmemory-policy %s): users and TOTP secrets would vanish. Set maxmemory-policy noeviction.", d.MaxMemory, d.EvictionPolicy))
	}
	return out
}

// Durability reads the server's persistence and eviction settings from
// INFO (allowed where CONFIG is not, as on most managed Redis). On a
// Cluster it asks one node.
func (s *Store) Durability(ctx context.Context) (Durability, error) {
	info, err := s.rdb.Info(ctx, "persistence", "memory").Result()
	if err != nil {
		return Durability{}, fmt.Errorf("redisstore: read INFO: %w", err)
	}
	var d Durability
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch k {
		case "aof_enabled":
			d.AOF = v == "1"
		case "maxmemory_policy":
			d.EvictionPolicy = v
		case "maxmemory":
			d.MaxMemory, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if d.EvictionPolicy == "" {
		return Durability{}, fmt.Errorf("redisstore: INFO has no maxmemory_policy (not a Redis server?)")
	}
	return d, nil
}
