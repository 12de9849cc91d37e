package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// table is a markdown table.
type table struct {
	head []string
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(sb *strings.Builder) {
	sb.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
	for range t.head {
		sb.WriteString("---|")
	}
	sb.WriteString("\n")
	for _, r := range t.rows {
		sb.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	sb.WriteString("\n")
}

func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
func mib(kb int64) string { return f1(float64(kb) / 1024) }
func dms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// verdict is PASS or MISS for a measured value against a goal.
func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "**MISS**"
}

// target is one line of the targets table.
type target struct {
	what, measured, goal, result string
}

// command is the command line that produced the run.
func command() string {
	parts := []string{"go run ./bench"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t\"'$") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func (b *bench) report() error {
	var sb strings.Builder
	m := b.machine
	fmt.Fprintf(&sb, "# authgate benchmark results\n\n")
	fmt.Fprintf(&sb, "- Date: %s (run took %s)\n", b.start.UTC().Format("2006-01-02 15:04 MST"), time.Since(b.start).Round(time.Second))
	fmt.Fprintf(&sb, "- Machine: %d CPUs (%s), %s MiB RAM, Linux %s\n", m.NumCPU, m.CPUModel, m.MemTotalMB, m.Kernel)
	fmt.Fprintf(&sb, "- Software: %s; %s; %s; %s\n", m.Go, m.Nginx, m.Redis, m.Wrk)
	fmt.Fprintf(&sb, "- Command: `%s`\n", command())
	pin := "servers (upstream, proxy under test, redis-server) pinned to CPU 0 with taskset, wrk and the harness (flood, fixed-rate generator) on CPU 1"
	if !b.o.pin {
		pin = "nothing pinned"
	}
	rounds := fmt.Sprintf("%d interleaved rounds of %v per candidate after a %v warm-up", b.o.rounds, b.o.duration, b.o.warmup)
	if b.o.rounds == 0 {
		rounds = "no rounds (-rounds 0), only the extras"
	}
	fmt.Fprintf(&sb, "- Method: %s; wrk -t1 -c%d, %s; upstream answers %d bytes; every answer checked (see bench/README.md)\n\n",
		pin, b.o.connections, rounds, b.o.bodySize)

	sums := map[string]summary{}
	main := table{head: []string{"candidate", "req/s (median)", "req/s range", "p50 ms", "p99 ms", "worst round's p99 ms", "CPU µs/req", "alloc B/req", "allocs/req", "cache resets/min (stalls/min)", "new upstream conns / 1k req", "RSS MiB", "peak RSS MiB (since start, sign-ins included)"}}
	for _, c := range b.cands {
		s := summarize(c.name, b.rounds[c.name])
		sums[c.name] = s
		cpu := f1(s.cpuUS)
		switch {
		case c.name == candRedis:
			cpu += " (gateway " + f1(b.cpuShare(c.name, 0)) + " + redis " + f1(b.cpuShare(c.name, 1)) + ")"
		case c.name == candAuthRequest && len(c.cpuProcs) == 2:
			cpu += " (nginx " + f1(b.cpuShare(c.name, 0)) + " + authgate " + f1(b.cpuShare(c.name, 1)) + ")"
		}
		allocB, allocs := "n/a", "n/a"
		if s.hasAlloc {
			allocB, allocs = f0(s.allocB), f1(s.allocs)
		}
		cacheCol := "n/a"
		if s.hasCache {
			cacheCol = f1(s.cacheResetsPerMin) + " (" + f1(s.cacheStallsPerMin) + ")"
		}
		main.add(c.name, f0(s.rps), f0(s.rpsMin)+"–"+f0(s.rpsMax), f2(s.p50US/1000), f2(s.p99US/1000), f2(s.worstP99US/1000), cpu, allocB, allocs, cacheCol, f2(s.connsPer1k), mib(s.rssKB), mib(s.hwmKB))
	}
	if b.o.rounds > 0 {
		sb.WriteString("## Authenticated proxied GET (wrk)\n\n")
		main.write(&sb)
		sb.WriteString("alloc B/req and allocs/req: heap bytes and objects the whole process allocated over each measured run (read from the process itself before and after it, less one reading's own cost), divided by the completed requests; medians over rounds. nginx is not a Go process: n/a. cache resets/min (stalls/min): authgate's session cache emptied (authgate_cache_resets_total, every cause) and paused (authgate_cache_stalls_total) per minute of measured load, over all rounds; 0 expected while Redis is healthy (the embedded store's cache never resets).\n\n")
		b.writeRelative(&sb, sums)
		b.writeRounds(&sb)
	} else {
		sums = map[string]summary{}
	}

	targets := b.targets(sums)
	tt := table{head: []string{"target", "measured", "goal", "result"}}
	for _, t := range targets {
		tt.add(t.what, t.measured, t.goal, t.result)
	}
	if len(targets) > 0 {
		sb.WriteString("## Targets (issues 7 and 15)\n\n")
		if _, ok := sums[candBare]; ok {
			sb.WriteString("Ratios to the bare proxy are against `bare-proxy`, the plain `httputil.NewSingleHostReverseProxy` (see Set-up), not `bare-proxy-tuned`.\n\n")
		}
		tt.write(&sb)
	}
	b.writeExtras(&sb)
	b.writeNotes(&sb)

	out := sb.String()
	fmt.Print(out)
	if b.o.out != "" {
		if err := os.WriteFile(b.o.out, []byte(out), 0o644); err != nil {
			return err
		}
		b.logf("wrote %s", b.o.out)
	}
	return nil
}

// cpuShare splits a candidate's median CPU µs per request by process
// (i-th of cpuProcs), from the totals over all rounds.
func (b *bench) cpuShare(name string, i int) float64 {
	c := b.candidate(name)
	if c == nil || i >= len(c.cpuProcs) {
		return 0
	}
	var ticks, reqs int64
	for _, r := range b.rounds[name] {
		if i < len(r.procTicks) {
			ticks += r.procTicks[i]
		}
		reqs += r.wrk.Requests
	}
	if reqs == 0 {
		return 0
	}
	return float64(ticks) * 1e6 / float64(b.ticksPerSec) / float64(reqs)
}

func (b *bench) targets(sums map[string]summary) []target {
	var out []target
	ratio := func(a, base string, goal float64) {
		sa, okA := sums[a]
		sbase, okB := sums[base]
		if !okA || !okB || sbase.rps == 0 {
			return
		}
		v := sa.rps / sbase.rps
		pr := pairedRatios(b.rounds[a], b.rounds[base])
		spread := ""
		if len(pr) > 1 {
			spread = fmt.Sprintf(" (rounds %s–%s)", f2(minF(pr)), f2(maxF(pr)))
		}
		out = append(out, target{a + " / " + base + " req/s", f2(v) + spread, "≥ " + f2(goal), verdict(v >= goal)})
	}
	for _, ag := range []string{candRedis, candEmbedded} {
		ratio(ag, candNginx, 0.75)
	}
	// Against the plain bare proxy: what a Go user would write instead.
	for _, ag := range []string{candRedis, candEmbedded} {
		ratio(ag, candBare, 0.95)
	}
	for _, ag := range []string{candRedis, candEmbedded} {
		sa, okA := sums[ag]
		sn, okN := sums[candNginx]
		if okA && okN && sn.p99US > 0 {
			v := sa.p99US / sn.p99US
			out = append(out, target{ag + " p99 / nginx p99", f2(v), "≤ 1.50", verdict(v <= 1.5)})
		}
	}
	for _, ag := range []string{candRedis, candEmbedded} {
		if s, ok := sums[ag]; ok {
			what := ag + " CPU µs per request"
			if ag == candRedis {
				what += " (gateway + its redis-server)"
			}
			out = append(out, target{what, f1(s.cpuUS), "≤ 45", verdict(s.cpuUS <= 45)})
		}
	}
	for _, ag := range []string{candRedis, candEmbedded} {
		if s, ok := sums[ag]; ok {
			out = append(out, target{ag + " new upstream connections per 1,000 requests", f2(s.connsPer1k), "≤ 1", verdict(s.connsPer1k <= 1)})
		}
	}
	// Issue 15: no round spikes, the cache holds while Redis is healthy,
	// a sign-in does not double the memory.
	for _, ag := range []string{candRedis, candEmbedded} {
		s, ok := sums[ag]
		if !ok || s.rounds == 0 {
			continue
		}
		out = append(out, target{fmt.Sprintf("%s p99 at %d connections, worst of %d rounds", ag, b.o.connections, s.rounds),
			f2(s.worstP99US/1000) + " ms", "≤ 50 ms", verdict(s.worstP99US <= 50_000)})
		if s.hasCache {
			out = append(out, target{ag + " session cache resets per minute of load", f1(s.cacheResetsPerMin), "0", verdict(s.cacheResetsPerMin == 0)})
		}
	}
	for _, r := range b.extra.signins {
		if v, ok := r.peakToSteady(); ok && r.gcPercent == 0 {
			out = append(out, target{r.name + " peak RSS with sign-ins during the load / steady RSS", f2(v), "≤ 2", verdict(v <= 2)})
		}
	}
	const mb64 = 64_000_000 / 1024 // KiB
	for _, r := range b.extra.many {
		if b.candidate(r.name).isAuthgate() {
			res := verdict(r.peakRSSKB <= mb64)
			if r.problem != "" {
				res = "**INVALID** (answers not all the upstream's)"
			}
			out = append(out, target{fmt.Sprintf("%s peak RSS at %d keep-alive clients", r.name, r.clients), mib(r.peakRSSKB) + " MiB", "≤ 64 MB (61.0 MiB)", res})
		}
	}
	for _, r := range b.extra.flood {
		out = append(out, target{fmt.Sprintf("%s peak RSS during %d concurrent wrong-password sign-ins", r.name, r.clients), mib(r.peakRSSKB) + " MiB", "≤ 256 MiB", verdict(r.peakRSSKB <= 256*1024)})
		v := r.during.rps() / r.before.rps()
		res := verdict(v >= 0.5)
		if r.problem != "" {
			res = "**MISS** (" + r.problem + ")"
		}
		out = append(out, target{r.name + " authenticated req/s during the flood / before", f2(v), "≥ 0.50", res})
	}
	return out
}

// writeRelative compares every candidate with the plain bare proxy
// (candBare): req/s, CPU and allocations per request, as ratios of the
// medians, with the spread of the req/s and CPU ratios round by round.
func (b *bench) writeRelative(sb *strings.Builder, sums map[string]summary) {
	base, ok := sums[candBare]
	if !ok || base.rps == 0 || base.cpuUS == 0 {
		return
	}
	spread := func(v []float64) string {
		if len(v) < 2 {
			return ""
		}
		return " (rounds " + f2(minF(v)) + "–" + f2(maxF(v)) + ")"
	}
	t := table{head: []string{"candidate", "req/s ×", "CPU µs/req ×", "alloc B/req ×", "allocs/req ×"}}
	for _, c := range b.cands {
		s, ok := sums[c.name]
		if !ok || c.name == candBare {
			continue
		}
		rps := f2(s.rps/base.rps) + spread(pairedRatios(b.rounds[c.name], b.rounds[candBare]))
		cpu := f2(s.cpuUS/base.cpuUS) + spread(pairedRatiosOf(b.rounds[c.name], b.rounds[candBare], func(r roundResult) float64 { return r.cpuUSPerRq }))
		allocB, allocs := "n/a", "n/a"
		if s.hasAlloc && base.hasAlloc && base.allocB > 0 && base.allocs > 0 {
			allocB, allocs = f2(s.allocB/base.allocB), f2(s.allocs/base.allocs)
		}
		t.add(c.name, rps, cpu, allocB, allocs)
	}
	if len(t.rows) == 0 {
		return
	}
	sb.WriteString("## Relative to bare-proxy (the plain `httputil.NewSingleHostReverseProxy`)\n\n")
	t.write(sb)
}

func minF(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxF(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func (b *bench) writeExtras(sb *strings.Builder) {
	x := b.extra
	if len(x.many) > 0 {
		t := table{head: []string{"candidate", "keep-alive clients", "req/s", "p99 ms", "peak RSS MiB", "new upstream conns / 1k req", "answers"}}
		for _, r := range x.many {
			ok := "all upstream's"
			if r.problem != "" {
				ok = r.problem
			}
			t.add(r.name, strconv.Itoa(r.clients), f0(r.wrk.rps()), f2(ms(r.wrk.P99US)), mib(r.peakRSSKB), f2(r.connsPer1k), ok)
		}
		fmt.Fprintf(sb, "## Many keep-alive clients (wrk -c%d, %v)\n\n", b.o.manyClients, b.o.extraDuration)
		t.write(sb)
	}
	if len(x.fixed) > 0 {
		t := table{head: []string{"candidate", "rate req/s", "requests", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "not the upstream's answer", "generator's worst lag ms"}}
		for _, r := range x.fixed {
			t.add(r.name, strconv.Itoa(r.rate), strconv.Itoa(r.sent), dms(r.p50), dms(r.p99), dms(r.p999), dms(r.worst), strconv.FormatInt(r.errors, 10), dms(r.maxLag))
		}
		fmt.Fprintf(sb, "## Latency at a fixed rate (open loop, %v, latency from each request's scheduled time)\n\n", b.o.extraDuration)
		t.write(sb)
	}
	b.writeSignins(sb)
	if len(x.flood) > 0 {
		t := table{head: []string{"candidate", "req/s before", "req/s during", "during / before", "peak RSS MiB", "sign-in attempts/s", "401 (password hashed)", "503 busy", "429 banned", "other", "no answer"}}
		for _, r := range x.flood {
			s := r.stats
			t.add(r.name, f0(r.before.rps()), f0(r.during.rps()), f2(r.during.rps()/r.before.rps()), mib(r.peakRSSKB),
				f0(float64(s.total())/s.elapsed.Seconds()), strconv.FormatInt(s.wrongPassword, 10), strconv.FormatInt(s.busy, 10),
				strconv.FormatInt(s.banned, 10), strconv.FormatInt(s.other, 10), strconv.FormatInt(s.transport, 10))
		}
		pace := "each client retries as soon as it is answered"
		if b.o.floodRetryAfter {
			pace = "each client waits out Retry-After"
		}
		fmt.Fprintf(sb, "## Wrong-password flood (%d concurrent sign-ins, each a new user name and X-Forwarded-For address, %s; wrk -c%d, %v each)\n\n", b.o.floodClients, pace, b.o.connections, b.o.extraDuration)
		t.write(sb)
	}
	if len(x.login) > 0 {
		t := table{head: []string{"candidate", "sign-ins", "password → first proxied byte (median) ms", "password POST ms", "code page + code POST ms", "proxied GET to first byte ms", "worst total ms", "first sign-in with TOTP enrolment (median) ms"}}
		for _, r := range x.login {
			t.add(r.name, strconv.Itoa(r.n), dms(r.total), dms(r.password), dms(r.code), dms(r.proxied), dms(r.totalMax), dms(r.enrolTotal))
		}
		sb.WriteString("## Sign-in to first proxied byte (password + TOTP, argon2id defaults)\n\n")
		t.write(sb)
	}
	for _, r := range x.footprint {
		if r.name == candRedis {
			t := table{head: []string{"sessions written", "session JSON bytes", "MEMORY USAGE of the real sign-in's session key", "MEMORY USAGE of written keys (mean)", "used_memory growth per session (with user indexes)", "write time"}}
			t.add(strconv.Itoa(r.sessions), strconv.Itoa(r.payload), f0(r.realKeyBytes), f0(r.sampleKeyBytes)+" (of "+strconv.Itoa(r.sampleKeys)+")", f0(r.redisBytesPerSess), r.write.Round(time.Millisecond).String())
			fmt.Fprintf(sb, "## Store footprint: Redis (%d sessions per user)\n\n", sessionsPerUser)
			t.write(sb)
		} else {
			per := func(a, b int64) string { return f0(float64(a-b) / float64(r.sessions)) }
			t := table{head: []string{"sessions written", "session JSON bytes", "file bytes before → after", "file bytes per session", "page bytes in use per session", "write time (tmpfs copy)"}}
			t.add(strconv.Itoa(r.sessions), strconv.Itoa(r.payload), strconv.FormatInt(r.fileBefore, 10)+" → "+strconv.FormatInt(r.fileAfter, 10),
				per(r.fileAfter, r.fileBefore), per(r.inuseAfter, r.inuseBefore), r.write.Round(time.Millisecond).String())
			fmt.Fprintf(sb, "## Store footprint: embedded bbolt file (%d sessions per user)\n\n", sessionsPerUser)
			t.write(sb)
		}
	}
}

// writeNotes says how the candidates were set up, so the numbers can be
// read without the code.
func (b *bench) writeNotes(sb *strings.Builder) {
	accessLog := "writes its access log (one line per request)"
	if !b.o.nginxLog {
		accessLog = "access log off"
	}
	aof := "no persistence"
	if b.o.redisAOF {
		aof = "appendonly yes (fsync every second)"
	}
	sb.WriteString("## Set-up\n\n")
	fmt.Fprintf(sb, "- nginx: plain reverse proxy, `worker_processes %s`, upstream `keepalive 1024` with HTTP/1.1, X-Forwarded-* set, %s.\n",
		map[bool]string{true: "1", false: "auto"}[b.o.pin], accessLog)
	sb.WriteString("- bare-proxy (`bench/bareproxy -style plain`, the baseline of every ratio to the bare proxy): what a Go user writes, `httputil.NewSingleHostReverseProxy(target)` (its Director adds X-Forwarded-For only) with a clone of `http.DefaultTransport` whose `MaxIdleConnsPerHost` is 1,024, a 16 KiB `sync.Pool` `BufferPool`, the default `FlushInterval`; no log, no checks.\n")
	sb.WriteString("- bare-proxy-tuned (`bench/bareproxy -style tuned`): authgate's own proxy settings without authgate: its Transport (1,024 idle connections per host, 4,096 in all, 90 s idle timeout, 10 s dial, 2 min response header timeout, no environment proxy), the same `BufferPool` and `FlushInterval`, and a `Rewrite` that rebuilds X-Forwarded-For/-Host/-Proto (`SetXForwarded`) and sends the upstream's Host.\n")
	metrics := "`metrics.listen` on a loopback port (the proxied requests are counted and timed in its metrics; the harness reads `go_memstats_alloc_bytes_total` and `go_memstats_mallocs_total` from it)"
	if !b.o.authgateMetrics {
		metrics = "no metrics (`-authgate-metrics=false`: allocations n/a)"
	}
	fmt.Fprintf(sb, "- authgate: `two_factor.mode: on`, one route with `policy: two_factor` and `allow.groups`, the user enrolled through the real sign-in pages; log level `%s`, JSON to a file; `trusted_proxies: [127.0.0.1]`; %s; every other key at its default (argon2id 64 MiB × 3, one hash per CPU, regulation 5 failures / 5 min).\n", b.o.logLevel, metrics)
	fmt.Fprintf(sb, "- redis-server: the harness's own, on a free port, %s; its CPU time counts towards authgate-redis.\n", aof)
	sb.WriteString("- nginx-auth-request: authgate as forward auth. nginx as above plus `auth_request` to an authgate of its own (the same config, embedded store) over kept connections (`keepalive 1024`, HTTP/1.1), the subrequest as `configs/nginx-auth-request.conf` sends it (`X-Original-URL`, no body), `Remote-User` from the answer sent to the panel. Its CPU is nginx's and that authgate's; RSS, allocations and cache are the authgate's, allocations per request are per authorisation. Checked at start: without the cookie nginx answers 401, so every request was asked about.\n")
	sb.WriteString("- CPU µs/req: utime+stime of the proxy's processes (nginx: master and worker) from /proc/PID/stat over the measured wrk run, divided by wrk's completed requests. New upstream connections: the upstream's count of accepted connections over the same run.\n")
	sb.WriteString("- alloc B/req, allocs/req: the Go process's cumulative heap allocations (runtime/metrics `/gc/heap/allocs:bytes`, and `/gc/heap/allocs:objects` + `/gc/heap/tiny/allocs:objects` = `MemStats.Mallocs`), read before and after the measured wrk run from the process itself (bareproxy: its `-stats` listener; authgate: its Prometheus metrics), less one reading's own cost (two readings back to back before the run), divided by wrk's completed requests. Everything the process allocates in the window counts (background work too); redis-server's memory is not included.\n")
	sb.WriteString("- Checks: before each run a request with the session cookie must get the upstream's 200 and exact body; after it wrk must report no status >= 400 and no socket error, and its byte count must equal whole upstream answers (a redirect to the login page would be far smaller); then a short wrk run checks the status and body length of every response.\n")
	sb.WriteString("- On two cores the load generators share CPU 1: during the flood the flood client and wrk compete for it.\n")
}

// writeRounds lists every measured round of every candidate, so a round
// that spiked is seen rather than hidden in a median.
func (b *bench) writeRounds(sb *strings.Builder) {
	t := table{head: []string{"round", "candidate", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "CPU µs/req", "cache resets (stalls)"}}
	for round := 1; round <= b.o.rounds; round++ {
		for _, c := range b.cands {
			rs := b.rounds[c.name]
			if round > len(rs) {
				continue
			}
			r := rs[round-1]
			cache := "n/a"
			if r.hasCache {
				cache = f0(r.cacheResets) + " (" + f0(r.cacheStalls) + ")"
			}
			t.add(strconv.Itoa(round), c.name, f0(r.wrk.rps()), f2(ms(r.wrk.P50US)), f2(ms(r.wrk.P99US)),
				f2(ms(r.wrk.P999US)), f2(ms(r.wrk.MaxUS)), f1(r.cpuUSPerRq), cache)
		}
	}
	fmt.Fprintf(sb, "## Every round (wrk -c%d, %v each, in the order run)\n\n", b.o.connections, b.o.duration)
	t.write(sb)
}
