package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Candidate names, in the order of the tables.
const (
	candNginx     = "nginx"
	candBare      = "bare-proxy"       // bench/bareproxy -style plain: the baseline of the ratios
	candBareTuned = "bare-proxy-tuned" // bench/bareproxy -style tuned: authgate's proxy settings
	candEmbedded  = "authgate-embedded"
	candRedis     = "authgate-redis"
	// candAuthRequest is nginx (as candNginx) asking an authgate of its
	// own (embedded store) about every request with auth_request:
	// authgate as forward auth (docs/forward-auth.md).
	candAuthRequest = "nginx-auth-request"
)

// candidate is one proxy under test.
type candidate struct {
	name string
	addr string // host:port it serves on
	main *proc  // the proxy process (RSS)
	// cpuProcs are the processes whose CPU time counts per request: the
	// proxy, plus its redis-server for authgate-redis; nginx and its
	// authgate for nginx-auth-request (whose main is the authgate).
	cpuProcs []*proc
	// cookie is the Cookie header every request sends (the authgate
	// session; nginx and the bare proxy get the same header and forward
	// it).
	cookie string
	// expectBytes is the size of one whole response (headers and body) as
	// the verification request received it.
	expectBytes int
	// ag is set for the authgate candidates.
	ag *authgateInstance
	// alloc reads the process's cumulative heap allocations (the Go
	// candidates; nil for nginx, and for authgate with -authgate-metrics=false).
	alloc *allocSource
}

func (c *candidate) url(path string) string { return "http://" + c.addr + path }

func (c *candidate) isAuthgate() bool { return c.ag != nil }

// cpuTicks returns the CPU time of each of the candidate's processes.
func (c *candidate) cpuTicks() ([]int64, error) {
	out := make([]int64, len(c.cpuProcs))
	for i, p := range c.cpuProcs {
		n, err := cpuTicks(p.pid())
		if err != nil {
			return nil, p.failure(fmt.Errorf("reading its CPU time: %w", err))
		}
		out[i] = n
	}
	return out, nil
}

// authgateInstance is one running `authgate serve`.
type authgateInstance struct {
	bin, config, dataDir string
	env                  []string // AUTHGATE_SECRET_KEY
	store                string   // embedded | redis
	gcPercent            int      // server.gc_percent written (0: the default)
	metricsAddr          string   // metrics.listen ("" = off)
	redis                *redisServer
	users                map[string]*account
}

// usersNamed returns the accounts whose names start with prefix, by name.
func (ag *authgateInstance) usersNamed(prefix string) []*account {
	var out []*account
	for name, a := range ag.users {
		if strings.HasPrefix(name, prefix) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b *account) int { return strings.Compare(a.name, b.name) })
	return out
}

// account is a user the harness created, with what it knows about it.
type account struct {
	name, password string
	secret         string         // base32 TOTP secret once enrolled
	usedSteps      map[int64]bool // TOTP steps already consumed
}

var authgateConf = template.Must(template.New("authgate").Parse(`# Written by the authgate benchmark.
listen: "{{.Listen}}"
public_url: "http://{{.Listen}}"
data_dir: "{{.DataDir}}"
store:
  driver: "{{.Store}}"
{{- if .Redis}}
  redis:
    addrs: ["{{.Redis}}"]
{{- end}}
two_factor:
  mode: "on"
  issuer: "authgate bench"
# password.argon2 and password.max_concurrent: defaults (64 MiB, 3 passes,
# 2 lanes; one hash at a time per CPU). regulation: defaults (5 failures
# per user name or address in 5 min start a 15 min ban).
routes:
  - name: "panel"
    path_prefix: "/"
    upstream: "http://{{.Upstream}}"
    policy: "two_factor"
    allow:
      groups: ["admins"]
# The load generators connect from 127.0.0.1 as a TLS terminator would;
# the flood sends X-Forwarded-For to look like many clients.
trusted_proxies: ["127.0.0.1"]
log:
  level: "{{.LogLevel}}"
  format: "json"
{{- if .GCPercent}}
server:
  gc_percent: {{.GCPercent}}
{{- end}}
{{- if .Metrics}}
# The harness reads go_memstats_alloc_bytes_total and
# go_memstats_mallocs_total before and after each measured round.
metrics:
  listen: "{{.Metrics}}"
{{- end}}
`))

// newAuthgate writes a config (name.yaml) and data dir (name) for one
// store driver; gcPercent sets server.gc_percent (0: the default);
// metrics turns metrics.listen on (a free loopback port).
func newAuthgate(runDir, bin, name, storeDriver string, up *upstreamServer, rds *redisServer, logLevel string, gcPercent int, metrics bool) (*authgateInstance, int, error) {
	dataDir := filepath.Join(runDir, name)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, 0, err
	}
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, 0, err
	}
	metricsAddr := ""
	if metrics {
		mport, err := freePort()
		if err != nil {
			return nil, 0, err
		}
		metricsAddr = "127.0.0.1:" + strconv.Itoa(mport)
	}
	data := map[string]any{
		"Listen": "127.0.0.1:" + strconv.Itoa(port), "DataDir": dataDir, "Store": storeDriver,
		"Upstream": up.addr, "LogLevel": logLevel, "Redis": "", "GCPercent": gcPercent,
		"Metrics": metricsAddr,
	}
	if rds != nil {
		data["Redis"] = rds.addr
	}
	var b strings.Builder
	if err := authgateConf.Execute(&b, data); err != nil {
		return nil, 0, err
	}
	cfg := filepath.Join(runDir, name+".yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		return nil, 0, err
	}
	ag := &authgateInstance{
		bin: bin, config: cfg, dataDir: dataDir, store: storeDriver, redis: rds, gcPercent: gcPercent, metricsAddr: metricsAddr,
		env:   []string{"AUTHGATE_SECRET_KEY=" + hex.EncodeToString(key)},
		users: map[string]*account{},
	}
	return ag, port, nil
}

// addUser runs `authgate user add NAME --group admins --password-stdin`.
func (ag *authgateInstance) addUser(ctx context.Context, name string) (*account, error) {
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	a := &account{name: name, password: hex.EncodeToString(pw), usedSteps: map[int64]bool{}}
	cmd := exec.CommandContext(ctx, ag.bin, "user", "add", name, "--group", "admins", "--password-stdin", "--config", ag.config)
	cmd.Env = append(os.Environ(), ag.env...)
	cmd.Stdin = strings.NewReader(a.password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("authgate user add %s (%s store): %w: %s", name, ag.store, err, out)
	}
	ag.users[name] = a
	return a, nil
}

// start runs `authgate serve` and waits for its health probe.
func (ag *authgateInstance) start(ctx context.Context, l *launcher, name string, port int) (*candidate, error) {
	p, err := l.start(name, serverCPU, ag.env, nil, ag.bin, "serve", "--config", ag.config)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	err = p.waitReady(ctx, 20*time.Second, func() error {
		res, err := statsClient.Get("http://" + addr + "/.authgate/healthz")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", res.Status)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c := &candidate{name: name, addr: addr, main: p, cpuProcs: []*proc{p}, ag: ag}
	if ag.metricsAddr != "" {
		c.alloc = &allocSource{url: "http://" + ag.metricsAddr + "/metrics", prom: true}
		// The metrics listener starts with the gateway; wait for it too.
		err = p.waitReady(ctx, 10*time.Second, func() error {
			_, err := c.alloc.read()
			return err
		})
		if err != nil {
			return c, err
		}
	}
	if ag.redis != nil {
		c.cpuProcs = append(c.cpuProcs, ag.redis.p)
	}
	return c, nil
}
