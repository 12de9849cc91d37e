package proxy

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
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
	for _, s := range []string{"5; url=http://x/", "0;URL='a'", "3, url=\"b\"", "10", ";", "1;url=", "0 url=/x", ".5,'/y'", "0; ur=/x", "0;url='/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		delay, target, ok := parseRefresh(v)
		if ok && (delay == "" || target == "") {
			t.Fatalf("parseRefresh(%q) = %q, %q, true", v, delay, target)
		}
		// The URL found is the one a browser follows (none: a reload or
		// an ignored header).
		if b, bok := browserRefreshURL(v); ok != (bok && b != "") || ok && b != target {
			t.Fatalf("parseRefresh(%q) = %q, %v; browsers follow %q (%v)", v, target, ok, b, bok)
		}
		rt := &Route{Upstream: mustURL(t, "http://up:8080/base"), PathPrefix: "/app"}
		m := newRedirectMapper(rt, "up:8080", "https", "pub.example")
		if out, ok := m.rewriteRefresh(v); ok && !strings.HasPrefix(out, delay+"; url=") {
			t.Fatalf("rewriteRefresh(%q) = %q", v, out)
		}
	})
}

// readRedirectPayloads reads testdata/open_redirects.txt with {up} and
// {uphost} filled in for the upstream origin up.
func readRedirectPayloads(t testing.TB, up *url.URL) []string {
	t.Helper()
	var out []string
	for _, line := range readLines(t, "testdata/open_redirects.txt") {
		if strings.HasPrefix(line, `"`) {
			s, err := strconv.Unquote(line)
			if err != nil {
				t.Fatalf("open_redirects.txt: %s: %v", line, err)
			}
			line = s
		}
		line = strings.ReplaceAll(line, "{uphost}", up.Host)
		line = strings.ReplaceAll(line, "{up}", up.Scheme+"://"+up.Host)
		out = append(out, line)
	}
	return out
}

// redirector answers 302 with the Location and Refresh given in the query
// parameters loc and refresh, byte for byte.
func redirector(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if l := q.Get("loc"); l != "" {
		w.Header()["Location"] = []string{l}
	}
	if rf := q.Get("refresh"); rf != "" {
		w.Header()["Refresh"] = []string{rf}
	}
	w.WriteHeader(http.StatusFound)
}

// Regression: with path_prefix "/" and an upstream with a base path, the
// panel's own "/base//evil.example/x" became "Location: //evil.example/x"
// (and "Refresh: 0; url=//evil.example/x"), which browsers follow to
// evil.example; "http://upstream/base;@evil.example/x" became
// "https://panel.example;@evil.example/x". Every payload must now stay on
// the public origin, as Location and as Refresh.
func TestOpenRedirectPayloads(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(redirector))
	upURL := mustURL(t, up.URL)
	g := newGateway(t, Options{Routes: []Route{
		{Name: "root", Upstream: mustURL(t, up.URL+"/base")},
		{Name: "app", PathPrefix: "/app", Upstream: mustURL(t, up.URL+"/base")},
		{Name: "mnt", PathPrefix: "/mnt", Upstream: mustURL(t, up.URL+"/")},
	}})
	g.set(&middleware.Client{IP: netip.MustParseAddr("127.0.0.1"), Peer: netip.MustParseAddr("127.0.0.1"), Scheme: "https", Host: "panel.example"}, nil)
	const public = "https://panel.example"

	payloads := readRedirectPayloads(t, upURL)
	if len(payloads) < 40 {
		t.Fatalf("only %d payloads read", len(payloads))
	}
	for _, path := range []string{"/", "/app/", "/mnt/"} {
		page := mustURL(t, public+path+"page")
		for _, v := range payloads {
			headers := []struct{ name, value string }{
				{"Location", v},
				{"Refresh", "0; url=" + v},
				{"Refresh", "0;URL='" + v + "'"},
				{"Refresh", "3 , Url = \"" + v + "\""},
			}
			for _, h := range headers {
				q := url.Values{}
				if h.name == "Location" {
					q.Set("loc", h.value)
				} else {
					q.Set("refresh", h.value)
				}
				res := g.do(t, http.MethodGet, path+"page?"+q.Encode(), nil)
				if res.StatusCode != http.StatusFound {
					t.Fatalf("%s %q: status %d", h.name, h.value, res.StatusCode)
				}
				got := res.Header.Get(h.name)
				target := got
				if h.name == "Refresh" {
					var ok bool
					if target, ok = browserRefreshURL(got); !ok {
						t.Errorf("%s on %s: %s %q became %q, which browsers ignore", path, "page", h.name, h.value, got)
						continue
					}
				}
				if o := browserOrigin(target, page); o != public {
					t.Errorf("%s: %s %q became %q: a browser goes to %s", path, h.name, h.value, got, o)
				}
			}
		}
	}
}

