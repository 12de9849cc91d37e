package redisstore_test

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/store/redisstore"
)

// The Redis store holds the only copy of users and secrets: a server that
// would lose them on a restart or evict them when full is reported.
func TestDurability(t *testing.T) {
	for _, tc := range []struct {
		name     string
		o        redistest.Options
		problems []string
	}{
		{"no aof, evicting", redistest.Options{Args: []string{"--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"}},
			[]string{"appendonly yes", "maxmemory-policy noeviction"}},
		{"aof, no eviction", redistest.Options{AppendOnly: true, Args: []string{"--maxmemory", "64mb", "--maxmemory-policy", "noeviction"}}, nil},
		{"aof, eviction policy but no limit", redistest.Options{AppendOnly: true, Args: []string{"--maxmemory-policy", "allkeys-lru"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t, tc.o)
			st := redisstore.New(redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}}), redisstore.Options{})
			t.Cleanup(func() { _ = st.Close() })
			d, err := st.Durability(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			got := d.Problems()
			if len(got) != len(tc.problems) {
				t.Fatalf("problems %q, want ones naming %q", got, tc.problems)
			}
			for i, want := range tc.problems {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %q does not name the fix %q", got[i], want)
				}
			}
		})
	}
}
