// Command bench measures authgate against nginx and two bare
// httputil.ReverseProxy processes (bench/bareproxy: the plain one a Go
// user writes, the baseline of the ratios, and one with authgate's own
// proxy settings) in front of the same upstream, with wrk, in interleaved
// rounds, and checks the targets of issue 7. Run it from the repository
// root:
//
//	go run ./bench                      # the full run (about 11 minutes)
//	go run ./bench -out bench/RESULTS.md
//	go run ./bench -rounds 1 -duration 3s -extra-duration 3s -sessions 10000   # a quick look
//
// It builds authgate, starts every server on free loopback ports with
// its config in a temporary directory (the servers pinned to CPU 0 with
// taskset, wrk and the harness on CPU 1), signs in through the real
// password + TOTP pages, and checks before and after every measurement
// that the answers are the upstream's. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	rounds          int
	duration        time.Duration
	warmup          time.Duration
	checkDuration   time.Duration
	connections     int
	candidates      []string
	extras          []string
	extraDuration   time.Duration
	manyClients     int
	floodClients    int
	floodRetryAfter bool
	rate            int
	sessions        int
	logins          int
	signinDuration  time.Duration
	signinInterval  time.Duration
	signinGCPercent []int
	bodySize        int
	pin             bool
	logLevel        string
	nginxLog        bool
	redisAOF        bool
	authgateMetrics bool
	out             string
	keep            bool
}

var (
	allCandidates = []string{candNginx, candBare, candBareTuned, candEmbedded, candRedis, candAuthRequest}
	allExtras     = []string{extraManyClients, extraFixedRate, extraSignins, extraLogin, extraFlood, extraFootprint}
)

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.rounds, "rounds", 5, "measured rounds per candidate (interleaved A B C D, A B C D, ...); 0: none, only the extras")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of one measured wrk run")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "wrk warm-up per candidate before the rounds")
	fs.DurationVar(&o.checkDuration, "check-duration", time.Second, "length of the per-response checked wrk run after each round (0: none)")
	fs.IntVar(&o.connections, "connections", 64, "wrk connections in the rounds")
	cands := fs.String("candidates", strings.Join(allCandidates, ","), "candidates to measure")
	extras := fs.String("extras", strings.Join(allExtras, ","), `extra measurements ("none" for none)`)
	fs.DurationVar(&o.extraDuration, "extra-duration", 10*time.Second, "length of each extra measurement's load")
	fs.IntVar(&o.manyClients, "many-clients", 1000, "keep-alive clients for the RSS measurement")
	fs.IntVar(&o.floodClients, "flood-clients", 2000, "concurrent wrong-password sign-ins in the flood")
	fs.BoolVar(&o.floodRetryAfter, "flood-retry-after", false, "flood clients wait out the Retry-After of a 503 busy or 429 answer (default: they retry at once, as an attacker would)")
	fs.IntVar(&o.rate, "rate", 2000, "requests per second of the fixed-rate latency measurement")
	fs.IntVar(&o.sessions, "sessions", 100000, "sessions written for the store footprint")
	fs.IntVar(&o.logins, "logins", 10, "sign-ins (password + TOTP) timed per authgate candidate")
	fs.DurationVar(&o.signinDuration, "signin-duration", 20*time.Second, "signins-under-load: length of the load with sign-ins (the load alone runs -extra-duration)")
	fs.DurationVar(&o.signinInterval, "signin-interval", 500*time.Millisecond, "signins-under-load: one sign-in (password + TOTP, fresh browser) started this often")
	gcPercents := fs.String("signin-gc-percents", "", "signins-under-load: also measure one more authgate-embedded per value, with server.gc_percent set to it (e.g. 400,100)")
	fs.IntVar(&o.bodySize, "body", 1024, "upstream response body size in bytes")
	fs.BoolVar(&o.pin, "pin", true, "pin the servers to CPU 0 and the load to CPU 1 with taskset")
	fs.StringVar(&o.logLevel, "log-level", "info", "authgate log.level (info writes one access-log line per request, like nginx's access_log)")
	fs.BoolVar(&o.nginxLog, "nginx-access-log", true, "nginx writes its access log (authgate writes one at log level info)")
	fs.BoolVar(&o.redisAOF, "redis-aof", false, "run the harness's redis-server with appendonly yes")
	fs.BoolVar(&o.authgateMetrics, "authgate-metrics", true, "authgate serves Prometheus metrics (metrics.listen), from which the harness reads its allocations per request (false: no metrics, allocations n/a)")
	fs.StringVar(&o.out, "out", "", "also write the results as markdown to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs, stores)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.candidates, err = pickList(*cands, allCandidates, "-candidates"); err != nil {
		return o, err
	}
	if *extras == "none" {
		o.extras = nil
	} else if o.extras, err = pickList(*extras, allExtras, "-extras"); err != nil {
		return o, err
	}
	if o.rounds < 0 || o.duration < time.Second || o.connections < 1 || o.bodySize < 1 {
		return o, errors.New("-connections and -body must be positive, -rounds not negative and -duration at least 1s")
	}
	if o.signinGCPercent, err = parseGCPercents(*gcPercents); err != nil {
		return o, err
	}
	if len(o.signinGCPercent) > 0 && !slices.Contains(o.extras, extraSignins) {
		return o, fmt.Errorf("-signin-gc-percents needs -extras %s", extraSignins)
	}
	if o.signinDuration < time.Second || o.signinInterval <= 0 {
		return o, errors.New("-signin-duration must be at least 1s and -signin-interval positive")
	}
	return o, nil
}

