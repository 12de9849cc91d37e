package server_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/authgate/authgate/gateway/config"
)

// scrape fetches the metrics listener's /metrics over HTTP and parses
// the text exposition.
func scrape(t *testing.T, g *gateway) map[string]*dto.MetricFamily {
	t.Helper()
	addr := g.srv.MetricsAddr()
	if addr == nil {
		t.Fatal("metrics are on but there is no metrics listener")
	}
	res, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// value returns the value of the series of name whose labels include
// want, and whether it exists.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func metricsGateway(t *testing.T) *gateway {
	t.Helper()
	g := startGatewayWith(t, gwOpts{mode: "required"}, func(c *config.Config) {
		c.Metrics.Listen = "127.0.0.1:0"
	})
	return served(t, g)
}

// A failed and a successful sign-in, a proxied request and a replayed
// code show up, with the right values, in a scrape of the separate
// metrics listener.
func TestMetricsScrape(t *testing.T) {
	g := metricsGateway(t)
	g.addUser(t, "alice", "correct horse")

	bad := g.browser(t)
	r := bad.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"wrong"}})
	mustStatus(t, r, http.StatusUnauthorized, "wrong password")

	b := g.browser(t)
	secret := enroll(t, g, b) // password ok, one wrong enrolment code, then the right one
	mustStatus(t, b.get("/dashboard"), http.StatusOK, "proxied request")

	// The code just used at enrolment, again: a replay.
	b2, tok := pendingVerify(t, g)
	r = b2.do("POST", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, g.clock.Now())}, "csrf_token": {tok}}, nil)
	mustStatus(t, r, http.StatusUnauthorized, "replayed code")

	fams := scrape(t, g)
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"authgate_login_attempts_total", map[string]string{"factor": "password", "result": "failure"}, 1},
		{"authgate_login_attempts_total", map[string]string{"factor": "password", "result": "success"}, 2},
		{"authgate_login_attempts_total", map[string]string{"factor": "enroll", "result": "failure"}, 1},
		{"authgate_login_attempts_total", map[string]string{"factor": "enroll", "result": "success"}, 1},
		{"authgate_login_attempts_total", map[string]string{"factor": "totp", "result": "failure"}, 1},
		{"authgate_login_attempts_total", map[string]string{"factor": "totp", "result": "success"}, 0},
		{"authgate_login_attempts_total", map[string]string{"factor": "password", "result": "banned"}, 0},
		{"authgate_totp_replays_refused_total", nil, 1},
		{"authgate_bans_started_total", map[string]string{"kind": "ip"}, 0},
		{"authgate_proxy_requests_total", map[string]string{"route": "panel", "status_class": "2xx"}, 1},
		{"authgate_proxy_request_duration_seconds", map[string]string{"route": "panel"}, 1},
		{"authgate_proxy_upstream_errors_total", map[string]string{"route": "panel"}, 0},
		{"authgate_sessions_active", map[string]string{"stage": "full"}, 1},
		{"authgate_sessions_active", map[string]string{"stage": "pending"}, 1},
		{"authgate_totp_drift_estimate_seconds", nil, 0},
	}
	for _, w := range want {
		got, ok := value(fams, w.name, w.labels)
		if !ok {
			t.Errorf("%s%v: no series", w.name, w.labels)
			continue
		}
		if got != w.value {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.value)
		}
	}
	if n, ok := value(fams, "authgate_store_operation_duration_seconds", map[string]string{"op": "get_user"}); !ok || n == 0 {
		t.Errorf("store get_user latency not observed (%v, %v)", n, ok)
	}
	if f := fams["authgate_store_errors_total"]; f != nil {
		t.Errorf("store errors counted on a healthy store: %v", f)
	}
	// No NTP servers configured, no TLS: those series have no sample.
	for _, name := range []string{"authgate_clock_offset_seconds", "authgate_tls_certificate_expiry_timestamp_seconds"} {
		if fams[name] != nil {
			t.Errorf("%s has samples: %v", name, fams[name])
		}
	}
	if fams["go_goroutines"] == nil || fams["process_start_time_seconds"] == nil {
		t.Error("runtime and process metrics missing")
	}
}

// The gateway's own listener never serves the metrics: /metrics there is
// an ordinary, gated path.
func TestMetricsNotOnMainListener(t *testing.T) {
	g := metricsGateway(t)
	for _, accept := range []string{"text/html", "*/*"} {
		req, _ := http.NewRequest("GET", g.URL+"/metrics", nil)
		req.Header.Set("Accept", accept)
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusUnauthorized {
			t.Errorf("main listener /metrics (Accept %s): status %d, want a challenge", accept, res.StatusCode)
		}
		if strings.Contains(string(body), "authgate_") || strings.Contains(string(body), "# HELP") {
			t.Errorf("main listener served metrics: %.300s", body)
		}
	}
	// And the metrics listener serves nothing else: no gateway page.
	res, err := http.Get("http://" + g.srv.MetricsAddr().String() + "/.authgate/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("metrics listener /.authgate/login: status %d, want 404", res.StatusCode)
	}
}

// Metrics are off unless metrics.listen is set: no listener at all.
func TestMetricsOffByDefault(t *testing.T) {
	g := served(t, startGateway(t, gwOpts{mode: "required"}))
	if a := g.srv.MetricsAddr(); a != nil {
		t.Fatalf("metrics listener at %v with metrics.listen unset", a)
	}
}
