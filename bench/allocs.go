package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// allocTotals are a Go process's cumulative heap allocations since it
// started: bytes (runtime/metrics /gc/heap/allocs:bytes) and objects
// (/gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects, which is
// runtime.MemStats.Mallocs and client_golang's go_memstats_mallocs_total).
type allocTotals struct {
	bytes, objects float64
	// hasCache: authgate's session cache counters were read too: its
	// resets (every cause) and stalls since start.
	hasCache                 bool
	cacheResets, cacheStalls float64
}

// allocSource reads a Go candidate's allocation totals from the process
// itself: bench/bareproxy's -stats listener (JSON of runtime/metrics
// values) or authgate's metrics listener (Prometheus text, the Go
// collector's go_memstats_alloc_bytes_total and go_memstats_mallocs_total).
type allocSource struct {
	url  string
	prom bool
}

func (a *allocSource) read() (allocTotals, error) {
	req, err := http.NewRequest(http.MethodGet, a.url, nil)
	if err != nil {
		return allocTotals{}, err
	}
	// Uncompressed: a gzip writer would cost the process more than the
	// exposition itself (about 1 MB per reading of authgate's metrics).
	req.Header.Set("Accept-Encoding", "identity")
	res, err := statsClient.Do(req)
	if err != nil {
		return allocTotals{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return allocTotals{}, fmt.Errorf("GET %s: %s", a.url, res.Status)
	}
	if a.prom {
		return parsePromAllocs(res.Body)
	}
	return parseRuntimeAllocs(res.Body)
}

// parseRuntimeAllocs reads bench/bareproxy's GET /stats.
func parseRuntimeAllocs(r io.Reader) (allocTotals, error) {
	var m map[string]uint64
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return allocTotals{}, err
	}
	b, ok1 := m["/gc/heap/allocs:bytes"]
	o, ok2 := m["/gc/heap/allocs:objects"]
	t, ok3 := m["/gc/heap/tiny/allocs:objects"]
	if !ok1 || !ok2 || !ok3 {
		return allocTotals{}, fmt.Errorf("stats %v: a runtime/metrics value is missing", m)
	}
	return allocTotals{bytes: float64(b), objects: float64(o + t)}, nil
}

// parsePromAllocs reads the two Go collector counters from a Prometheus
// text exposition, and authgate's session cache counters when present
// (resets summed over their causes).
func parsePromAllocs(r io.Reader) (allocTotals, error) {
	var t allocTotals
	var memstats int
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		wanted := name == "go_memstats_alloc_bytes_total" || name == "go_memstats_mallocs_total" ||
			name == "authgate_cache_stalls_total" || strings.HasPrefix(name, "authgate_cache_resets_total{")
		if !ok || !wanted {
			continue // other series, comments; labels may hold spaces
		}
		f := strings.Fields(val) // value [timestamp]
		if len(f) == 0 {
			return t, fmt.Errorf("%s: no value", name)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return t, fmt.Errorf("%s: %w", name, err)
		}
		switch {
		case name == "go_memstats_alloc_bytes_total":
			t.bytes = v
			memstats++
		case name == "go_memstats_mallocs_total":
			t.objects = v
			memstats++
		case strings.HasPrefix(name, "authgate_cache_resets_total{"):
			t.cacheResets += v // one series per cause
		case name == "authgate_cache_stalls_total":
			t.hasCache = true
			t.cacheStalls = v
		}
	}
	if err := sc.Err(); err != nil {
		return t, err
	}
	if memstats != 2 {
		return t, fmt.Errorf("go_memstats_alloc_bytes_total or go_memstats_mallocs_total missing from the metrics")
	}
	return t, nil
}

// allocWindow is what a process allocated between two readings, less
// what one reading itself costs (scrape: the difference of two readings
// back to back, taken just before the window).
type allocWindow struct {
	bytes, objects          float64
	scrapeBytes, scrapeObjs float64
}

func newAllocWindow(calib0, start, end allocTotals) allocWindow {
	w := allocWindow{scrapeBytes: start.bytes - calib0.bytes, scrapeObjs: start.objects - calib0.objects}
	w.bytes = max(0, end.bytes-start.bytes-w.scrapeBytes)
	w.objects = max(0, end.objects-start.objects-w.scrapeObjs)
	return w
}
