package proxy

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/authgate/authgate/middleware"
)

// seen is what the echo upstream reports about the request it received.
type seen struct {
	Method     string
	Host       string
	RequestURI string
	Path       string
	RawQuery   string
	Header     http.Header
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(seen{
		Method: r.Method, Host: r.Host, RequestURI: r.RequestURI,
		Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header,
	})
}

// gateway is a test front end: canonicalise, match, set the client the
// test chose, forward with the identity the test chose.
type gateway struct {
	p      *Proxy
	srv    *httptest.Server
	mu     sync.Mutex
	client *middleware.Client
	id     *Identity
}

func newGateway(t *testing.T, o Options) *gateway {
	t.Helper()
	g := &gateway{p: mustNew(t, o)}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		canon, err := CanonicalPath(r.URL)
		if err != nil {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		rt, ok := g.p.Match(r.Host, canon)
		if !ok {
			http.NotFound(w, r)
			return
		}
		g.mu.Lock()
		c, id := g.client, g.id
		g.mu.Unlock()
		if c != nil {
			r = r.WithContext(middleware.WithClient(r.Context(), *c))
		}
		g.p.Forward(w, r, rt, id)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) set(c *middleware.Client, id *Identity) {
	g.mu.Lock()
	g.client, g.id = c, id
	g.mu.Unlock()
}

// do sends a request with a raw (unnormalised) request target.
func (g *gateway) do(t *testing.T, method, target string, hdr http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, g.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = target // sent verbatim as the request-target
	for k, vs := range hdr {
		req.Header[k] = vs // keep the exact spelling
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func (g *gateway) echo(t *testing.T, target string, hdr http.Header) seen {
	t.Helper()
	res := g.do(t, http.MethodGet, target, hdr)
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: status %d: %s", target, res.StatusCode, body)
	}
	var s seen
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func newUpstream(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestForwardPathAndQuery(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(echoHandler))
	base := newUpstream(t, http.HandlerFunc(echoHandler))
	g := newGateway(t, Options{Routes: []Route{
		{Name: "root", Upstream: mustURL(t, up.URL)},
		{Name: "app", PathPrefix: "/app", Upstream: mustURL(t, base.URL+"/base")},
		{Name: "rootbase", Host: "based.example", Upstream: mustURL(t, base.URL+"/base/")},
	}})
	tests := []struct {
		target   string
		host     string
		wantURI  string
		wantPath string
	}{
		{target: "/a/../b", wantURI: "/b"},
		{target: "/a//b", wantURI: "/a/b"},
		{target: "/%2e%2e/x", wantURI: "/x"},
		{target: "/a/./b", wantURI: "/a/b"},
		{target: "/a/b/", wantURI: "/a/b/"},
		{target: "/a%20b/c%3Fd", wantURI: "/a%20b/c%3Fd", wantPath: "/a b/c?d"},
		{target: "/x?q=/../admin&b=%2F", wantURI: "/x?q=/../admin&b=%2F"},
		{target: "/apple", wantURI: "/apple"},
		// Base path mapping: the prefix is replaced by the upstream's path.
		{target: "/app", wantURI: "/base/"}, // through a 308 to /app/ (slashRedirect)
		{target: "/app/", wantURI: "/base/"},
		{target: "/app/x/../y?z=1", wantURI: "/base/y?z=1"},
		{target: "/app;jsessionid=7/x", wantURI: "/base;jsessionid=7/x"},
		{target: "/", host: "based.example", wantURI: "/base/"},
		{target: "/p", host: "based.example", wantURI: "/base/p"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, g.srv.URL, nil)
			req.URL.Opaque = tt.target
			if tt.host != "" {
				req.Host = tt.host
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var s seen
			if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
			if s.RequestURI != tt.wantURI {
				t.Fatalf("upstream saw %q; want %q", s.RequestURI, tt.wantURI)
			}
			if tt.wantPath != "" && s.Path != tt.wantPath {
				t.Fatalf("upstream path %q; want %q", s.Path, tt.wantPath)
			}
		})
	}
	for _, bad := range []string{"/a%2fb", "/a%5Cb", "/a/..;/b", "/a%00"} {
		if res := g.do(t, http.MethodGet, bad, nil); res.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: status %d; want 400", bad, res.StatusCode)
		}
	}
}

// The path is canonicalised again inside Forward: a caller that forgets to
// canonicalise cannot forward a different path than a careful one would.
func TestForwardRejectsBadPathItself(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("upstream reached with %q", r.RequestURI)
	}))
	p := mustNew(t, Options{Routes: []Route{{Name: "r", Upstream: mustURL(t, up.URL)}}})
	rt, _ := p.Match("x", "/")
	req := httptest.NewRequest(http.MethodGet, "/a%2fb", nil)
	rec := httptest.NewRecorder()
	p.Forward(rec, req, rt, nil)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d; want 400", rec.Code)
	}
}

