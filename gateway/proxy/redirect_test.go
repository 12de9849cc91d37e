package proxy

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/middleware"
)

func TestRedirectRewriteEndToEnd(t *testing.T) {
	var upOrigin string
	redirector := func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if l := q.Get("loc"); l != "" {
			w.Header().Set("Location", strings.ReplaceAll(l, "UP", upOrigin))
		}
		if rf := q.Get("refresh"); rf != "" {
			w.Header().Set("Refresh", strings.ReplaceAll(rf, "UP", upOrigin))
		}
		w.WriteHeader(http.StatusFound)
	}
	up := newUpstream(t, http.HandlerFunc(redirector))
	upOrigin = up.URL // http://127.0.0.1:PORT
	upURL := mustURL(t, up.URL)
	g := newGateway(t, Options{Routes: []Route{
		{Name: "root", Upstream: upURL},
		{Name: "app", PathPrefix: "/app", Upstream: mustURL(t, up.URL+"/base")},
	}})
	g.set(&middleware.Client{IP: netip.MustParseAddr("127.0.0.1"), Peer: netip.MustParseAddr("127.0.0.1"), Scheme: "https", Host: "panel.example"}, nil)

	tests := []struct {
		name, path, loc, refresh, wantLoc, wantRefresh string
	}{
		{name: "absolute upstream", path: "/", loc: "UP/x?y=1&z=%2F#frag", wantLoc: "https://panel.example/x?y=1&z=%2F#frag"},
		{name: "upstream root without path", path: "/", loc: "UP", wantLoc: "https://panel.example/"},
		{name: "upper-case host", path: "/", loc: "HTTP://" + strings.ToUpper(upURL.Host) + "/x", wantLoc: "https://panel.example/x"},
		{name: "scheme-relative", path: "/", loc: "//" + upURL.Host + "/x", wantLoc: "https://panel.example/x"},
		{name: "foreign", path: "/", loc: "http://elsewhere.example/x", wantLoc: "http://elsewhere.example/x"},
		{name: "other scheme same host", path: "/", loc: "https://" + upURL.Host + "/x", wantLoc: "https://" + upURL.Host + "/x"},
		{name: "other port", path: "/", loc: "http://127.0.0.1:1/x", wantLoc: "http://127.0.0.1:1/x"},
		{name: "relative path-absolute", path: "/", loc: "/login?next=/x", wantLoc: "/login?next=/x"},
		{name: "relative", path: "/", loc: "next", wantLoc: "next"},
		{name: "userinfo", path: "/", loc: "http://u@" + upURL.Host + "/x", wantLoc: "http://u@" + upURL.Host + "/x"},
		{name: "refresh", path: "/", refresh: "5; url=UP/done?a=1", wantRefresh: "5; url=https://panel.example/done?a=1"},
		{name: "refresh quoted", path: "/", refresh: "0;URL='UP/q'", wantRefresh: "0; url=https://panel.example/q"},
		{name: "refresh foreign", path: "/", refresh: "5; url=http://elsewhere.example/", wantRefresh: "5; url=http://elsewhere.example/"},
		{name: "refresh relative", path: "/", refresh: "5; url=/x", wantRefresh: "5; url=/x"},
		{name: "refresh no url", path: "/", refresh: "30", wantRefresh: "30"},
		{name: "base mapped", path: "/app/", loc: "UP/base/y?k=v", wantLoc: "https://panel.example/app/y?k=v"},
		{name: "base root mapped", path: "/app/", loc: "UP/base", wantLoc: "https://panel.example/app"},
		{name: "base path-absolute mapped", path: "/app/", loc: "/base/login", wantLoc: "/app/login"},
		{name: "base outside", path: "/app/", loc: "UP/elsewhere", wantLoc: "https://panel.example/elsewhere"},
		{name: "base path-absolute outside", path: "/app/", loc: "/basement", wantLoc: "/basement"},
		{name: "base refresh", path: "/app/", refresh: "1; url=UP/base/r", wantRefresh: "1; url=https://panel.example/app/r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{}
			if tt.loc != "" {
				q.Set("loc", tt.loc)
			}
			if tt.refresh != "" {
				q.Set("refresh", tt.refresh)
			}
			res := g.do(t, http.MethodGet, tt.path+"?"+q.Encode(), nil)
			if res.StatusCode != http.StatusFound {
				t.Fatalf("status %d", res.StatusCode)
			}
			if got := res.Header.Get("Location"); got != tt.wantLoc {
				t.Errorf("Location = %q; want %q", got, tt.wantLoc)
			}
			if got := res.Header.Get("Refresh"); got != tt.wantRefresh {
				t.Errorf("Refresh = %q; want %q", got, tt.wantRefresh)
			}
		})
	}
}

func TestRedirectMapperDefaultPorts(t *testing.T) {
	tests := []struct {
		upstream, loc, want string
	}{
		{"http://backend:80", "http://backend/x", "https://pub.example/x"},
		{"http://backend", "http://backend:80/x", "https://pub.example/x"},
		{"https://backend", "https://backend:443/x", "https://pub.example/x"},
		{"https://backend:443", "https://BACKEND/x", "https://pub.example/x"},
		{"http://backend:8080", "http://backend/x", "http://backend/x"},
		{"http://backend", "http://backend:8080/x", "http://backend:8080/x"},
	}
	for _, tt := range tests {
		rt := &Route{Upstream: mustURL(t, tt.upstream), PathPrefix: "/"}
		m := newRedirectMapper(rt, rt.Upstream.Host, "https", "pub.example")
		if got, _ := m.rewrite(tt.loc); got != tt.want {
			t.Errorf("upstream %s: rewrite(%q) = %q; want %q", tt.upstream, tt.loc, got, tt.want)
		}
	}
}

func FuzzParseRefresh(f *testing.F) {
	for _, s := range []string{"5; url=http://x/", "0;URL='a'", "3, url=\"b\"", "10", ";", "1;url="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		delay, target, ok := parseRefresh(v)
		if ok && (delay == "" || target == "") {
			t.Fatalf("parseRefresh(%q) = %q, %q, true", v, delay, target)
		}
		rt := &Route{Upstream: mustURL(t, "http://up:8080/base"), PathPrefix: "/app"}
		m := newRedirectMapper(rt, "up:8080", "https", "pub.example")
		if out, ok := m.rewriteRefresh(v); ok && !strings.HasPrefix(out, delay+"; url=") {
			t.Fatalf("rewriteRefresh(%q) = %q", v, out)
		}
	})
}
