package main

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Names of the extra measurements (-extras).
const (
	extraManyClients = "many-clients"       // RSS at 1,000 keep-alive clients
	extraFixedRate   = "fixed-rate"         // latency at a fixed rate (open loop)
	extraSignins     = "signins-under-load" // peak RSS of sign-ins during traffic
	extraFlood       = "flood"              // wrong-password flood during traffic
	extraLogin       = "login"              // sign-in to first proxied byte
	extraFootprint   = "footprint"          // store bytes per session
)

// extraResults collects the extra measurements for the report.
type extraResults struct {
	many      []manyResult
	fixed     []fixedResult
	signins   []signinLoadResult
	flood     []floodResult
	login     []loginResult
	footprint []footprintResult
}

// runExtras runs the selected extras in an order where none disturbs
// the next: the sign-ins under load run before the flood (whose freed
// hashing memory would count as their "load only" peak), the footprint
// stops authgate-embedded and fills Redis, so it runs last.
func (b *bench) runExtras(ctx context.Context) error {
	has := func(n string) bool { return slices.Contains(b.o.extras, n) }
	if has(extraManyClients) {
		for _, c := range b.cands {
			r, err := b.manyClients(ctx, c)
			if err != nil {
				return err
			}
			b.extra.many = append(b.extra.many, r)
		}
	}
	if has(extraFixedRate) {
		for _, c := range b.cands {
			r, err := b.fixedRate(ctx, c)
			if err != nil {
				return err
			}
			b.extra.fixed = append(b.extra.fixed, r)
		}
	}
	if has(extraSignins) {
		if err := b.runSigninsUnderLoad(ctx); err != nil {
			return err
		}
	}
	for _, c := range b.cands {
		if !c.isAuthgate() {
			continue
		}
		if has(extraFlood) {
			r, err := b.flood(ctx, c)
			if err != nil {
				return err
			}
			b.extra.flood = append(b.extra.flood, r)
		}
		if has(extraLogin) {
			r, err := b.loginLatency(ctx, c)
			if err != nil {
				return err
			}
			b.extra.login = append(b.extra.login, r)
		}
	}
	if has(extraFootprint) {
		for _, c := range b.cands {
			if !c.isAuthgate() {
				continue
			}
			r, err := b.footprint(ctx, c)
			if err != nil {
				return err
			}
			b.extra.footprint = append(b.extra.footprint, r)
		}
	}
	return nil
}

// rssSampler records the largest VmRSS of a process tree while it runs.
type rssSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak int64
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss, _, err := memKB(pid); err == nil {
				s.peak = max(s.peak, rss)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// done stops sampling and returns the peak in KiB.
func (s *rssSampler) done() int64 {
	close(s.stop)
	s.wg.Wait()
	return s.peak
}

// peakDuring resets the process's VmHWM, runs fn while sampling VmRSS,
// and returns the larger of the sampled peak and VmHWM (the kernel's
// exact high-water mark when the reset worked).
func peakDuring(pid int, fn func() error) (int64, error) {
	_ = resetPeakRSS(pid) // without it VmHWM may predate fn; the samples still count
	s := sampleRSS(pid, 50*time.Millisecond)
	err := fn()
	peak := s.done()
	if _, hwm, herr := memKB(pid); herr == nil {
		peak = max(peak, hwm)
	}
	return peak, err
}
