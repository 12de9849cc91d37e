package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/config"
)

// signinLoadResult is an authgate candidate's memory and throughput
// under the rounds' load, first alone, then while users sign in.
type signinLoadResult struct {
	name        string
	gcPercent   int // server.gc_percent written to its config (0: the default)
	users       int
	loadOnly    loadWindow
	withSignins loadWindow
	signins     signinStats
}

// peakToSteady is the peak RSS with sign-ins during the load over the
// steady RSS after the load alone (issue 15's ≤ 2); ok is false when the
// steady RSS was not read.
func (r signinLoadResult) peakToSteady() (float64, bool) {
	if r.loadOnly.rssAfterKB <= 0 {
		return 0, false
	}
	return float64(r.withSignins.peakKB) / float64(r.loadOnly.rssAfterKB), true
}

// loadWindow is one wrk run (the rounds' request and connections) with
// the gateway's CPU time and peak RSS over it.
type loadWindow struct {
	wrk        wrkResult
	cpuUS      float64 // CPU µs per proxied request (the candidate's cpuProcs)
	peakKB     int64   // largest VmRSS sampled or VmHWM after a reset
	rssAfterKB int64   // VmRSS right after the run
	problem    string  // the proxied answers were not all the upstream's
}

// signinStats counts the sign-ins of one window.
type signinStats struct {
	started, failed int
	times           []time.Duration // password POST to the first proxied byte, of those that completed
	firstErr        string
}

// signinUsers is how many users the sign-in window needs so that none
// signs in twice in it. Each TOTP step is accepted once per user, and a
// code of the next step (when the current one was used, e.g. by the
// enrolment moments before) moves the user's drift window one step on,
// so a user's second code within a step could be refused: one sign-in
// per user is the only kind that never waits for a new step.
func (o options) signinUsers() int {
	return int(o.signinDuration/o.signinInterval) + 3
}

func signinUserNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("signin%03d", i+1)
	}
	return out
}

