package proxy

import (
	"bufio"
	"net/url"
	"os"
	"strings"
	"testing"
)

// FuzzMatch drives request targets and hosts through CanonicalPath and
// Match: a path under /admin on whole segments is never given to another
// route, the matched route really covers the path, the longest prefix
// wins, and what is forwarded canonicalises to itself.
func FuzzMatch(f *testing.F) {
	up := mustURL(f, "http://up.invalid")
	base := mustURL(f, "http://up.invalid/base")
	p := mustNew(f, Options{Routes: []Route{
		{Name: "root", PathPrefix: "/", Upstream: up, Policy: "two_factor"},
		{Name: "public", PathPrefix: "/public", Upstream: up, Policy: "bypass"},
		{Name: "admin", PathPrefix: "/admin", Upstream: base, Policy: "two_factor"},
		{Name: "panel", Host: "panel.example", PathPrefix: "/", Upstream: up, Policy: "two_factor"},
		{Name: "mnt", PathPrefix: "/mnt", Upstream: mustURL(f, "http://up.invalid/"), Policy: "two_factor"},
	}})
	for _, s := range []string{"/", "/admin", "/public/../admin", "/admin;x/y", "//admin", "/public/%2e%2e/admin", "/.authgate/../admin", "/mnt", "/mnt/x/", "/mnt;p/x", "/mnt/%2e%2e/x"} {
		f.Add(s, "gw.example")
		f.Add(s, "PANEL.example.:8080")
	}
	if fh, err := os.Open("testdata/path_bypass.txt"); err == nil {
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
				f.Add(l, "gw.example")
			}
		}
		fh.Close()
	}
	f.Fuzz(func(t *testing.T, raw, host string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return
		}
		canon, err := CanonicalPath(u)
		if err != nil {
			return
		}
		rt, ok := p.Match(host, canon)
		if !ok {
			t.Fatalf("%q on %q: no route, but / covers every path", raw, host)
		}
		mp := matchPath(canon)
		if !hasSegmentPrefix(mp, rt.PathPrefix) {
			t.Fatalf("%q -> %q matched %s whose prefix %q does not cover it", raw, canon, rt.Name, rt.PathPrefix)
		}
		h := normalizeHost(host)
		if h == "panel.example" {
			if rt.Name != "panel" {
				t.Fatalf("%q on %q: host route lost to %s", raw, host, rt.Name)
			}
			return
		}
		if rt.Host != "" {
			t.Fatalf("%q on %q: matched host route %s", raw, host, rt.Name)
		}
		if hasSegmentPrefix(mp, "/admin") && rt.Name != "admin" {
			t.Fatalf("%q -> %q is under /admin but matched %s", raw, canon, rt.Name)
		}
		if hasSegmentPrefix(mp, "/public") && rt.Name != "public" {
			t.Fatalf("%q -> %q is under /public but matched %s", raw, canon, rt.Name)
		}
		out := upstreamPath(rt, canon)
		again, err := CanonicalPath(&url.URL{Path: out})
		if err != nil || again != out {
			t.Fatalf("%q: upstream path %q canonicalises to %q, %v", raw, out, again, err)
		}
		if rt.Name == "admin" && !hasSegmentPrefix(matchPath(out), "/base") {
			t.Fatalf("%q: upstream path %q escapes the upstream base /base", raw, out)
		}
		if rt.Name == "mnt" && (out != "/"+strings.TrimPrefix(strings.TrimPrefix(canon, "/mnt"), "/") || strings.HasPrefix(out, "//")) {
			t.Fatalf("%q -> %q: upstream path %q is not the rest after /mnt", raw, canon, out)
		}
	})
}
