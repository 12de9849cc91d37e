package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/middleware"
)

// wbr is s as the page writes it: its breakPoints joined by <wbr>.
func wbr(s string) string { return strings.Join(breakPoints(s), "<wbr>") }

func TestUpstreamsPage(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.admin(t, "root")
		r := a.get(t, UpstreamsPath)
		if !strings.Contains(r.body, `<span class="badge off">no data yet</span>`) {
			t.Error("routes without traffic should say so")
		}
		// Probes, then traffic through the real proxy: on panel one 502
		// from the upstream and one success, on secure-app two successes.
		ctx, cancel := context.WithCancel(context.Background())
		e.proxy.StartProbes(ctx, time.Hour)
		deadline := time.Now().Add(5 * time.Second)
		for probed := false; !probed; {
			probed = true
			for _, h := range e.proxy.Health() {
				probed = probed && !h.Probe.At.IsZero()
			}
			if time.Now().After(deadline) {
				t.Fatal("routes not probed")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		forward := func(route, path string) {
			for _, rt := range e.proxy.Routes() {
				if rt.Name == route {
					w := httptest.NewRecorder()
					req := httptest.NewRequest(http.MethodGet, "http://panel.example.com"+path, nil)
					req = req.WithContext(middleware.WithClient(req.Context(), middleware.Client{Scheme: "http", Host: "panel.example.com"}))
					e.proxy.Forward(w, req, &rt, nil)
					return
				}
			}
			t.Fatalf("no route %s", route)
		}
		forward("panel", "/panel/broken")
		forward("panel", "/panel/ok")
		forward("secure-app", "/app/x")
		forward("secure-app", "/app/x")

		r = a.get(t, UpstreamsPath)
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		checked := e.clk.Now().UTC()
		for _, want := range []string{
			"Routes come from the config file", "edit it and save (or send authgate SIGHUP): routes reload without logging anyone out",
			"<code>" + configPath + "</code>", formatSeconds(e.loadedAt),
			"<th scope=\"row\">panel</th>", `<td><span class="url">panel<wbr>.example<wbr>.com</span></td>`,
			`<td><code class="url">/panel</code></td>`,
			`<td><code class="url" title="` + e.upstream.URL + `">` + wbr(e.upstream.URL) + "</code></td>", "<td>two_factor</td>",
			"users: root<br>groups: ops, &lt;b&gt;wheel&lt;/b&gt;", "preserve host: yes",
			"<th scope=\"row\">secure-app</th>", `<span class="muted">any host</span>`,
			`CA file: <code class="url">` + wbr(e.caFile) + "</code>", `server name: <span class="url">example<wbr>.com</span>`, "preserve host: no",
			// The measurements: the probe's status and when, the last
			// proxied status, the proxied requests by class.
			`probe: <strong>200</strong>&nbsp;· <time class="nowrap" datetime="` + checked.Format(time.RFC3339) +
				`" title="` + formatSeconds(checked) + `">just now</time><br>`,
			"last request: <strong>200</strong>&nbsp;· ",
			"last 5 minutes: 2&nbsp;requests<br>2xx&nbsp;1&nbsp;· 3xx&nbsp;0&nbsp;· 4xx&nbsp;0&nbsp;· 5xx&nbsp;1&nbsp;· no&nbsp;response&nbsp;0</td>",
			"last 5 minutes: 2&nbsp;requests<br>2xx&nbsp;2&nbsp;· 3xx&nbsp;0&nbsp;· 4xx&nbsp;0&nbsp;· 5xx&nbsp;0&nbsp;· no&nbsp;response&nbsp;0</td>",
			"over the last 5 minutes by status class", `<a href="/.authgate/admin/upstreams" aria-current="page">`,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("upstreams page lacks %q", want)
			}
		}
		for _, unwanted := range []string{"no data yet", "<form", "healthy", "failing", `<span class="badge warn">unreachable`} {
			if strings.Contains(r.body, unwanted) {
				t.Errorf("upstreams page shows %q", unwanted)
			}
		}
		// A second 502: shown as the last status and counted as 5xx. A
		// 502 is an answer, so no "unreachable".
		forward("panel", "/panel/broken")
		r = a.get(t, UpstreamsPath)
		for _, want := range []string{"last request: <strong>502</strong>", "last 5 minutes: 3&nbsp;requests<br>2xx&nbsp;1&nbsp;· 3xx&nbsp;0&nbsp;· 4xx&nbsp;0&nbsp;· 5xx&nbsp;2&nbsp;· no&nbsp;response&nbsp;0</td>"} {
			if !strings.Contains(r.body, want) {
				t.Errorf("after a failure, page lacks %q", want)
			}
		}
		if strings.Contains(r.body, `<span class="badge warn">unreachable`) {
			t.Error("a 502 response shown as unreachable")
		}
	})
}