// parseGCPercents parses -signin-gc-percents: distinct values that
// server.gc_percent accepts.
func parseGCPercents(s string) ([]int, error) {
	var out []int
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < config.MinGCPercent || n > config.MaxGCPercent {
			return nil, fmt.Errorf("-signin-gc-percents: %q is not a whole number from %d to %d", v, config.MinGCPercent, config.MaxGCPercent)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("-signin-gc-percents: %d twice", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// runSigninsUnderLoad measures every authgate candidate, then one more
// authgate-embedded per -signin-gc-percents value, each started for its
// measurement and stopped after it (so it never runs beside the others).
func (b *bench) runSigninsUnderLoad(ctx context.Context) error {
	for _, c := range b.cands {
		if !c.isAuthgate() {
			continue
		}
		r, err := b.signinsUnderLoad(ctx, c)
		if err != nil {
			return err
		}
		b.extra.signins = append(b.extra.signins, r)
	}
	for _, pct := range b.o.signinGCPercent {
		r, err := b.signinsUnderLoadGC(ctx, pct)
		if err != nil {
			return err
		}
		b.extra.signins = append(b.extra.signins, r)
	}
	return nil
}

// signinsUnderLoadGC runs an extra authgate-embedded with
// server.gc_percent pct through the measurement.
func (b *bench) signinsUnderLoadGC(ctx context.Context, pct int) (signinLoadResult, error) {
	name := candEmbedded + "-gc" + strconv.Itoa(pct)
	c, err := b.startAuthgate(ctx, name, "embedded", nil, pct, signinUserNames(b.o.signinUsers()))
	if c != nil {
		defer c.main.stop(5 * time.Second)
	}
	if err != nil {
		return signinLoadResult{}, err
	}
	// The gateway logs the runtime settings it applied; GOGC in the
	// environment would override the config.
	logText, _ := os.ReadFile(c.main.logPath)
	if want := `"gc_percent":` + strconv.Itoa(pct); !strings.Contains(string(logText), want) {
		return signinLoadResult{}, c.main.failure(fmt.Errorf("its log has no %s (is GOGC set?)", want))
	}
	return b.signinsUnderLoad(ctx, c)
}

// signinsUnderLoad enrols the sign-in users (first sign-in, TOTP set up),
// warms the gateway up, runs the rounds' load alone for -extra-duration,
// then the same load for -signin-duration while one goroutine signs a
// user in (password + TOTP code, a fresh browser) every -signin-interval,
// and reports the gateway's peak RSS, req/s and CPU per request of both.
func (b *bench) signinsUnderLoad(ctx context.Context, c *candidate) (signinLoadResult, error) {
	r := signinLoadResult{name: c.name, gcPercent: c.ag.gcPercent}
	users := c.ag.usersNamed("signin")
	if len(users) == 0 {
		return r, fmt.Errorf("%s: no sign-in users were created", c.name)
	}
	r.users = len(users)
	b.logf("%s: enrolling %d sign-in users", c.name, len(users))
	for _, a := range users {
		if a.secret != "" {
			continue
		}
		br := newBrowser("http://" + c.addr)
		_, err := br.signIn(ctx, a, b.up.body)
		br.client.CloseIdleConnections()
		if err != nil {
			return r, c.main.failure(fmt.Errorf("enrolling %s: %w", a.name, err))
		}
	}
	if err := verify(c, b.up.body); err != nil {
		return r, err
	}
	b.logf("%s: warm-up (%v), load alone (%v)", c.name, b.o.warmup, b.o.extraDuration)
	w, err := b.wrk.run(ctx, c, b.o.connections, b.o.warmup)
	if err != nil {
		return r, err
	}
	if err := w.validate(c, b.o.connections); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	if r.loadOnly, err = b.loadWindow(ctx, c, b.o.extraDuration, nil); err != nil {
		return r, err
	}
	b.logf("%s: load with a sign-in every %v (%v)", c.name, b.o.signinInterval, b.o.signinDuration)
	r.withSignins, err = b.loadWindow(ctx, c, b.o.signinDuration, func(sctx context.Context) func() {
		wait := startSignins(sctx, c, users, b.o.signinInterval, b.up.body)
		return func() { r.signins = wait() }
	})
	if err != nil {
		return r, err
	}
	if err := verify(c, b.up.body); err != nil {
		return r, fmt.Errorf("after the sign-ins: %w", err)
	}
	b.logf("%s: peak RSS %s MiB alone (%s MiB after), %s MiB with %d sign-ins (median %s ms)", c.name,
		mib(r.loadOnly.peakKB), mib(r.loadOnly.rssAfterKB), mib(r.withSignins.peakKB), len(r.signins.times), dms(r.signins.median()))
	return r, nil
}

// loadWindow runs wrk for d with the rounds' connections and request,
// while side (if set) runs: side starts its work and returns a function
// that waits for it, called once wrk is done and side's context ended.
func (b *bench) loadWindow(ctx context.Context, c *candidate, d time.Duration, side func(context.Context) func()) (loadWindow, error) {
	var r loadWindow
	var err error
	r.peakKB, err = peakDuring(c.main.pid(), func() error {
		t0, err := c.cpuTicks()
		if err != nil {
			return err
		}
		sctx, stop := context.WithCancel(ctx)
		wait := func() {}
		if side != nil {
			wait = side(sctx)
		}
		w, werr := b.wrk.run(ctx, c, b.o.connections, d)
		t1, terr := c.cpuTicks()
		stop()
		wait()
		if werr != nil {
			return werr
		}
		if terr != nil {
			return terr
		}
		r.wrk = w
		var ticks int64
		for i := range t0 {
			ticks += t1[i] - t0[i]
		}
		if w.Requests > 0 {
			r.cpuUS = float64(ticks) * 1e6 / float64(b.ticksPerSec) / float64(w.Requests)
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	if r.rssAfterKB, _, err = memKB(c.main.pid()); err != nil {
		return r, c.main.failure(err)
	}
	if err := r.wrk.validate(c, b.o.connections); err != nil {
		r.problem = err.Error()
	}
	return r, nil
}

// startSignins signs users in one after another, round robin, each with
// a fresh browser, one started every `every` (or at once when the last
// took longer), until ctx ends or every user has signed in once (see
// signinUsers). The returned function waits for the goroutine and
// returns the counts; a sign-in cut short by ctx counts as none.
func startSignins(ctx context.Context, c *candidate, users []*account, every time.Duration, want []byte) func() signinStats {
	var st signinStats
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for _, a := range users {
			br := newBrowser("http://" + c.addr)
			tm, err := br.signIn(ctx, a, want)
			br.client.CloseIdleConnections()
			if ctx.Err() != nil {
				return
			}
			st.started++
			if err != nil {
				st.failed++
				if st.firstErr == "" {
					st.firstErr = err.Error()
				}
			} else {
				st.times = append(st.times, tm.total)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() signinStats {
		<-done
		return st
	}
}

func (s signinStats) median() time.Duration {
	if len(s.times) == 0 {
		return 0
	}
	return medianD(s.times)
}

func (s signinStats) worst() time.Duration {
	if len(s.times) == 0 {
		return 0
	}
	return slices.Max(s.times)
}

// writeSignins writes the signins-under-load table.
func (b *bench) writeSignins(sb *strings.Builder) {
	x := b.extra.signins
	if len(x) == 0 {
		return
	}
	t := table{head: []string{"candidate", "server.gc_percent",
		"load alone: req/s", "CPU µs/req", "steady RSS MiB (after it)", "peak RSS MiB",
		"with sign-ins: req/s", "CPU µs/req", "peak RSS MiB", "peak with / alone", "peak with / steady",
		"sign-ins done / started", "sign-in median ms", "worst ms", "answers"}}
	for _, r := range x {
		gc := strconv.Itoa(r.gcPercent)
		if r.gcPercent == 0 {
			gc = strconv.Itoa(config.DefaultGCPercent) + " (default)"
		}
		var problems []string
		for _, p := range []string{r.loadOnly.problem, r.withSignins.problem} {
			if p != "" {
				problems = append(problems, p)
			}
		}
		if r.signins.failed > 0 {
			problems = append(problems, fmt.Sprintf("%d sign-ins failed, first: %s", r.signins.failed, r.signins.firstErr))
		}
		answers := "all upstream's"
		if len(problems) > 0 {
			answers = strings.Join(problems, "; ")
		}
		ratio, toSteady := "–", "–"
		if r.loadOnly.peakKB > 0 {
			ratio = f2(float64(r.withSignins.peakKB) / float64(r.loadOnly.peakKB))
		}
		if v, ok := r.peakToSteady(); ok {
			toSteady = f2(v)
		}
		t.add(r.name, gc,
			f0(r.loadOnly.wrk.rps()), f1(r.loadOnly.cpuUS), mib(r.loadOnly.rssAfterKB), mib(r.loadOnly.peakKB),
			f0(r.withSignins.wrk.rps()), f1(r.withSignins.cpuUS), mib(r.withSignins.peakKB), ratio, toSteady,
			strconv.Itoa(len(r.signins.times))+" / "+strconv.Itoa(r.signins.started), dms(r.signins.median()), dms(r.signins.worst()), answers)
	}
	fmt.Fprintf(sb, "## Sign-ins under load (wrk -c%d: %v alone, then %v with a sign-in every %v)\n\n", b.o.connections, b.o.extraDuration, b.o.signinDuration, b.o.signinInterval)
	fmt.Fprintf(sb, "After a %v warm-up, the rounds' signed-in request alone, then the same load while one goroutine signs a user in every %v "+
		"(password + TOTP code, a fresh browser each time, each of up to %d users enrolled before the warm-up once; each sign-in hashes the password with argon2id, 64 MiB). "+
		"Peak RSS: the larger of VmHWM (reset through clear_refs when the window starts) and VmRSS sampled every 50 ms; steady RSS: VmRSS right after the load alone. "+
		"CPU µs/req: the gateway's CPU time over the window (authgate-redis: with its redis-server) per proxied request, so the sign-ins' hashing counts towards it. "+
		"Sign-in time: password POST to the first proxied byte. The `-gcN` rows are extra authgate-embedded instances with `server.gc_percent: N`, each started for its measurement only.\n\n",
		b.o.warmup, b.o.signinInterval, x[0].users)
	t.write(sb)
}