// estimate is roughly how long a run with these options takes on two
// cores (builds, sign-ins and stores included).
func (o options) estimate() time.Duration {
	cands := time.Duration(len(o.candidates))
	ags := time.Duration(0)
	for _, c := range o.candidates {
		if c == candEmbedded || c == candRedis || c == candAuthRequest {
			ags++
		}
	}
	d := 15*time.Second + ags*time.Duration(1+o.logins)*600*time.Millisecond
	if o.rounds > 0 {
		d += cands * (o.warmup + time.Duration(o.rounds)*(o.duration+o.checkDuration+500*time.Millisecond))
	}
	for _, x := range o.extras {
		switch x {
		case extraManyClients:
			d += cands * (o.extraDuration + time.Second)
		case extraFixedRate:
			d += cands * (o.extraDuration + 1500*time.Millisecond)
		case extraFlood:
			d += ags * (2*o.extraDuration + 3*time.Second)
		case extraLogin:
			d += ags * time.Duration(2*o.logins) * 300 * time.Millisecond
		case extraSignins:
			n := ags + time.Duration(len(o.signinGCPercent))
			d += n * (o.warmup + o.extraDuration + o.signinDuration + time.Duration(o.signinUsers())*400*time.Millisecond)
			d += time.Duration(len(o.signinGCPercent)) * (time.Duration(o.signinUsers()) * 300 * time.Millisecond)
		case extraFootprint:
			d += ags * time.Duration(o.sessions) * 100 * time.Microsecond
		}
	}
	return d
}

// pickList parses a comma-separated subset of known, kept in known's order.
func pickList(s string, known []string, flagName string) ([]string, error) {
	var out []string
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !slices.Contains(known, v) {
			return nil, fmt.Errorf("%s: unknown %q (known: %s)", flagName, v, strings.Join(known, ", "))
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(known, a) - slices.Index(known, b) })
	return slices.Compact(out), nil
}