// fakeUpstreams serves fixed routes and health to the page.
type fakeUpstreams struct {
	routes []proxy.Route
	health []proxy.RouteHealth
}

func (f fakeUpstreams) Routes() []proxy.Route       { return f.routes }
func (f fakeUpstreams) Health() []proxy.RouteHealth { return f.health }

// Regression: a route whose probe got 400 while every real request got
// 404 was shown as "healthy". The page now shows those measurements and
// no verdict; the one badge left is factual ("unreachable": the latest
// probe or request got no response at all).
func TestUpstreamsPageShowsMeasurements(t *testing.T) {
	e := newEnv(t, openEmbedded)
	e.addUser(t, user{name: "root", role: "admin", totp: true})
	now := e.clk.Now()
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	long := "https://grafana-metrics.monitoring.internal.example.com:3000/d/very-long-dashboard-uid/overview?orgId=1&refresh=30s"
	up := fakeUpstreams{
		routes: []proxy.Route{
			{Name: "cockpit", Upstream: mustURL("http://cockpit.lan:9090")},
			{Name: "netdata", PathPrefix: "/netdata", Upstream: mustURL("http://10.0.0.7:19999")},
			{Name: "grafana", Host: "grafana.dashboards.internal.example.com", Upstream: mustURL(long)},
			{Name: "quiet", PathPrefix: "/quiet", Upstream: mustURL("http://quiet.lan")},
		},
		health: []proxy.RouteHealth{
			{
				Name:        "cockpit",
				Probe:       proxy.Result{At: now.Add(-10 * time.Second), Latency: 3 * time.Millisecond, Status: 400},
				LastRequest: proxy.Result{At: now.Add(-2 * time.Second), Latency: 1500 * time.Microsecond, Status: 404},
				Window:      proxy.Counts{Requests: 3, Status4xx: 3},
			},
			{
				Name:        "netdata",
				Probe:       proxy.Result{At: now.Add(-time.Second), Latency: 5 * time.Second, Error: "timeout"},
				LastRequest: proxy.Result{At: now.Add(-time.Minute), Status: 101},
				Window:      proxy.Counts{Requests: 4, Status1xx: 1, Status2xx: 1, TransportErrors: 1, ClientGone: 1},
			},
			{
				Name:        "grafana",
				Probe:       proxy.Result{At: now.Add(-time.Minute), Error: "connection refused"},
				LastRequest: proxy.Result{At: now.Add(-time.Second), Status: 200, Latency: 20 * time.Millisecond},
				Window:      proxy.Counts{Requests: 1, Status2xx: 1},
			},
			{Name: "quiet"},
		},
	}
	h := New(Deps{Users: e.svc, Upstreams: up, Hasher: e.hasher, Pages: rendererFor(t), Now: e.clk.Now}, Options{})
	srv := httptest.NewServer(withCSRF(requireUser(e.st)(h.Handler())))
	t.Cleanup(srv.Close)
	a := e.login(t, "root", now)
	a.e = &env{srv: srv}
	r := a.get(t, UpstreamsPath)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	rows := strings.Split(r.body, "<th scope=\"row\">")
	if len(rows) != 5 {
		t.Fatalf("%d rows; want 4", len(rows)-1)
	}
	tests := []struct {
		row            int
		want, unwanted []string
	}{
		{1, []string{
			`probe: <strong>400</strong>&nbsp;· 3ms&nbsp;· <time class="nowrap" datetime="` + now.Add(-10*time.Second).UTC().Format(time.RFC3339) +
				`" title="` + formatSeconds(now.Add(-10*time.Second)) + `">10s ago</time><br>`,
			"last request: <strong>404</strong>&nbsp;· 1.5ms&nbsp;· ",
			">2s ago</time>",
			"last 5 minutes: 3&nbsp;requests<br>2xx&nbsp;0&nbsp;· 3xx&nbsp;0&nbsp;· 4xx&nbsp;3&nbsp;· 5xx&nbsp;0&nbsp;· no&nbsp;response&nbsp;0</td>",
		}, []string{"badge", "healthy"}},
		{2, []string{
			`<span class="badge warn">unreachable</span>`,
			`probe: <span class="error-text">timeout</span>&nbsp;· 5s&nbsp;· <time`, ">1s ago</time>",
			"last request: <strong>101</strong>&nbsp;· <time", ">1 min ago</time>",
			"last 5 minutes: 4&nbsp;requests<br>2xx&nbsp;1&nbsp;· 3xx&nbsp;0&nbsp;· 4xx&nbsp;0&nbsp;· 5xx&nbsp;0&nbsp;· no&nbsp;response&nbsp;1&nbsp;· 1xx&nbsp;1&nbsp;· client&nbsp;left&nbsp;first&nbsp;1</td>",
		}, nil},
		{3, []string{
			`probe: <span class="error-text">connection refused</span>&nbsp;· <time`,
			"last request: <strong>200</strong>&nbsp;· 20ms",
			"last 5 minutes: 1&nbsp;request<br>",
			// Long hosts and URLs wrap between labels and segments.
			`<span class="url">grafana<wbr>.dashboards<wbr>.internal<wbr>.example<wbr>.com</span>`,
			`title="` + strings.ReplaceAll(long, "&", "&amp;") + `">https://<wbr>grafana-metrics<wbr>.monitoring<wbr>.internal<wbr>.example<wbr>.com<wbr>:3000<wbr>/d<wbr>/very-long-dashboard-uid<wbr>/overview<wbr>?orgId<wbr>=1<wbr>&amp;refresh<wbr>=30s</code>`,
		}, []string{"unreachable"}}, // the request after the failed probe got an answer
		{4, []string{`<span class="badge off">no data yet</span>`}, []string{"probe:"}},
	}
	for _, tt := range tests {
		row := rows[tt.row]
		for _, want := range tt.want {
			if !strings.Contains(row, want) {
				t.Errorf("row %d lacks %q:\n%s", tt.row, want, row)
			}
		}
		for _, unwanted := range tt.unwanted {
			if strings.Contains(row, unwanted) {
				t.Errorf("row %d shows %q:\n%s", tt.row, unwanted, row)
			}
		}
	}
}

