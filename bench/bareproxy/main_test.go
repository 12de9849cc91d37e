package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestStylesForwardHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Got-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("Got-XFH", r.Header.Get("X-Forwarded-Host"))
		w.Header().Set("Got-Host", r.Host)
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	upHost := target.Host
	for _, tc := range []struct {
		name              string
		rp                http.Handler
		wantXFH, wantHost string
	}{
		{"plain", plainProxy(target), "", "client.example"},
		{"tuned", tunedProxy(target), "client.example", upHost},
	} {
		px := httptest.NewServer(tc.rp)
		req, _ := http.NewRequest("GET", px.URL+"/x", nil)
		req.Host = "client.example"
		res, err := http.DefaultClient.Do(req)
		px.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Got-XFF") != "127.0.0.1" ||
			res.Header.Get("Got-XFH") != tc.wantXFH || res.Header.Get("Got-Host") != tc.wantHost {
			t.Errorf("%s: status %d, headers %v", tc.name, res.StatusCode, res.Header)
		}
	}
	if tr := plainProxy(target).Transport.(*http.Transport); tr.MaxIdleConnsPerHost != 1024 || tr.MaxIdleConns != 100 {
		t.Errorf("plain transport: %d per host, %d in all", tr.MaxIdleConnsPerHost, tr.MaxIdleConns)
	}
}

func TestServeStats(t *testing.T) {
	rec := httptest.NewRecorder()
	serveStats(rec, httptest.NewRequest("GET", "/stats", nil))
	var m map[string]uint64
	if err := json.NewDecoder(rec.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m["/gc/heap/allocs:bytes"] == 0 {
		t.Errorf("no bytes allocated: %v", m)
	}
	for _, n := range statNames {
		if _, ok := m[n]; !ok {
			t.Errorf("%s missing from %v", n, m)
		}
	}
}
