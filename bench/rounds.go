package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// roundResult is one measured wrk run of one candidate.
type roundResult struct {
	round      int
	wrk        wrkResult
	cpuTicks   int64   // all processes
	procTicks  []int64 // per process of the candidate's cpuProcs
	cpuUSPerRq float64
	newConns   int64
	rssKB      int64
	hwmKB      int64
	// alloc is what the process allocated over the wrk run (hasAlloc:
	// read from a Go candidate); allocBPerRq and allocsPerRq per
	// completed request.
	hasAlloc                 bool
	alloc                    allocWindow
	allocBPerRq, allocsPerRq float64
	// hasCache: authgate's session cache resets and stalls over the run
	// were read (with the allocations).
	hasCache                 bool
	cacheResets, cacheStalls float64
}

func (r roundResult) connsPer1k() float64 {
	return float64(r.newConns) * 1000 / float64(r.wrk.Requests)
}

// measure runs one checked round: the verification request, wrk with
// CPU time and upstream connections counted around it, the totals
// check, then the short per-response check run.
func (b *bench) measure(ctx context.Context, c *candidate, round int, d time.Duration, conns int) (roundResult, error) {
	res := roundResult{round: round}
	if err := verify(c, b.up.body); err != nil {
		return res, err
	}
	// Two allocation readings back to back: the second starts the window,
	// their difference is what one reading costs the process (subtracted).
	var a0, a1, a2 allocTotals
	if c.alloc != nil {
		var err error
		if a0, err = c.alloc.read(); err != nil {
			return res, c.main.failure(err)
		}
		if a1, err = c.alloc.read(); err != nil {
			return res, c.main.failure(err)
		}
	}
	t0, err := c.cpuTicks()
	if err != nil {
		return res, err
	}
	s0, err := b.up.stats()
	if err != nil {
		return res, err
	}
	w, err := b.wrk.run(ctx, c, conns, d)
	if err != nil {
		return res, err
	}
	t1, err := c.cpuTicks()
	if err != nil {
		return res, err
	}
	s1, err := b.up.stats()
	if err != nil {
		return res, err
	}
	if c.alloc != nil {
		if a2, err = c.alloc.read(); err != nil {
			return res, c.main.failure(err)
		}
	}
	res.rssKB, res.hwmKB, err = memKB(c.main.pid())
	if err != nil {
		return res, c.main.failure(err)
	}
	if err := w.validate(c, conns); err != nil {
		return res, err
	}
	if b.o.checkDuration > 0 {
		if err := b.wrk.check(ctx, c, conns, b.o.checkDuration, len(b.up.body)); err != nil {
			return res, err
		}
	}
	res.wrk = w
	res.procTicks = make([]int64, len(t0))
	for i := range t0 {
		res.procTicks[i] = t1[i] - t0[i]
		res.cpuTicks += res.procTicks[i]
	}
	res.cpuUSPerRq = float64(res.cpuTicks) * 1e6 / float64(b.ticksPerSec) / float64(w.Requests)
	res.newConns = s1.NewConns - s0.NewConns
	if c.alloc != nil {
		res.hasAlloc = true
		res.alloc = newAllocWindow(a0, a1, a2)
		res.allocBPerRq = res.alloc.bytes / float64(w.Requests)
		res.allocsPerRq = res.alloc.objects / float64(w.Requests)
		if a1.hasCache && a2.hasCache {
			res.hasCache = true
			res.cacheResets = a2.cacheResets - a1.cacheResets
			res.cacheStalls = a2.cacheStalls - a1.cacheStalls
		}
	}
	return res, nil
}