func TestBreakPoints(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"/", []string{"/"}},
		{"/panel", []string{"/panel"}},
		{"/a/b/", []string{"/a", "/b", "/"}},
		{"panel.example.com", []string{"panel", ".example", ".com"}},
		{"http://127.0.0.1:8080", []string{"http://", "127", ".0", ".0", ".1", ":8080"}},
		{"https://host/base/", []string{"https://", "host", "/base", "/"}},
		{"http://[::1]:9090/x", []string{"http://", "[::1]", ":9090", "/x"}},
		{"http://u/p?a=1&b=2#f", []string{"http://", "u", "/p", "?a", "=1", "&b", "=2", "#f"}},
		{"/etc/authgate/ca-bundle.pem", []string{"/etc", "/authgate", "/ca-bundle", ".pem"}},
		{"a//b", []string{"a", "//", "b"}},
	}
	for _, tt := range tests {
		got := breakPoints(tt.in)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("breakPoints(%q) = %q; want %q", tt.in, got, tt.want)
		}
		if strings.Join(got, "") != tt.in {
			t.Errorf("breakPoints(%q) lost characters: %q", tt.in, got)
		}
	}
}

func TestFormatAgo(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                    "just now", // a clock that went back
		0:                               "just now",
		999 * time.Millisecond:          "just now",
		time.Second:                     "1s ago",
		59 * time.Second:                "59s ago",
		time.Minute:                     "1 min ago",
		59*time.Minute + 59*time.Second: "59 min ago",
		time.Hour:                       "1 h ago",
		47 * time.Hour:                  "47 h ago",
		48 * time.Hour:                  "2 days ago",
		400 * 24 * time.Hour:            "400 days ago",
	} {
		if got := formatAgo(d); got != want {
			t.Errorf("formatAgo(%v) = %q; want %q", d, got, want)
		}
	}
}
