package main

import (
	"strings"
	"testing"
)

func TestParsePromAllocs(t *testing.T) {
	text := `# HELP go_memstats_alloc_bytes_total Total number of bytes allocated in heap until now.
# TYPE go_memstats_alloc_bytes_total counter
go_memstats_alloc_bytes_total 1.234567891e+09
go_memstats_alloc_bytes 4.5e+06
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 987654
go_memstats_frees_total 900000
`
	got, err := parsePromAllocs(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got.bytes != 1234567891 || got.objects != 987654 {
		t.Fatalf("got %+v", got)
	}
	if _, err := parsePromAllocs(strings.NewReader("go_memstats_alloc_bytes_total 1\n")); err == nil {
		t.Fatal("missing mallocs_total accepted")
	}
	if got.hasCache {
		t.Fatal("cache counters read from an exposition without them")
	}
	withCache := text + `authgate_route_requests_total{route="my panel"} 12
authgate_cache_resets_total{cause="subscribed"} 1
authgate_cache_resets_total{cause="silent"} 2
authgate_cache_stalls_total 7
`
	got, err = parsePromAllocs(strings.NewReader(withCache))
	if err != nil {
		t.Fatal(err)
	}
	if !got.hasCache || got.cacheResets != 3 || got.cacheStalls != 7 {
		t.Fatalf("cache counters %+v", got)
	}
}

func TestParseRuntimeAllocsCountsTinyAllocations(t *testing.T) {
	got, err := parseRuntimeAllocs(strings.NewReader(`{"/gc/heap/allocs:bytes":1000,"/gc/heap/allocs:objects":10,"/gc/heap/tiny/allocs:objects":5}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.bytes != 1000 || got.objects != 15 {
		t.Fatalf("got %+v", got)
	}
	if _, err := parseRuntimeAllocs(strings.NewReader(`{"/gc/heap/allocs:bytes":1000}`)); err == nil {
		t.Fatal("missing objects accepted")
	}
}

func TestAllocWindowSubtractsOneReading(t *testing.T) {
	w := newAllocWindow(allocTotals{bytes: 1000, objects: 10}, allocTotals{bytes: 1300, objects: 13}, allocTotals{bytes: 101300, objects: 1013})
	if w.scrapeBytes != 300 || w.scrapeObjs != 3 || w.bytes != 99700 || w.objects != 997 {
		t.Fatalf("got %+v", w)
	}
}

func TestDefaultCandidates(t *testing.T) {
	o, err := parseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.candidates, ",") != "nginx,bare-proxy,bare-proxy-tuned,authgate-embedded,authgate-redis,nginx-auth-request" {
		t.Fatalf("default candidates %v", o.candidates)
	}
	if o, err = parseOptions([]string{"-candidates", "bare-proxy-tuned,bare-proxy"}); err != nil || strings.Join(o.candidates, ",") != "bare-proxy,bare-proxy-tuned" {
		t.Fatalf("%v %v", o.candidates, err)
	}
}