// The rewritten forms of the payloads, for a route "/" onto
// http://upstream/base: leading slashes collapse to one, which is also
// where the gateway sends the doubled path.
func TestRedirectCollapsesLeadingSlashes(t *testing.T) {
	rt, err := normalizeRoute(Route{PathPrefix: "/", Upstream: mustURL(t, "http://up.example:9000/base")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := newRedirectMapper(&rt, rt.Upstream.Host, "https", "panel.example")
	tests := []struct{ in, want string }{
		{"/base//evil.example/x", "/evil.example/x"},
		{"/base///evil.example/x?a=//b#//c", "/evil.example/x?a=//b#//c"},
		{`/base/\evil.example/x`, "/evil.example/x"},
		{"/base/\t/evil.example/x", "/evil.example/x"},
		{"/base/\n/evil.example/x", "/evil.example/x"},
		{"/base;@evil.example/x", "/;@evil.example/x"},
		{"/base", "/"},
		{"/base/", "/"},
		{"/base/x//y", "/x//y"},
		{"http://up.example:9000/base//evil.example/x", "https://panel.example/evil.example/x"},
		{"http://up.example:9000/base;@evil.example/x", "https://panel.example/;@evil.example/x"},
		{`http://up.example:9000\base//evil.example/x`, "https://panel.example/evil.example/x"},
		{`/\up.example:9000/base/x`, "https://panel.example/x"},
		// The panel's own links elsewhere pass as sent.
		{"//evil.example/x", "//evil.example/x"},
		{`/\evil.example/x`, `/\evil.example/x`},
		{"https://evil.example/x", "https://evil.example/x"},
		{"/basement//x", "/basement//x"},
	}
	for _, tt := range tests {
		if got, _ := m.rewrite(tt.in); got != tt.want {
			t.Errorf("rewrite(%q) = %q; want %q", tt.in, got, tt.want)
		}
		ref := "0; url=" + tt.in
		want := ref
		if tt.want != tt.in {
			want = "0; url=" + tt.want
		}
		if got, _ := m.rewriteRefresh(ref); got != want {
			t.Errorf("rewriteRefresh(%q) = %q; want %q", ref, got, want)
		}
	}
}

// parseRefresh finds the URL a browser follows, also where a simpler
// split at the first ";" would not.
func TestParseRefreshLikeBrowsers(t *testing.T) {
	tests := []struct{ in, delay, target string }{
		{"5; url=/x", "5", "/x"},
		{"0;URL='/q'", "0", "/q"},
		{"3, url=\"/b\"", "3", "/b"},
		{"  7 ; Url =  /c", "7", "/c"},
		{"0 url=/x", "0", "/x"},
		{"0 /x", "0", "/x"},
		{"1.5; url=/x", "1", "/x"},
		{".5; url=/x", "0", "/x"},
		{"0; url='/x'junk", "0", "/x"},
		{"0; url='/x", "0", "/x"},
		{"0; ur=/x", "0", "ur=/x"},
		{"0; url /x", "0", "url /x"},
		{"0; '/x' y", "0", "/x"},
		{"0 url=//evil.example;url=/base/x", "0", "//evil.example;url=/base/x"},
		{"0;;url=/x", "0", ";url=/x"},
		{"30", "", ""},
		{"0;", "", ""},
		{"x; url=/x", "", ""},
		{"0x; url=/x", "", ""},
		{"; url=/x", "", ""},
	}
	for _, tt := range tests {
		delay, target, ok := parseRefresh(tt.in)
		if ok != (tt.target != "") || delay != tt.delay || target != tt.target {
			t.Errorf("parseRefresh(%q) = %q, %q, %v; want %q, %q", tt.in, delay, target, ok, tt.delay, tt.target)
		}
		if b, bok := browserRefreshURL(tt.in); ok && (!bok || b != target) {
			t.Errorf("parseRefresh(%q) target %q; the browser model follows %q (%v)", tt.in, target, b, bok)
		}
	}
}

// FuzzRedirectStaysOnPublicOrigin: whatever Location or Refresh value the
// panel sends, a value the gateway rewrites resolves, as a browser
// resolves it, to the public origin. A value the gateway does not rewrite
// is passed on byte for byte, so if it leads elsewhere it is the panel's
// own absolute link to another host, not the gateway's doing.
func FuzzRedirectStaysOnPublicOrigin(f *testing.F) {
	up := mustURL(f, "http://up.example:9000")
	var mappers []*redirectMapper
	for _, r := range []Route{
		{PathPrefix: "/", Upstream: mustURL(f, "http://up.example:9000/base")},
		{PathPrefix: "/app", Upstream: mustURL(f, "http://up.example:9000/base/")},
		{PathPrefix: "/app", Upstream: mustURL(f, "http://up.example:9000")},
		{PathPrefix: "/", Upstream: mustURL(f, "https://up.example/b/c")},
		// A panel at "/" mounted under a prefix: every path-absolute
		// value is mapped.
		{PathPrefix: "/app", Upstream: mustURL(f, "http://up.example:9000/")},
		{PathPrefix: "/a/b", Upstream: mustURL(f, "https://up.example/")},
	} {
		rt, err := normalizeRoute(r, 0)
		if err != nil {
			f.Fatal(err)
		}
		mappers = append(mappers, newRedirectMapper(&rt, rt.Upstream.Host, "https", "pub.example"))
	}
	const public = "https://pub.example"
	page := mustURL(f, public+"/app/page")
	for _, v := range readRedirectPayloads(f, up) {
		f.Add(v)
		f.Add("0; url=" + v)
		f.Add("0 url='" + v + "'")
	}
	f.Add("https://up.example/b/c//evil.example")
	f.Add("0 url=//evil.example;url=/base/x")
	f.Fuzz(func(t *testing.T, v string) {
		for _, m := range mappers {
			if out, ok := m.rewrite(v); !ok {
				if out != v {
					t.Fatalf("rewrite(%q) = %q without rewriting", v, out)
				}
			} else if o := browserOrigin(out, page); o != public {
				t.Fatalf("Location %q rewritten to %q: a browser goes to %s", v, out, o)
			}
			out, ok := m.rewriteRefresh(v)
			if !ok {
				if out != v {
					t.Fatalf("rewriteRefresh(%q) = %q without rewriting", v, out)
				}
				continue
			}
			target, ok := browserRefreshURL(out)
			if !ok {
				t.Fatalf("Refresh %q rewritten to %q, which browsers ignore", v, out)
			}
			if o := browserOrigin(target, page); o != public {
				t.Fatalf("Refresh %q rewritten to %q: a browser goes to %s", v, out, o)
			}
		}
	})
}
