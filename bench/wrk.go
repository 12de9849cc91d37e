package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// summaryLua reports wrk's exact totals and latency percentiles as one
// JSON line. It defines no per-request callback, so it costs wrk nothing
// while the round runs.
const summaryLua = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests":%d,"bytes":%d,"duration_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
`

// checkLua looks at every response (status and body length): too slow
// for the measured rounds, so it runs in a short separate run after each.
const checkLua = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  want = tonumber(args[1])
  ok, bad_status, bad_length = 0, 0, 0
end
function response(status, headers, body)
  if status ~= 200 then bad_status = bad_status + 1
  elseif #body ~= want then bad_length = bad_length + 1
  else ok = ok + 1 end
end
function done(summary, latency, requests)
  local o, s, l = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); s = s + t:get("bad_status"); l = l + t:get("bad_length")
  end
  local e = summary.errors
  io.write(string.format('BENCHCHECK {"ok":%d,"bad_status":%d,"bad_length":%d,"requests":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    o, s, l, summary.requests, e.connect, e.read, e.write, e.timeout))
end
`

// wrkRunner runs wrk pinned to the load CPU.
type wrkRunner struct {
	bin, taskset           string
	summaryPath, checkPath string
	timeout                time.Duration
}

func newWrkRunner(dir, bin, taskset string) (*wrkRunner, error) {
	w := &wrkRunner{bin: bin, taskset: taskset,
		summaryPath: filepath.Join(dir, "summary.lua"), checkPath: filepath.Join(dir, "check.lua"),
		timeout: 5 * time.Second}
	if err := os.WriteFile(w.summaryPath, []byte(summaryLua), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(w.checkPath, []byte(checkLua), 0o644); err != nil {
		return nil, err
	}
	return w, nil
}

// wrkResult is the JSON the summary script prints.
type wrkResult struct {
	Requests   int64   `json:"requests"`
	Bytes      int64   `json:"bytes"`
	DurationUS int64   `json:"duration_us"`
	Connect    int64   `json:"connect"`
	Read       int64   `json:"read"`
	Write      int64   `json:"write"`
	Status     int64   `json:"status"`
	Timeout    int64   `json:"timeout"`
	P50US      int64   `json:"p50_us"`
	P90US      int64   `json:"p90_us"`
	P99US      int64   `json:"p99_us"`
	P999US     int64   `json:"p999_us"`
	MaxUS      int64   `json:"max_us"`
	MeanUS     float64 `json:"mean_us"`
}

func (r wrkResult) rps() float64 {
	if r.DurationUS <= 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

func (r wrkResult) socketErrors() int64 { return r.Connect + r.Read + r.Write + r.Timeout }

// checkResult is the JSON the check script prints.
type checkResult struct {
	OK        int64 `json:"ok"`
	BadStatus int64 `json:"bad_status"`
	BadLength int64 `json:"bad_length"`
	Requests  int64 `json:"requests"`
	Connect   int64 `json:"connect"`
	Read      int64 `json:"read"`
	Write     int64 `json:"write"`
	Timeout   int64 `json:"timeout"`
}

func (w *wrkRunner) args(c *candidate, conns int, d time.Duration, script string) []string {
	a := []string{w.bin, "-t1", "-c" + strconv.Itoa(conns), "-d" + wrkDuration(d),
		"--timeout", wrkDuration(w.timeout), "-s", script}
	if c.cookie != "" {
		a = append(a, "-H", "Cookie: "+c.cookie)
	}
	a = append(a, c.url("/"))
	if w.taskset != "" {
		a = append([]string{w.taskset, "-c", strconv.Itoa(loadCPU)}, a...)
	}
	return a
}

// wrkDuration formats d for wrk, which takes whole units ("10s", "500ms"
// is not understood by every version, so milliseconds become seconds).
func wrkDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	return strconv.FormatInt(max(s, 1), 10) + "s"
}

func (w *wrkRunner) exec(ctx context.Context, argv []string, marker string, out any) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("wrk: %w: %s%s", err, stderr.String(), stdout.String())
	}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if j, ok := strings.CutPrefix(line, marker+" "); ok {
			if err := json.Unmarshal([]byte(j), out); err != nil {
				return fmt.Errorf("wrk output %q: %w", j, err)
			}
			return nil
		}
	}
	return fmt.Errorf("wrk printed no %s line: %s%s", marker, stdout.String(), stderr.String())
}

// run is a measured wrk run.
func (w *wrkRunner) run(ctx context.Context, c *candidate, conns int, d time.Duration) (wrkResult, error) {
	var r wrkResult
	err := w.exec(ctx, w.args(c, conns, d, w.summaryPath), "BENCHJSON", &r)
	return r, err
}

// check runs wrk with the per-response check and fails unless every
// response was a 200 with the upstream's body length and no socket
// error happened.
func (w *wrkRunner) check(ctx context.Context, c *candidate, conns int, d time.Duration, bodyLen int) error {
	argv := append(w.args(c, conns, d, w.checkPath), "--", strconv.Itoa(bodyLen))
	var r checkResult
	if err := w.exec(ctx, argv, "BENCHCHECK", &r); err != nil {
		return err
	}
	if r.OK == 0 || r.BadStatus != 0 || r.BadLength != 0 || r.Connect+r.Read+r.Write+r.Timeout != 0 {
		return fmt.Errorf("checked run against %s: %d good responses, %d with another status, %d with another body length, socket errors connect %d read %d write %d timeout %d",
			c.name, r.OK, r.BadStatus, r.BadLength, r.Connect, r.Read, r.Write, r.Timeout)
	}
	return nil
}

// validate checks a measured run's totals: no error of any kind and a
// byte count that only whole upstream answers explain (a redirect to the
// login page is a 3xx that wrk does not count as an error, but it is far
// smaller than the expected answer).
func (r wrkResult) validate(c *candidate, conns int) error {
	if r.Requests == 0 {
		return fmt.Errorf("%s: wrk completed no request", c.name)
	}
	if r.Status != 0 || r.socketErrors() != 0 {
		return fmt.Errorf("%s: %d responses with status >= 400, socket errors connect %d read %d write %d timeout %d",
			c.name, r.Status, r.Connect, r.Read, r.Write, r.Timeout)
	}
	want := r.Requests * int64(c.expectBytes)
	// Each connection may have read part of one more response when the
	// run stopped.
	if r.Bytes < want || r.Bytes > want+int64(conns*c.expectBytes) {
		return fmt.Errorf("%s: wrk read %d bytes for %d responses, want %d (%d per response): some answers were not the upstream's",
			c.name, r.Bytes, r.Requests, want, c.expectBytes)
	}
	return nil
}
