package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPickListKeepsKnownOrderAndRejectsUnknown(t *testing.T) {
	got, err := pickList("authgate-redis, nginx,nginx", allCandidates, "-candidates")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "nginx,authgate-redis" {
		t.Fatalf("got %v", got)
	}
	if _, err := pickList("nginx,haproxy", allCandidates, "-candidates"); err == nil || !strings.Contains(err.Error(), `"haproxy"`) {
		t.Fatalf("unknown candidate: err = %v", err)
	}
}

func TestValidateCatchesAnswersThatAreNotTheUpstreams(t *testing.T) {
	c := &candidate{name: "x", expectBytes: 1200}
	ok := wrkResult{Requests: 1000, Bytes: 1000 * 1200}
	if err := ok.validate(c, 64); err != nil {
		t.Fatalf("exact bytes: %v", err)
	}
	partial := ok
	partial.Bytes += 3 * 700 // three responses cut off when the run stopped
	if err := partial.validate(c, 64); err != nil {
		t.Fatalf("partial last responses: %v", err)
	}
	redirects := ok
	redirects.Bytes -= 10 * (1200 - 250) // ten 302s to the login page
	if err := redirects.validate(c, 64); err == nil {
		t.Fatal("login redirects passed the byte check")
	}
	for _, bad := range []wrkResult{
		{Requests: 1000, Bytes: 1000 * 1200, Status: 1},
		{Requests: 1000, Bytes: 1000 * 1200, Read: 1},
		{Requests: 1000, Bytes: 1000 * 1200, Timeout: 2},
		{Requests: 0},
	} {
		if err := bad.validate(c, 64); err == nil {
			t.Fatalf("%+v passed", bad)
		}
	}
}

func TestVerifyWantsTheUpstreamsExactAnswer(t *testing.T) {
	body := []byte(strings.Repeat("a", 1024))
	var cookie atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cookie.Store(r.Header.Get("Cookie"))
		if r.Header.Get("Cookie") == "" {
			http.Redirect(w, r, "/.authgate/login", http.StatusFound)
			return
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	c := &candidate{name: "x", addr: strings.TrimPrefix(srv.URL, "http://"), cookie: "s=1"}
	if err := verify(c, body); err != nil {
		t.Fatal(err)
	}
	if got, _ := cookie.Load().(string); got != "s=1" {
		t.Fatalf("cookie sent %q", got)
	}
	// Status line, Content-Length, Content-Type, Date, blank line, body.
	if c.expectBytes <= len(body)+60 || c.expectBytes > len(body)+200 {
		t.Fatalf("expectBytes %d for a %d-byte body", c.expectBytes, len(body))
	}
	c.cookie = ""
	if err := verify(c, body); err == nil || !strings.Contains(err.Error(), "status 302") {
		t.Fatalf("redirect: err = %v", err)
	}
	if err := verify(&candidate{name: "x", addr: c.addr, cookie: "s=1"}, body[:1000]); err == nil {
		t.Fatal("a different body passed")
	}
}

func TestPercentileAndMedian(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 500 * time.Millisecond}, {99, 990 * time.Millisecond}, {99.9, 999 * time.Millisecond}, {100, time.Second}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if m := median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

func TestProcReadersSeeThisProcess(t *testing.T) {
	before, err := cpuTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for i := range 1_000_000 {
			x += i
		}
		after, err := cpuTicks(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU ticks stayed at %d while spinning (%d)", before, x)
		}
	}
	rss, hwm, err := memKB(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Fatalf("rss %d hwm %d err %v", rss, hwm, err)
	}
}

func TestWrkDurationIsWholeSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{10 * time.Second: "10s", 1500 * time.Millisecond: "2s", 200 * time.Millisecond: "1s"} {
		if got := wrkDuration(d); got != want {
			t.Errorf("wrkDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