func main() {
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{o: o, start: time.Now(), rounds: map[string][]roundResult{}}
	err = b.run(ctx)
	b.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is the state of one run.
type bench struct {
	o           options
	start       time.Time
	tools       tools
	machine     machine
	root, dir   string
	ticksPerSec int64
	nofile      uint64
	l           *launcher
	wrk         *wrkRunner
	up          *upstreamServer
	rds         *redisServer
	cands       []*candidate
	rounds      map[string][]roundResult
	extra       extraResults
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

func (b *bench) candidate(name string) *candidate {
	for _, c := range b.cands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (b *bench) run(ctx context.Context) error {
	var err error
	if b.tools, err = findTools(b.o.pin); err != nil {
		return err
	}
	if b.root, err = moduleRoot(); err != nil {
		return err
	}
	if b.nofile, err = raiseFileLimit(); err != nil {
		return err
	}
	if b.ticksPerSec, err = clockTicks(); err != nil {
		return err
	}
	b.machine = describeMachine(b.tools)
	if b.o.pin && b.machine.NumCPU < 2 {
		return fmt.Errorf("pinning needs two CPUs, this machine has %d (use -pin=false)", b.machine.NumCPU)
	}
	b.logf("estimated run time: %v", b.o.estimate().Round(10*time.Second))
	if b.dir, err = os.MkdirTemp("", "authgate-bench-"); err != nil {
		return err
	}
	b.logf("run directory %s", b.dir)
	if err := b.build(ctx); err != nil {
		return err
	}
	taskset := ""
	if b.o.pin {
		taskset = b.tools.taskset
		if err := pinSelf(taskset, loadCPU); err != nil {
			return err
		}
	}
	b.l = &launcher{dir: b.dir, taskset: taskset}
	if b.wrk, err = newWrkRunner(b.dir, b.tools.wrk, taskset); err != nil {
		return err
	}
	if err := b.startServers(ctx); err != nil {
		return err
	}
	if b.o.rounds > 0 {
		b.logf("measuring %s: %d rounds of %v with %d connections", strings.Join(b.o.candidates, ", "), b.o.rounds, b.o.duration, b.o.connections)
		if err := b.runRounds(ctx); err != nil {
			return err
		}
	}
	if err := b.runExtras(ctx); err != nil {
		return err
	}
	return b.report()
}

// build compiles authgate and the two helpers into the run directory.
func (b *bench) build(ctx context.Context) error {
	for _, t := range [][2]string{{"authgate", "./cmd/authgate"}, {"upstream", "./bench/upstream"}, {"bareproxy", "./bench/bareproxy"}} {
		b.logf("go build %s", t[1])
		cmd := exec.CommandContext(ctx, b.tools.goBin, "build", "-o", filepath.Join(b.dir, t[0]), t[1])
		cmd.Dir = b.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w: %s", t[1], err, out)
		}
	}
	return nil
}

// startServers starts the upstream and every candidate, creates the
// users and signs the benchmark user in on each authgate.
func (b *bench) startServers(ctx context.Context) error {
	var err error
	if b.up, err = startUpstream(ctx, b.l, filepath.Join(b.dir, "upstream"), b.o.bodySize); err != nil {
		return err
	}
	has := func(n string) bool { return slices.Contains(b.o.candidates, n) }
	if has(candNginx) {
		c, err := startNginx(ctx, b.l, b.tools.nginx, candNginx, b.up, "", b.o.pin, b.o.nginxLog)
		if err != nil {
			return err
		}
		b.cands = append(b.cands, c)
	}
	for _, name := range []string{candBare, candBareTuned} {
		if !has(name) {
			continue
		}
		c, err := startBareProxy(ctx, b.l, filepath.Join(b.dir, "bareproxy"), b.up, name)
		if c != nil {
			b.cands = append(b.cands, c)
		}
		if err != nil {
			return err
		}
	}
	if has(candRedis) {
		if b.rds, err = startRedis(ctx, b.l, b.tools.redisServer, b.o.redisAOF); err != nil {
			return err
		}
	}
	for _, name := range []string{candEmbedded, candRedis} {
		if !has(name) {
			continue
		}
		driver, rds := "embedded", (*redisServer)(nil)
		if name == candRedis {
			driver, rds = "redis", b.rds
		}
		var users []string
		if slices.Contains(b.o.extras, extraLogin) {
			for i := range b.o.logins {
				users = append(users, fmt.Sprintf("login%03d", i+1))
			}
		}
		if slices.Contains(b.o.extras, extraSignins) {
			users = append(users, signinUserNames(b.o.signinUsers())...)
		}
		c, err := b.startAuthgate(ctx, name, driver, rds, 0, users)
		if c != nil {
			b.cands = append(b.cands, c)
		}
		if err != nil {
			return err
		}
	}
	if has(candAuthRequest) {
		c, err := b.startAuthRequest(ctx)
		if c != nil {
			b.cands = append(b.cands, c)
		}
		if err != nil {
			return err
		}
	}
	// nginx and the bare proxy get a Cookie header of the same size, so
	// every candidate receives the same request.
	cookie := ""
	for _, c := range b.cands {
		if c.cookie != "" {
			cookie = c.cookie
			break
		}
	}
	if cookie == "" {
		cookie = "authgate_session=" + strings.Repeat("x", 43)
	}
	for _, c := range b.cands {
		if c.cookie == "" {
			c.cookie = cookie
		}
		if err := verify(c, b.up.body); err != nil {
			return err
		}
	}
	return nil
}

// startAuthgate writes the config of an authgate candidate (gcPercent:
// server.gc_percent, 0 for the default), creates the benchmark user and
// users, starts it and signs the benchmark user in for wrk's cookie. A
// candidate that started is returned even with an error, to be stopped.
func (b *bench) startAuthgate(ctx context.Context, name, driver string, rds *redisServer, gcPercent int, users []string) (*candidate, error) {
	ag, port, err := newAuthgate(b.dir, filepath.Join(b.dir, "authgate"), name, driver, b.up, rds, b.o.logLevel, gcPercent, b.o.authgateMetrics)
	if err != nil {
		return nil, err
	}
	users = append([]string{benchUser}, users...)
	b.logf("%s: creating %d users", name, len(users))
	for _, u := range users {
		if _, err := ag.addUser(ctx, u); err != nil {
			return nil, err
		}
	}
	c, err := ag.start(ctx, b.l, name, port)
	if err != nil {
		return c, err
	}
	br := newBrowser("http://" + c.addr)
	t, err := br.signIn(ctx, ag.users[benchUser], b.up.body)
	if err != nil {
		return c, c.main.failure(fmt.Errorf("signing in %s: %w", benchUser, err))
	}
	c.cookie = br.cookieHeader("/")
	b.logf("%s: %s signed in (password, TOTP enrolment) in %v", name, benchUser, t.total.Round(time.Millisecond))
	return c, nil
}

// startAuthRequest starts candAuthRequest: an authgate of its own
// (embedded store; the benchmark user signed in on it directly) and an
// nginx in front of the upstream that asks it about every request. The
// candidate's main process (RSS, allocations, cache) is that authgate; its
// CPU per request is nginx's and authgate's. A candidate that started is
// returned even with an error, to be stopped.
func (b *bench) startAuthRequest(ctx context.Context) (*candidate, error) {
	gw, err := b.startAuthgate(ctx, candAuthRequest+"-authgate", "embedded", nil, 0, nil)
	if err != nil {
		return gw, err
	}
	n, err := startNginx(ctx, b.l, b.tools.nginx, candAuthRequest, b.up, gw.addr, b.o.pin, b.o.nginxLog)
	c := &candidate{name: candAuthRequest, main: gw.main, cpuProcs: []*proc{gw.main}, cookie: gw.cookie, alloc: gw.alloc}
	if n == nil {
		return c, err
	}
	c.addr = n.addr
	c.cpuProcs = []*proc{n.main, gw.main}
	if err != nil {
		return c, err
	}
	// Without the session nginx must refuse: authgate is asked.
	res, err := statsClient.Get(c.url("/"))
	if err != nil {
		return c, n.main.failure(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		return c, n.main.failure(fmt.Errorf("a request without the session got %s, want 401 from auth_request", res.Status))
	}
	return c, nil
}

// benchUser is the account whose session wrk uses.
const benchUser = "bench"

func (b *bench) cleanup() {
	for _, c := range b.cands {
		c.main.stop(5 * time.Second)
		for _, p := range c.cpuProcs { // nginx-auth-request's nginx
			p.stop(5 * time.Second)
		}
	}
	if b.rds != nil {
		b.rds.p.stop(5 * time.Second)
	}
	if b.up != nil {
		b.up.p.stop(5 * time.Second)
	}
	if b.dir == "" {
		return
	}
	if b.o.keep {
		b.logf("kept %s", b.dir)
		return
	}
	_ = os.RemoveAll(b.dir)
}
