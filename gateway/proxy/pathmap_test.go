package proxy

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/middleware"
)

// Regression: an upstream URL whose path is just "/" was treated like no
// path at all, so "path_prefix: /netdata" with "upstream: http://u/"
// forwarded /netdata/x as /netdata/x to a panel that serves at "/" (the
// issue "Real panels behind the gateway"). Every upstream URL with a path
// now replaces the matched prefix, on the canonical path.
func TestUpstreamPathMapping(t *testing.T) {
	ups := map[string]string{} // upstream host -> route name
	upstream := func(name string) string {
		s := newUpstream(t, http.HandlerFunc(echoHandler))
		ups[mustURL(t, s.URL).Host] = name
		return s.URL
	}
	g := newGateway(t, Options{Routes: []Route{
		{Name: "root", Upstream: mustURL(t, upstream("root"))},                                   // no path: unchanged
		{Name: "mnt", PathPrefix: "/mnt/", Upstream: mustURL(t, upstream("mnt")+"/")},            // "/mnt/" + "/"
		{Name: "netdata", PathPrefix: "/netdata", Upstream: mustURL(t, upstream("netdata")+"/")}, // "/netdata" + "/"
		{Name: "app", PathPrefix: "/app", Upstream: mustURL(t, upstream("app")+"/base")},
		{Name: "deep", PathPrefix: "/a/b", Upstream: mustURL(t, upstream("deep")+"/x/y/")},
		{Name: "plain", PathPrefix: "/plain", Upstream: mustURL(t, upstream("plain"))},
		{Name: "slash", Host: "slash.example", Upstream: mustURL(t, upstream("slash")+"/")},
		{Name: "based", Host: "based.example", Upstream: mustURL(t, upstream("based")+"/base/")},
	}})
	tests := []struct {
		host, target string
		route        string // the upstream that must get it
		wantURI      string // the request-target it must see
		wantPath     string // its decoded path, when it differs
		// redirect: the gateway answers 308 to this instead (a mapped
		// prefix asked without its trailing slash); no upstream sees it.
		redirect string
	}{
		// path_prefix "/mnt/" + upstream "http://u/".
		{target: "/mnt/x", route: "mnt", wantURI: "/x"},
		{target: "/mnt/", route: "mnt", wantURI: "/"},
		{target: "/mnt", redirect: "/mnt/"},
		{target: "/mnt/a/b/?q=1", route: "mnt", wantURI: "/a/b/?q=1"},
		// path_prefix "/netdata" + upstream "http://u/": one slash, where
		// nginx's "location /netdata { proxy_pass http://u/; }" sends "//x".
		{target: "/netdata/x", route: "netdata", wantURI: "/x"},
		{target: "/netdata", redirect: "/netdata/"},
		{target: "/netdata?after=1&x=%2F", redirect: "/netdata/?after=1&x=%2F"},
		{target: "/%6Eetdata", redirect: "/netdata/"},
		{target: "/netdata/", route: "netdata", wantURI: "/"},
		{target: "/netdata/api/v1/info?chart=system.cpu", route: "netdata", wantURI: "/api/v1/info?chart=system.cpu"},
		{target: "/netdata;js=1/x", route: "netdata", wantURI: "/;js=1/x"},
		{target: "/netdatax", route: "root", wantURI: "/netdatax"},
		// path_prefix "/" + upstream "http://u/base/".
		{host: "based.example", target: "/x", route: "based", wantURI: "/base/x"},
		{host: "based.example", target: "/", route: "based", wantURI: "/base/"},
		{host: "based.example", target: "/x/", route: "based", wantURI: "/base/x/"},
		// path_prefix "/" + upstream "http://u/": the identity.
		{host: "slash.example", target: "/x/y", route: "slash", wantURI: "/x/y"},
		{host: "slash.example", target: "/", route: "slash", wantURI: "/"},
		// A path without trailing slash, and deeper prefixes.
		{target: "/app", redirect: "/app/"},
		{target: "/app/", route: "app", wantURI: "/base/"},
		{target: "/app/x", route: "app", wantURI: "/base/x"},
		{target: "/a/b/c", route: "deep", wantURI: "/x/y/c"},
		{target: "/a/b", redirect: "/a/b/"},
		// No path in the upstream URL: forwarded unchanged, prefix included.
		{target: "/plain/x", route: "plain", wantURI: "/plain/x"},
		{target: "/plain", route: "plain", wantURI: "/plain"},
		// Encoded segments: decoded once for matching, re-encoded once
		// for the upstream; an encoded prefix is the prefix.
		{target: "/netdata/a%20b/c%3Fd", route: "netdata", wantURI: "/a%20b/c%3Fd", wantPath: "/a b/c?d"},
		{target: "/%6Eetdata/x", route: "netdata", wantURI: "/x"},
		{target: "/netdata/%41", route: "netdata", wantURI: "/A"},
		{target: "/app/%25/x", route: "app", wantURI: "/base/%25/x", wantPath: "/base/%/x"},
		// ".." is resolved before matching: it can leave the prefix (and
		// then the route), never climb above the upstream's path.
		{target: "/netdata/../x", route: "root", wantURI: "/x"},
		{target: "/netdata/a/../../x", route: "root", wantURI: "/x"},
		{target: "/netdata/%2e%2e/x", route: "root", wantURI: "/x"},
		{target: "/netdata/%2E%2E/%2e%2e/etc/passwd", route: "root", wantURI: "/etc/passwd"},
		{target: "/netdata/x/..", route: "netdata", wantURI: "/"},
		{target: "/netdata/x/../..", route: "root", wantURI: "/"},
		{target: "/app/../base/x", route: "root", wantURI: "/base/x"},
		{target: "/app/x/../../y", route: "root", wantURI: "/y"},
		{target: "/a/b/../../x/y/z", route: "root", wantURI: "/x/y/z"},
		{target: "/app/./x/.", route: "app", wantURI: "/base/x/"},
		{target: "/netdata//x", route: "netdata", wantURI: "/x"},
		{host: "based.example", target: "/../x", route: "based", wantURI: "/base/x"},
		{host: "based.example", target: "/%2e%2e/%2e%2e/x", route: "based", wantURI: "/base/x"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.target, func(t *testing.T) {
			if tt.redirect != "" {
				res := g.do(t, http.MethodGet, tt.target, nil)
				if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != tt.redirect {
					t.Fatalf("status %d, Location %q; want 308 to %q", res.StatusCode, res.Header.Get("Location"), tt.redirect)
				}
				return
			}
			req, _ := http.NewRequest(http.MethodGet, g.srv.URL, nil)
			req.URL.Opaque = tt.target
			if tt.host != "" {
				req.Host = tt.host
			}
			s := g.echoReq(t, req)
			if got := ups[s.Host]; got != tt.route {
				t.Fatalf("went to %q (%s); want %q", got, s.RequestURI, tt.route)
			}
			if s.RequestURI != tt.wantURI {
				t.Fatalf("upstream saw %q; want %q", s.RequestURI, tt.wantURI)
			}
			if tt.wantPath != "" && s.Path != tt.wantPath {
				t.Fatalf("upstream path %q; want %q", s.Path, tt.wantPath)
			}
		})
	}
	for _, bad := range []string{"/netdata/..%2fx", "/netdata/%2e%2e%2fx", "/netdata/..;/x", "/netdata/%2e%2e;/x", "/netdata/a%5c..%5c..%5cx", "/netdata/..\\x"} {
		if res := g.do(t, http.MethodGet, bad, nil); res.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: status %d; want 400", bad, res.StatusCode)
		}
	}
}