func TestForwardUnknownRoute(t *testing.T) {
	var got error
	p := mustNew(t, Options{
		Routes:       []Route{{Name: "r", Upstream: mustURL(t, "http://up.invalid")}},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) { got = err; w.WriteHeader(599) },
	})
	rec := httptest.NewRecorder()
	p.Forward(rec, httptest.NewRequest(http.MethodGet, "/", nil), &Route{Name: "other"}, nil)
	if !errors.Is(got, ErrUnknownRoute) || rec.Code != 599 {
		t.Fatalf("err %v, status %d", got, rec.Code)
	}
	// A route whose prefix the path is not under is refused, not guessed.
	p2 := mustNew(t, Options{
		Routes:       []Route{{Name: "app", PathPrefix: "/app/deep", Upstream: mustURL(t, "http://up.invalid/base")}},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) { got = err; w.WriteHeader(599) },
	})
	got = nil
	rec = httptest.NewRecorder()
	p2.Forward(rec, httptest.NewRequest(http.MethodGet, "/other", nil), &p2.Routes()[0], nil)
	if !errors.Is(got, ErrUnknownRoute) || rec.Code != 599 {
		t.Fatalf("path outside prefix: err %v, status %d", got, rec.Code)
	}
}

func TestIdentityHeaders(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(echoHandler))
	g := newGateway(t, Options{
		Routes: []Route{
			{Name: "default", Upstream: mustURL(t, up.URL)},
			{Name: "custom", PathPrefix: "/custom", Upstream: mustURL(t, up.URL), UserHeader: "X-Custom-User", GroupsHeader: "X-Custom-Groups"},
		},
		StripHeaders: []string{"X-Extra-Identity"},
	})
	spoofs := readLines(t, "testdata/spoofed_headers.txt")
	spoof := http.Header{}
	for _, name := range spoofs {
		spoof[name] = []string{"admin"}
	}
	spoof["Cookie"] = []string{"a=1"}

	// identityHeaders returns every received header that folds to an
	// identity name, with its values.
	identityHeaders := func(s seen) map[string][]string {
		out := map[string][]string{}
		for k, v := range s.Header {
			for _, name := range append(spoofs, "X-Custom-Groups") {
				if normalizeHeaderName(k) == normalizeHeaderName(name) {
					out[k] = v
				}
			}
		}
		return out
	}
	tests := []struct {
		name   string
		target string
		id     *Identity
		want   map[string][]string
	}{
		{name: "no identity", target: "/", id: nil, want: map[string][]string{}},
		{name: "identity", target: "/", id: &Identity{User: "alice", Groups: []string{"ops", "dev"}},
			want: map[string][]string{"Remote-User": {"alice"}, "Remote-Groups": {"ops,dev"}}},
		{name: "identity without groups", target: "/", id: &Identity{User: "bob"},
			want: map[string][]string{"Remote-User": {"bob"}}},
		{name: "custom names", target: "/custom/x", id: &Identity{User: "carol", Groups: []string{"g"}},
			want: map[string][]string{"X-Custom-User": {"carol"}, "X-Custom-Groups": {"g"}}},
		{name: "custom route strips other routes' names", target: "/custom/x", id: nil, want: map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.set(nil, tt.id)
			s := g.echo(t, tt.target, spoof)
			got := identityHeaders(s)
			if len(got) != len(tt.want) {
				t.Fatalf("upstream identity headers = %v; want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if strings.Join(got[k], "|") != strings.Join(v, "|") {
					t.Fatalf("upstream %s = %q; want %q (all: %v)", k, got[k], v, got)
				}
			}
			if s.Header.Get("Cookie") != "a=1" {
				t.Fatalf("unrelated header lost: Cookie = %q", s.Header.Get("Cookie"))
			}
		})
	}
}