// runRounds warms every candidate up, then measures them interleaved:
// A B C D, A B C D, ...
func (b *bench) runRounds(ctx context.Context) error {
	for _, c := range b.cands {
		if err := verify(c, b.up.body); err != nil {
			return err
		}
		b.logf("warm-up %s (%v)", c.name, b.o.warmup)
		w, err := b.wrk.run(ctx, c, b.o.connections, b.o.warmup)
		if err != nil {
			return err
		}
		if err := w.validate(c, b.o.connections); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	for round := 1; round <= b.o.rounds; round++ {
		for _, c := range b.cands {
			r, err := b.measure(ctx, c, round, b.o.duration, b.o.connections)
			if err != nil {
				return fmt.Errorf("round %d: %w", round, err)
			}
			b.rounds[c.name] = append(b.rounds[c.name], r)
			alloc := ""
			if r.hasAlloc {
				alloc = fmt.Sprintf("  %6.0f alloc B/req  %5.1f allocs/req (one reading: %.0f B, %.0f objects)",
					r.allocBPerRq, r.allocsPerRq, r.alloc.scrapeBytes, r.alloc.scrapeObjs)
			}
			b.logf("round %d/%d %-18s %8.0f req/s  p50 %5.2f ms  p99 %5.2f ms  max %6.2f ms  %6.1f µs CPU/req  %5.2f upstream conns/1k%s",
				round, b.o.rounds, c.name, r.wrk.rps(), ms(r.wrk.P50US), ms(r.wrk.P99US), ms(r.wrk.MaxUS), r.cpuUSPerRq, r.connsPer1k(), alloc)
		}
	}
	return nil
}

// summary aggregates a candidate's rounds.
type summary struct {
	name                 string
	rounds               int
	rps, rpsMin, rpsMax  float64
	p50US, p99US         float64 // medians over rounds
	worstP99US           float64 // the highest round's
	cpuUS                float64 // median over rounds
	connsPer1k           float64 // over all rounds
	rssKB, hwmKB         int64   // largest seen after a round
	requests, totalConns int64
	// hasAlloc: every round has allocations; allocB and allocs per
	// request are medians over rounds.
	hasAlloc       bool
	allocB, allocs float64
	// hasCache: every round read the session cache's counters; resets
	// and stalls per minute of load over all rounds.
	hasCache                             bool
	cacheResetsPerMin, cacheStallsPerMin float64
}

func summarize(name string, rs []roundResult) summary {
	s := summary{name: name, rounds: len(rs)}
	if len(rs) == 0 {
		return s
	}
	var rps, p50, p99, cpu, allocB, allocs []float64
	s.hasAlloc = true
	s.hasCache = true
	var resets, stalls, minutes float64
	for _, r := range rs {
		s.hasCache = s.hasCache && r.hasCache
		resets += r.cacheResets
		stalls += r.cacheStalls
		minutes += time.Duration(r.wrk.DurationUS * int64(time.Microsecond)).Minutes()
		s.hasAlloc = s.hasAlloc && r.hasAlloc
		allocB = append(allocB, r.allocBPerRq)
		allocs = append(allocs, r.allocsPerRq)
		rps = append(rps, r.wrk.rps())
		p50 = append(p50, float64(r.wrk.P50US))
		p99 = append(p99, float64(r.wrk.P99US))
		cpu = append(cpu, r.cpuUSPerRq)
		s.requests += r.wrk.Requests
		s.totalConns += r.newConns
		s.rssKB = max(s.rssKB, r.rssKB)
		s.hwmKB = max(s.hwmKB, r.hwmKB)
	}
	s.rps, s.rpsMin, s.rpsMax = median(rps), slices.Min(rps), slices.Max(rps)
	s.p50US, s.p99US, s.cpuUS = median(p50), median(p99), median(cpu)
	s.worstP99US = slices.Max(p99)
	s.connsPer1k = float64(s.totalConns) * 1000 / float64(s.requests)
	if s.hasAlloc {
		s.allocB, s.allocs = median(allocB), median(allocs)
	}
	if s.hasCache && minutes > 0 {
		s.cacheResetsPerMin, s.cacheStallsPerMin = resets/minutes, stalls/minutes
	}
	return s
}

// pairedRatios returns a/b of req/s per round (both measured in the same
// round, moments apart), for the spread of a ratio.
func pairedRatios(a, b []roundResult) []float64 {
	return pairedRatiosOf(a, b, func(r roundResult) float64 { return r.wrk.rps() })
}

// pairedRatiosOf returns a/b of one value per round.
func pairedRatiosOf(a, b []roundResult, v func(roundResult) float64) []float64 {
	var out []float64
	for i := range min(len(a), len(b)) {
		if vb := v(b[i]); vb > 0 {
			out = append(out, v(a[i])/vb)
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ms(us int64) float64 { return float64(us) / 1000 }
