package testkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stamps records, per request index, when the server had the whole
// request.
type stamps struct {
	mu sync.Mutex
	at map[int]time.Time
}

func (s *stamps) set(i int, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[int]time.Time{}
	}
	s.at[i] = t
}

func (s *stamps) get(i int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.at[i]
	return t, ok
}

// POSTs with bodies and GETs without: no request is complete on the
// server before the release, every answer comes back to its own request,
// and a check-then-act handler (read a flag, work, set it) is entered by
// several requests before the first one sets the flag: the race the
// barrier exists to expose.
func TestBurstArrivesTogether(t *testing.T) {
	const n = 100
	var seen stamps
	var used atomic.Bool
	var winners atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("i"))
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		seen.set(i, time.Now())
		// Check, then act after a while: whoever checked before the
		// first act "wins".
		if !used.Load() {
			time.Sleep(20 * time.Millisecond)
			winners.Add(1)
			used.Store(true)
		}
		fmt.Fprintf(w, "req %d %s %s", i, r.Method, r.PostFormValue("v"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			used.Store(false)
			winners.Store(0)
			reqs := make([][]byte, n)
			for i := range reqs {
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader("v=" + strings.Repeat("x", i+1))
				}
				r, err := http.NewRequest(method, srv.URL+"/?i="+strconv.Itoa(i), body)
				if err != nil {
					t.Fatal(err)
				}
				if body != nil {
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				if reqs[i], err = RawRequest(r); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Burst(addr, reqs, BurstOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Responses) != n {
				t.Fatalf("%d answers, want %d", len(res.Responses), n)
			}
			for i, r := range res.Responses {
				want := fmt.Sprintf("req %d %s ", i, method)
				if method == http.MethodPost {
					want += strings.Repeat("x", i+1)
				}
				if r.Err != nil || r.Status != http.StatusOK || r.Body != want {
					t.Fatalf("answer %d: status %d, body %q, err %v; want 200 %q", i, r.Status, r.Body, r.Err, want)
				}
				at, ok := seen.get(i)
				if !ok {
					t.Fatalf("request %d never reached the handler", i)
				}
				if at.Before(res.Released) {
					t.Fatalf("request %d was complete on the server %v before the release", i, res.Released.Sub(at))
				}
			}
			if res.Spread > time.Second {
				t.Errorf("the last bytes took %v to write", res.Spread)
			}
			if w := winners.Load(); w < 2 {
				t.Errorf("only %d request(s) got through the check before the first act; the requests did not arrive together", w)
			}
			t.Logf("%s: %d requests released within %v, %d through the check-then-act window", method, n, res.Spread, winners.Load())
		})
	}
}

// Sent one after another, the same check-then-act handler lets exactly
// one request through: the test above measures the barrier, not the
// handler.
func TestBurstControlSequential(t *testing.T) {
	var used atomic.Bool
	var winners atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !used.Load() {
			time.Sleep(20 * time.Millisecond)
			winners.Add(1)
			used.Store(true)
		}
	}))
	defer srv.Close()
	for range 20 {
		res, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if w := winners.Load(); w != 1 {
		t.Fatalf("%d requests through the window one after another, want 1", w)
	}
}

// AtRelease runs as the last bytes go out; answers that never come (the
// server closes the connection) are reported per request, not as a
// failed burst; set-up failures are errors.
func TestBurstReleaseHookAndFailures(t *testing.T) {
	var hookAt atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hangup" {
			hj, _ := w.(http.Hijacker)
			c, _, err := hj.Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	raw := func(path string) []byte {
		r, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		b, err := RawRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "Connection: close\r\n") {
			t.Fatalf("RawRequest without Connection: close: %q", b)
		}
		return b
	}
	res, err := Burst(addr, [][]byte{raw("/ok"), raw("/hangup")}, BurstOptions{AtRelease: func() { hookAt.Store(time.Now().UnixNano()) }})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Responses[0]; r.Status != http.StatusNoContent || r.Err != nil {
		t.Fatalf("answer 0: %d %v", r.Status, r.Err)
	}
	if r := res.Responses[1]; r.Status != 0 || r.Err == nil {
		t.Fatalf("hung-up request: status %d, err %v; want no answer and an error", r.Status, r.Err)
	}
	if at := hookAt.Load(); at == 0 {
		t.Fatal("AtRelease did not run")
	} else if d := time.Duration(at - res.Released.UnixNano()); d < -time.Second || d > time.Second {
		t.Fatalf("AtRelease ran %v from the release", d)
	}

	if _, err := Burst(addr, [][]byte{[]byte("G")}, BurstOptions{}); err == nil {
		t.Fatal("a one-byte request was accepted")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, err := Burst(closed, [][]byte{raw("/ok")}, BurstOptions{}); err == nil {
		t.Fatal("a burst to a closed port did not fail")
	}
}