func TestCookies(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "authgate_session=planted; Path=/")
		w.Header().Add("Set-Cookie", "__Host-authgate_session=planted; Path=/; Secure")
		w.Header().Add("Set-Cookie", "app=1; Path=/")
		echoHandler(w, r)
	}))
	g := newGateway(t, Options{
		Routes:       []Route{{Name: "r", Upstream: mustURL(t, up.URL)}},
		StripCookies: []string{"authgate_session", "authgate_csrf"},
	})
	tests := []struct {
		name string
		in   []string
		want string // "" = no Cookie header
	}{
		{"only others", []string{"a=1; b=2"}, "a=1; b=2"},
		{"mixed", []string{"a=1; authgate_session=s3cret; b=\"q v\""}, "a=1; b=\"q v\""},
		{"prefixed forms", []string{"__Host-authgate_session=x; c=3; __Secure-authgate_session=y"}, "c=3"},
		{"only gateway", []string{"authgate_session=x; authgate_csrf=y"}, ""},
		{"several lines", []string{"a=1; authgate_csrf=t", "authgate_session=s; b=2"}, "a=1; b=2"},
		{"case matters", []string{"AUTHGATE_SESSION=x"}, "AUTHGATE_SESSION=x"},
		{"similar name kept", []string{"authgate_session2=x"}, "authgate_session2=x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := g.do(t, http.MethodGet, "/", http.Header{"Cookie": tt.in})
			var s seen
			if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
			if got := s.Header["Cookie"]; strings.Join(got, "|") != tt.want {
				t.Fatalf("upstream Cookie = %q; want %q", got, tt.want)
			}
			if sc := res.Header.Values("Set-Cookie"); len(sc) != 1 || sc[0] != "app=1; Path=/" {
				t.Fatalf("client Set-Cookie = %q; want only the app's", sc)
			}
		})
	}
}

func TestForwardedHeaders(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(echoHandler))
	upHost := mustURL(t, up.URL).Host
	g := newGateway(t, Options{Routes: []Route{
		{Name: "plain", Upstream: mustURL(t, up.URL)},
		{Name: "keep", PathPrefix: "/keep", Upstream: mustURL(t, up.URL), PreserveHost: true},
	}})
	gwHost := mustURL(t, g.srv.URL).Host
	spoof := http.Header{
		"X-Forwarded-For":   {"6.6.6.6"},
		"X-Forwarded-Proto": {"https"},
		"X-Forwarded-Host":  {"evil.example"},
		"X-Real-Ip":         {"6.6.6.6"},
		"Forwarded":         {"for=6.6.6.6;proto=https"},
	}
	ip := netip.MustParseAddr
	tests := []struct {
		name                     string
		target                   string
		client                   *middleware.Client
		wantXFF, wantProto, want string // want = X-Forwarded-Host
		wantRealIP, wantHost     string
	}{
		{
			name: "no client: conservative", target: "/",
			wantXFF: "127.0.0.1", wantProto: "http", want: gwHost, wantRealIP: "127.0.0.1", wantHost: upHost,
		},
		{
			name: "direct client", target: "/",
			client:  &middleware.Client{IP: ip("198.51.100.7"), Peer: ip("198.51.100.7"), Scheme: "https", Host: "panel.example"},
			wantXFF: "198.51.100.7", wantProto: "https", want: "panel.example", wantRealIP: "198.51.100.7", wantHost: upHost,
		},
		{
			name: "via trusted proxy", target: "/",
			client: &middleware.Client{
				IP: ip("203.0.113.5"), Peer: ip("10.0.0.2"), ViaTrustedProxy: true,
				ForwardedFor: []netip.Addr{ip("203.0.113.5"), ip("10.0.0.1")}, Scheme: "https", Host: "panel.example:8443",
			},
			wantXFF: "203.0.113.5, 10.0.0.1, 10.0.0.2", wantProto: "https", want: "panel.example:8443", wantRealIP: "203.0.113.5", wantHost: upHost,
		},
		{
			name: "chain ignored when not trusted", target: "/",
			client: &middleware.Client{
				IP: ip("10.0.0.2"), Peer: ip("10.0.0.2"), ViaTrustedProxy: false,
				ForwardedFor: []netip.Addr{ip("203.0.113.5")}, Scheme: "http", Host: "panel.example",
			},
			wantXFF: "10.0.0.2", wantProto: "http", want: "panel.example", wantRealIP: "10.0.0.2", wantHost: upHost,
		},
		{
			name: "preserve host", target: "/keep/x",
			wantXFF: "127.0.0.1", wantProto: "http", want: gwHost, wantRealIP: "127.0.0.1", wantHost: gwHost,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.set(tt.client, nil)
			s := g.echo(t, tt.target, spoof)
			h := s.Header
			if got := strings.Join(h["X-Forwarded-For"], "|"); got != tt.wantXFF {
				t.Errorf("X-Forwarded-For = %q; want %q", got, tt.wantXFF)
			}
			if got := strings.Join(h["X-Forwarded-Proto"], "|"); got != tt.wantProto {
				t.Errorf("X-Forwarded-Proto = %q; want %q", got, tt.wantProto)
			}
			if got := strings.Join(h["X-Forwarded-Host"], "|"); got != tt.want {
				t.Errorf("X-Forwarded-Host = %q; want %q", got, tt.want)
			}
			if got := strings.Join(h["X-Real-Ip"], "|"); got != tt.wantRealIP {
				t.Errorf("X-Real-Ip = %q; want %q", got, tt.wantRealIP)
			}
			if h.Get("Forwarded") != "" {
				t.Errorf("Forwarded = %q; want none", h.Get("Forwarded"))
			}
			if s.Host != tt.wantHost {
				t.Errorf("Host = %q; want %q", s.Host, tt.wantHost)
			}
		})
	}
}