// echoReq sends req and decodes what the echo upstream saw.
func (g *gateway) echoReq(t *testing.T, req *http.Request) seen {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	var s seen
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// The mapped path never leaves the upstream's path, for every path the
// gateway accepts (the path-bypass payloads, each under every prefix).
func TestUpstreamPathStaysUnderBase(t *testing.T) {
	routes := []Route{
		{Name: "netdata", PathPrefix: "/netdata", Upstream: mustURL(t, "http://u/")},
		{Name: "app", PathPrefix: "/app", Upstream: mustURL(t, "http://u/base")},
		{Name: "root", PathPrefix: "/", Upstream: mustURL(t, "http://u/base/")},
		{Name: "deep", PathPrefix: "/a/b", Upstream: mustURL(t, "http://u/x/y")},
	}
	p := mustNew(t, Options{Routes: routes})
	payloads := readLines(t, "testdata/path_bypass.txt")
	for _, rt := range p.Routes() {
		base := rt.Upstream.Path
		for _, pl := range payloads {
			for _, raw := range []string{pl, strings.TrimSuffix(rt.PathPrefix, "/") + pl, strings.TrimSuffix(rt.PathPrefix, "/") + "/x" + pl} {
				u, err := url.ParseRequestURI(raw)
				if err != nil {
					continue
				}
				canon, err := CanonicalPath(u)
				if err != nil || !hasSegmentPrefix(matchPath(canon), rt.PathPrefix) {
					continue // refused, or not this route's request
				}
				out := upstreamPath(&rt, canon)
				if !hasSegmentPrefix(matchPath(out), base) {
					t.Errorf("route %s: %q -> %q leaves %q", rt.Name, raw, out, base)
				}
				if again, err := CanonicalPath(&url.URL{Path: out}); err != nil || again != out {
					t.Errorf("route %s: %q -> %q canonicalises to %q, %v", rt.Name, raw, out, again, err)
				}
			}
		}
	}
}

func TestRedirectUnderPrefixFromRootUpstream(t *testing.T) {
	rt, err := normalizeRoute(Route{PathPrefix: "/netdata", Upstream: mustURL(t, "http://up.example:19999/")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := newRedirectMapper(&rt, rt.Upstream.Host, "https", "panel.example")
	tests := []struct{ in, want string }{
		{"/", "/netdata/"},
		{"/login?next=/x#f", "/netdata/login?next=/x#f"},
		{"/;js=1", "/netdata/;js=1"},
		{"http://up.example:19999/x", "https://panel.example/netdata/x"},
		{"http://up.example:19999", "https://panel.example/netdata/"},
		{"http://up.example:19999/", "https://panel.example/netdata/"},
		{"//up.example:19999/x", "https://panel.example/netdata/x"},
		{"http://up.example:19999//evil.example/x", "https://panel.example/netdata//evil.example/x"},
		{"///evil.example/x", "/netdata///evil.example/x"},
		// The panel's own links elsewhere pass as sent.
		{"//evil.example/x", "//evil.example/x"},
		{`/\evil.example/x`, `/\evil.example/x`},
		{"https://up.example:19999/x", "https://up.example:19999/x"},
		{"x/y", "x/y"},
	}
	for _, tt := range tests {
		if got, _ := m.rewrite(tt.in); got != tt.want {
			t.Errorf("rewrite(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
	if got, _ := m.rewriteRefresh("0; url=/done"); got != "0; url=/netdata/done" {
		t.Errorf("Refresh = %q", got)
	}
	// The route "/" onto "http://u/" maps nothing.
	id, _ := normalizeRoute(Route{PathPrefix: "/", Upstream: mustURL(t, "http://up.example:19999/")}, 0)
	mid := newRedirectMapper(&id, id.Upstream.Host, "https", "panel.example")
	if got, ok := mid.rewrite("/x"); ok || got != "/x" {
		t.Errorf("identity route: rewrite(/x) = %q, %v", got, ok)
	}
	if got, _ := mid.rewrite("http://up.example:19999/x"); got != "https://panel.example/x" {
		t.Errorf("identity route: rewrite(absolute) = %q", got)
	}
}

func TestSetCookiePathMapping(t *testing.T) {
	type cookieCase struct {
		in, upPath, want string
	}
	tests := []struct {
		prefix, upstream string
		cases            []cookieCase
	}{
		{"/netdata", "http://u/", []cookieCase{
			{"sid=1; Path=/", "/", "sid=1; Path=/netdata"},
			{"sid=1; Path=/; HttpOnly", "/x", "sid=1; HttpOnly; Path=/netdata"},
			{"sid=1; Path=/api", "/", "sid=1; Path=/netdata/api"},
			{"sid=1; Path=/api/", "/", "sid=1; Path=/netdata/api/"},
			{"sid=1;path=/;Secure", "/", "sid=1;Secure; Path=/netdata"},
			{"sid=1; PATH = /api ; Secure", "/", "sid=1; Secure; Path=/netdata/api"},
			// The last Path counts; Path not starting with "/" means none.
			{"sid=1; Path=/a; Path=/b", "/", "sid=1; Path=/netdata/b"},
			{"sid=1; Path=/a; Path=rel", "/x/y", "sid=1; Path=/netdata/x"},
			{"sid=1; Path=", "/x/y/z", "sid=1; Path=/netdata/x/y"},
			// No Path: the default path of the upstream request, mapped.
			{"sid=1", "/", "sid=1; Path=/netdata"},
			{"sid=1", "/login", "sid=1; Path=/netdata"},
			{"sid=1", "/api/v1/x", "sid=1; Path=/netdata/api/v1"},
			{"sid=1", "/a b/x", "sid=1; Path=/netdata/a%20b"},
			// The request path must not add attributes (a client could
			// ask for /netdata/x;Domain=example.com/y).
			{"sid=1", "/a;Domain=example.com/b", "sid=1; Path=/netdata"},
			{"sid=1", "/x/a;Secure/b", "sid=1; Path=/netdata/x/"},
			{"sid=1", "/x/a;js=1", "sid=1; Path=/netdata/x"},
			{"sid=1; Max-Age=0", "/", "sid=1; Max-Age=0; Path=/netdata"},
			// Browsers store __Host- cookies only with Path=/.
			{"__Host-sid=1; Path=/; Secure", "/", "__Host-sid=1; Path=/; Secure"},
			{"__HOST-sid=1; Path=/; Secure", "/", "__HOST-sid=1; Path=/; Secure"},
			{"__Secure-sid=1; Path=/; Secure", "/", "__Secure-sid=1; Secure; Path=/netdata"},
			{"sid=1; Path=/" + strings.Repeat("a", 1100), "/x/y", "sid=1; Path=/netdata/x"},
		}},
		{"/app", "http://u/base", []cookieCase{
			{"sid=1; Path=/base", "/base", "sid=1; Path=/app"},
			{"sid=1; Path=/base/", "/base", "sid=1; Path=/app/"},
			{"sid=1; Path=/base/x", "/base", "sid=1; Path=/app/x"},
			// Outside the upstream path: the route prefix.
			{"sid=1; Path=/", "/base", "sid=1; Path=/app"},
			{"sid=1; Path=/other", "/base", "sid=1; Path=/app"},
			{"sid=1; Path=/basement", "/base", "sid=1; Path=/app"},
			{"sid=1", "/base/x/y", "sid=1; Path=/app/x"},
			{"sid=1", "/base", "sid=1; Path=/app"},
		}},
		{"/", "http://u/base/", []cookieCase{
			{"sid=1; Path=/base/x", "/base/", "sid=1; Path=/x"},
			{"sid=1; Path=/base", "/base/", "sid=1; Path=/"},
			{"sid=1; Path=/base/", "/base/", "sid=1; Path=/"},
			{"sid=1; Path=/", "/base/", "sid=1; Path=/"},
			{"sid=1; Path=/other", "/base/", "sid=1; Path=/"},
			{"sid=1", "/base/x/y", "sid=1; Path=/x"},
		}},
	}
	for _, tt := range tests {
		rt, err := normalizeRoute(Route{PathPrefix: tt.prefix, Upstream: mustURL(t, tt.upstream)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		pm := newPathMapping(&rt)
		if !pm.on {
			t.Fatalf("%s -> %s: no mapping", tt.prefix, tt.upstream)
		}
		for _, c := range tt.cases {
			if got := pm.mapSetCookiePath(c.in, c.upPath); got != c.want {
				t.Errorf("%s -> %s: %q for %s = %q; want %q", tt.prefix, tt.upstream, c.in, c.upPath, got, c.want)
			}
		}
	}
	// No path in the upstream URL, or the identity: cookies untouched.
	for _, r := range []Route{
		{PathPrefix: "/plain", Upstream: mustURL(t, "http://u")},
		{PathPrefix: "/", Upstream: mustURL(t, "http://u/")},
		{PathPrefix: "/base/", Upstream: mustURL(t, "http://u/base")},
	} {
		rt, _ := normalizeRoute(r, 0)
		if newPathMapping(&rt).on {
			t.Errorf("%s -> %s maps cookie paths", r.PathPrefix, r.Upstream)
		}
	}
}

// Through Forward: a panel at "/" mounted under /netdata sets cookies
// for "/" and redirects to its own "/login"; the browser must get them
// under /netdata. The gateway's own cookies are still dropped.
func TestPanelAtRootUnderPrefix(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			http.SetCookie(w, &http.Cookie{Name: "nd_session", Value: "v", Path: "/", HttpOnly: true})
			w.Header().Add("Set-Cookie", "nd_pref=dark")
			w.Header().Add("Set-Cookie", "authgate_session=planted; Path=/")
			http.Redirect(w, r, "/login?next=%2F", http.StatusFound)
		case "/abs":
			http.Redirect(w, r, "http://"+r.Host+"/dashboard", http.StatusSeeOther)
		default:
			http.NotFound(w, r)
		}
	}))
	g := newGateway(t, Options{
		Routes: []Route{
			{Name: "netdata", PathPrefix: "/netdata", Upstream: mustURL(t, up.URL+"/")},
		},
		StripCookies: []string{"authgate_session"},
	})
	g.set(&middleware.Client{IP: netip.MustParseAddr("127.0.0.1"), Peer: netip.MustParseAddr("127.0.0.1"), Scheme: "https", Host: "panel.example"}, nil)
	// The prefix without its slash is sent to the prefix with it, as
	// nginx does for "location /netdata/" (Netdata's guide adds a
	// "return 301" for it): the page at "/" has relative links. Any
	// method: 308 keeps it.
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		res := g.do(t, method, "/netdata", nil)
		if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != "/netdata/" {
			t.Fatalf("%s /netdata: status %d, Location %q; want 308 to /netdata/", method, res.StatusCode, res.Header.Get("Location"))
		}
	}
	for _, target := range []string{"/netdata/"} {
		res := g.do(t, http.MethodGet, target, nil)
		if res.StatusCode != http.StatusFound {
			t.Fatalf("%s: status %d", target, res.StatusCode)
		}
		if got := res.Header.Get("Location"); got != "/netdata/login?next=%2F" {
			t.Errorf("%s: Location %q", target, got)
		}
		want := []string{"nd_session=v; HttpOnly; Path=/netdata", "nd_pref=dark; Path=/netdata"}
		if got := res.Header.Values("Set-Cookie"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: Set-Cookie %q; want %q", target, got, want)
		}
	}
	res := g.do(t, http.MethodGet, "/netdata/abs", nil)
	if got := res.Header.Get("Location"); got != "https://panel.example/netdata/dashboard" {
		t.Errorf("absolute redirect: Location %q", got)
	}
}

func TestDescribePaths(t *testing.T) {
	tests := []struct {
		host, prefix, upstream, want string
	}{
		{"", "/netdata", "http://127.0.0.1:19999/", "/netdata/… → http://127.0.0.1:19999/… (prefix replaced; /netdata redirected to /netdata/)"},
		{"", "/mnt/", "http://u/", "/mnt/… → http://u/… (prefix replaced; /mnt redirected to /mnt/)"},
		{"", "/app", "http://u/base/", "/app/… → http://u/base/… (prefix replaced; /app redirected to /app/)"},
		{"", "/", "http://u/base", "/… → http://u/base/… (upstream path prepended)"},
		{"", "/webmin", "http://10.0.0.5:10000", "/webmin/… → http://10.0.0.5:10000/webmin/… (path unchanged)"},
		{"Panel.Example.com", "", "https://127.0.0.1:2087", "panel.example.com/… → https://127.0.0.1:2087/… (path unchanged)"},
		{"", "/", "http://u/", "/… → http://u/… (path unchanged)"},
		{"", "/base", "http://u/base/", "/base/… → http://u/base/… (path unchanged)"},
		{"", "/x", "ftp://u/", ""},
	}
	for _, tt := range tests {
		r := Route{Host: tt.host, PathPrefix: tt.prefix, Upstream: mustURL(t, tt.upstream)}
		if got := r.DescribePaths(); got != tt.want {
			t.Errorf("%s%s -> %s: %q; want %q", tt.host, tt.prefix, tt.upstream, got, tt.want)
		}
	}
}

// FuzzSetCookiePath: whatever Set-Cookie line the panel sends and
// whatever path the client asked for, the mapped line keeps the cookie
// and every other attribute byte for byte, and the Path a browser reads
// from it lies under the route prefix (except a __Host- cookie, left
// alone).
func FuzzSetCookiePath(f *testing.F) {
	var maps []pathMapping
	for _, r := range []Route{
		{PathPrefix: "/netdata", Upstream: mustURL(f, "http://u/")},
		{PathPrefix: "/app", Upstream: mustURL(f, "http://u/base")},
		{PathPrefix: "/", Upstream: mustURL(f, "http://u/base/")},
	} {
		rt, err := normalizeRoute(r, 0)
		if err != nil {
			f.Fatal(err)
		}
		maps = append(maps, newPathMapping(&rt))
	}
	for _, s := range []string{"sid=1; Path=/", "sid=1", "sid=1; path=/base/x; Secure", "sid=1; Path=/a; Path=rel", "__Host-x=1; Path=/", "a=b; Path=; HttpOnly", "a=b;Path=/base;;"} {
		f.Add(s, "/")
		f.Add(s, "/x/a;Domain=example.com/b")
	}
	// browserAttrs splits a line the way browsers do: the pair, then the
	// attributes, and the value of the last Path attribute.
	browserAttrs := func(line string) (pair string, others []string, path string, hasPath bool) {
		pair, rest, found := strings.Cut(line, ";")
		for _, av := range strings.Split(rest, ";") {
			if !found {
				break
			}
			name, value, _ := strings.Cut(av, "=")
			if strings.EqualFold(strings.Trim(name, " \t"), "path") {
				path, hasPath = strings.Trim(value, " \t"), true
				continue
			}
			others = append(others, av)
		}
		return pair, others, path, hasPath
	}
	f.Fuzz(func(t *testing.T, line, upPath string) {
		if strings.ContainsAny(line, "\r\n") || !strings.HasPrefix(upPath, "/") {
			return
		}
		for _, pm := range maps {
			out := pm.mapSetCookiePath(line, upPath)
			if hasPrefixFold(setCookieName(line), "__Host-") {
				if out != line {
					t.Fatalf("__Host- cookie %q changed to %q", line, out)
				}
				continue
			}
			pair, others, path, ok := browserAttrs(out)
			inPair, inOthers, _, _ := browserAttrs(line)
			if pair != inPair || strings.Join(others, ";") != strings.Join(filterPathless(inOthers), ";") {
				t.Fatalf("%q -> %q: cookie or attributes changed", line, out)
			}
			root := pm.root()
			if !ok || len(path) > maxCookiePath || !(path == root || strings.HasPrefix(path, strings.TrimSuffix(root, "/")+"/")) {
				t.Fatalf("%q for %q -> %q: browsers read Path %q (%v), outside %q", line, upPath, out, path, ok, root)
			}
		}
	})
}

// filterPathless drops attributes that TrimSpace, unlike browsers, takes
// for Path (names padded with other white space): mapSetCookiePath
// removes those too.
func filterPathless(avs []string) []string {
	var out []string
	for _, av := range avs {
		name, _, _ := strings.Cut(av, "=")
		if strings.EqualFold(strings.TrimSpace(name), "path") {
			continue
		}
		out = append(out, av)
	}
	return out
}