// Regression: ReverseProxy drops the canonical X-Forwarded-For/-Host/
// -Proto only, so "X-Forwarded_For: 6.6.6.6" or "X-Real_IP" reached the
// panel next to the gateway's own values (a CGI-style panel reads both as
// HTTP_X_FORWARDED_FOR), and X-Original-URL / X-Rewrite-URL, which make
// some servers serve another path than the one the gateway authorised,
// were forwarded on every route, bypass routes included.
func TestForwardedHeaderSpellingsStripped(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(echoHandler))
	g := newGateway(t, Options{Routes: []Route{
		{Name: "protected", Upstream: mustURL(t, up.URL), Policy: "two_factor"},
		{Name: "public", PathPrefix: "/public", Upstream: mustURL(t, up.URL), Policy: "bypass"},
	}})
	ip := netip.MustParseAddr
	client := &middleware.Client{IP: ip("198.51.100.7"), Peer: ip("198.51.100.7"), Scheme: "https", Host: "panel.example"}
	own := map[string]string{ // the gateway's values, by folded name
		"x-forwarded-for": "198.51.100.7", "x-real-ip": "198.51.100.7",
		"x-forwarded-host": "panel.example", "x-forwarded-proto": "https",
	}
	names := readLines(t, "testdata/spoofed_forwarded_headers.txt")
	for _, tt := range []struct {
		route, target string
		id            *Identity
	}{
		{"protected", "/x", &Identity{User: "alice"}},
		{"bypass", "/public/x", nil},
	} {
		for _, name := range names {
			t.Run(tt.route+"/"+name, func(t *testing.T) {
				g.set(client, tt.id)
				s := g.echo(t, tt.target, http.Header{name: {"/admin?6.6.6.6"}})
				want := normalizeHeaderName(name)
				for k, v := range s.Header {
					if normalizeHeaderName(k) != want {
						continue
					}
					if own[want] == "" || k != http.CanonicalHeaderKey(want) || len(v) != 1 || v[0] != own[want] {
						t.Fatalf("upstream got %s: %q (client sent %s)", k, v, name)
					}
				}
			})
		}
	}
}

// Regression: the Set-Cookie filter compared the exact name before the
// first "=", so a nameless cookie ("=authgate_session=x", which browsers
// send back as "authgate_session=x"), a value without "=" and a name in
// another letter case ("__HOST-authgate_session") reached the browser.
func TestSetCookiePlantsDropped(t *testing.T) {
	planted := readLines(t, "testdata/planted_set_cookies.txt")
	// readLines trims lines; the file's leading blanks and tabs matter.
	planted = append(planted, " authgate_session =planted; Path=/", "\tauthgate_session\t=planted", " =authgate_session=planted")
	kept := []string{
		"app=1; Path=/",
		"authgate_session2=x",
		"my_authgate_session=x; HttpOnly",
		"cpsession=abc%3Adef; path=/; secure; HttpOnly",
		"x=authgate_session=planted",
		"__Host-app=1; Path=/; Secure",
	}
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range append(append([]string(nil), planted...), kept...) {
			w.Header().Add("Set-Cookie", c)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	g := newGateway(t, Options{
		Routes:       []Route{{Name: "r", Upstream: mustURL(t, up.URL)}},
		StripCookies: []string{"authgate_session", "authgate_csrf"},
	})
	res := g.do(t, http.MethodGet, "/", nil)
	got := res.Header.Values("Set-Cookie")
	if strings.Join(got, "\n") != strings.Join(kept, "\n") {
		t.Fatalf("client Set-Cookie:\n%s\nwant only:\n%s", strings.Join(got, "\n"), strings.Join(kept, "\n"))
	}
	// Nameless cookies are dropped even when the gateway names no cookie.
	h := http.Header{"Set-Cookie": {"=x=1", "ok=1", "novalue"}}
	mustNew(t, Options{Routes: []Route{{Name: "r", Upstream: mustURL(t, up.URL)}}}).filterSetCookies(h)
	if got := h["Set-Cookie"]; len(got) != 1 || got[0] != "ok=1" {
		t.Fatalf("without gateway cookies: Set-Cookie = %q", got)
	}
}
