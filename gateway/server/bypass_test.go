package server_test

// Bypass tests of issue 5: every request an attacker can shape is sent
// through the real server (with Serve's header limits) to real upstreams
// that record what they receive. Payloads live in testdata/.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
)

// hit is one request as an upstream received it.
type hit struct {
	Method     string      `json:"method"`
	Path       string      `json:"path"`
	RawQuery   string      `json:"query"`
	RequestURI string      `json:"request_uri"`
	Host       string      `json:"host"`
	Header     http.Header `json:"header"`
}

// recorder is an upstream that records every request and answers 200
// with the request as JSON.
type recorder struct {
	URL  string
	mu   sync.Mutex
	hits []hit
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := hit{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()}
		// The gateway's own health probes (no identity, no client input)
		// are not requests that got through.
		if r.UserAgent() != "authgate-health-probe" {
			rec.mu.Lock()
			rec.hits = append(rec.hits, h)
			rec.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "reached")
		_ = json.NewEncoder(w).Encode(h)
	}))
	t.Cleanup(up.Close)
	rec.URL = up.URL
	return rec
}

// take returns and forgets the recorded requests.
func (r *recorder) take() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hits
	r.hits = nil
	return h
}

// served starts g's server with Serve (its real timeouts and header
// limits) on a fresh loopback port and returns a copy of g pointing there.
func served(t *testing.T, g *gateway) *gateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cp := *g
	cp.URL = "http://" + ln.Addr().String()
	return &cp
}

// twoRoutes is the bypass-test gateway: /public (bypass) and /admin
// (two_factor, identity in X-Panel-User/X-Panel-Groups), mode required,
// served by Serve.
func twoRoutes(t *testing.T, adjust func(*config.Config)) (*gateway, *recorder, *recorder) {
	t.Helper()
	pub, adm := newRecorder(t), newRecorder(t)
	g := startGatewayWith(t, gwOpts{mode: "required", routes: []config.Route{
		{Name: "public", PathPrefix: "/public", Upstream: pub.URL, Policy: config.PolicyBypass},
		{Name: "admin", PathPrefix: "/admin", Upstream: adm.URL, Policy: config.PolicyTwoFactor,
			IdentityHeaders: config.IdentityHeaders{User: "X-Panel-User", Groups: "X-Panel-Groups"}},
	}}, adjust)
	g.addUser(t, "alice", "correct horse", "ops")
	return served(t, g), pub, adm
}

// signIn2FA signs alice in with password and a fresh TOTP enrolment (mode
// required) and returns her session cookie value and TOTP secret.
func signIn2FA(t *testing.T, g *gateway, b *browser) (cookie, secret string) {
	t.Helper()
	login(t, b, "alice", "correct horse")
	secret = secretEnrol(t, g, b)
	return sessionCookie(t, g, b), secret
}

// sessionCookie is the browser's current session id.
func sessionCookie(t *testing.T, g *gateway, b *browser) string {
	t.Helper()
	u, _ := url.Parse(g.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "authgate_session" {
			return c.Value
		}
	}
	t.Fatal("browser has no session cookie")
	return ""
}

// payloads reads a testdata list: blank lines and # comments skipped,
// lines starting with a double quote unquoted.
func payloads(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, `"`) {
			if line, err = strconv.Unquote(line); err != nil {
				t.Fatalf("%s:%d: bad quoted line: %v", name, i+1, err)
			}
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no payloads", name)
	}
	return out
}

// rawResp is the answer to a raw request; status 0 means the server
// closed the connection without an HTTP answer.
type rawResp struct {
	status int
	header http.Header
	body   string
}

// rawDo sends head (request line and headers, no final blank line) byte
// for byte to addr, adding Connection: close.
func rawDo(t *testing.T, addr, head string) rawResp {
	t.Helper()
	return rawDoBody(t, addr, head, "")
}

// rawDoBody is rawDo with a body (Content-Length added when body is not
// empty).
func rawDoBody(t *testing.T, addr, head, body string) rawResp {
	t.Helper()
	if body != "" {
		head += "\r\nContent-Length: " + strconv.Itoa(len(body))
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(conn, head+"\r\nConnection: close\r\n\r\n"+body); err != nil {
		return rawResp{}
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return rawResp{}
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return rawResp{status: res.StatusCode, header: res.Header, body: string(data)}
}

func hostOf(g *gateway) string { return strings.TrimPrefix(g.URL, "http://") }

// noHits fails if any recorder saw a request.
func noHits(t *testing.T, what string, recs ...*recorder) {
	t.Helper()
	for _, r := range recs {
		if h := r.take(); len(h) > 0 {
			t.Errorf("%s: reached an upstream: %s %.100s", what, h[0].Method, h[0].RequestURI)
		}
	}
}

func TestBypassMalformedRequests(t *testing.T) {
	g, pub, adm := twoRoutes(t, nil)
	cookie, _ := signIn2FA(t, g, g.browser(t))
	// The session works for a well-formed request.
	if r := rawDo(t, hostOf(g), "GET /admin/x HTTP/1.1\r\nHost: "+hostOf(g)+"\r\nCookie: authgate_session="+cookie); r.status != http.StatusOK {
		t.Fatalf("control request: status %d", r.status)
	}
	adm.take()
	long := strings.Repeat("a", server.MaxHeaderBytes+8192)
	for _, p := range payloads(t, "testdata/malformed_requests.txt") {
		head := strings.NewReplacer("{host}", hostOf(g), "{long}", long).Replace(p)
		for _, withCookie := range []bool{false, true} {
			h := head
			if withCookie {
				h += "\r\nCookie: authgate_session=" + cookie
			}
			r := rawDo(t, hostOf(g), h)
			if r.status == http.StatusOK || r.header.Get("X-Upstream") != "" {
				t.Errorf("%.80q (cookie %v): status %d, upstream %q", p, withCookie, r.status, r.header.Get("X-Upstream"))
			}
			noHits(t, strconv.Quote(p[:min(len(p), 80)]), pub, adm)
		}
	}
	// The gateway is still serving.
	if r := rawDo(t, hostOf(g), "GET /admin/x HTTP/1.1\r\nHost: "+hostOf(g)+"\r\nCookie: authgate_session="+cookie); r.status != http.StatusOK {
		t.Fatalf("after the payloads: status %d", r.status)
	}
}

func TestBypassPathCanonicalisation(t *testing.T) {
	g, pub, adm := twoRoutes(t, nil)
	// The gateway's paths are also checked against a catch-all route
	// that would forward anything the gateway failed to claim.
	catchAll := newRecorder(t)
	cg := served(t, startGateway(t, gwOpts{mode: "off", routes: []config.Route{
		{Name: "all", PathPrefix: "/", Upstream: catchAll.URL, Policy: config.PolicyBypass}}}))
	cookie, _ := signIn2FA(t, g, g.browser(t))
	host := hostOf(g)
	n := 0
	for _, p := range payloads(t, "testdata/paths.txt") {
		target, expect, ok := strings.Cut(p, "\t")
		if !ok {
			t.Fatalf("paths.txt: no expectation in %q", p)
		}
		kind, want, _ := strings.Cut(expect, ":")
		n++
		for _, signedIn := range []bool{false, true} {
			head := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: text/html"
			if signedIn {
				head += "\r\nCookie: authgate_session=" + cookie
			}
			r := rawDo(t, host, head)
			what := strconv.Quote(target)
			if signedIn {
				what += " (signed in)"
			}
			pubHits, admHits := pub.take(), adm.take()
			switch kind {
			case "reject":
				if r.status != http.StatusBadRequest || len(pubHits)+len(admHits) > 0 {
					t.Errorf("%s: status %d, upstream hits %d; want 400 and none", what, r.status, len(pubHits)+len(admHits))
				}
			case "none":
				if r.status != http.StatusNotFound || len(pubHits)+len(admHits) > 0 {
					t.Errorf("%s: status %d, upstream hits %d; want 404 and none", what, r.status, len(pubHits)+len(admHits))
				}
			case "gateway":
				if len(pubHits)+len(admHits) > 0 || r.header.Get("X-Upstream") != "" {
					t.Errorf("%s: a gateway path reached an upstream", what)
				}
				if r := rawDo(t, hostOf(cg), "GET "+target+" HTTP/1.1\r\nHost: "+hostOf(cg)); r.header.Get("X-Upstream") != "" {
					t.Errorf("%s: a gateway path was forwarded by a catch-all route", what)
				}
				noHits(t, what+" (catch-all)", catchAll)
			case "public":
				if r.status != http.StatusOK || len(pubHits) != 1 || len(admHits) != 0 {
					t.Errorf("%s: status %d, public hits %d, admin hits %d; want the public upstream once", what, r.status, len(pubHits), len(admHits))
				} else if pubHits[0].Path != want {
					t.Errorf("%s: public upstream saw path %q, want %q", what, pubHits[0].Path, want)
				}
			case "admin":
				if !signedIn {
					if r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), "/.authgate/login?rd=") || len(admHits)+len(pubHits) > 0 {
						t.Errorf("%s: status %d (Location %q), hits %d; want the login challenge and no upstream", what, r.status, r.header.Get("Location"), len(admHits)+len(pubHits))
					}
					continue
				}
				if r.status != http.StatusOK || len(admHits) != 1 || len(pubHits) != 0 {
					t.Errorf("%s: status %d, admin hits %d, public hits %d; want the admin upstream once", what, r.status, len(admHits), len(pubHits))
				} else if admHits[0].Path != want {
					t.Errorf("%s: admin upstream saw path %q, want %q (the path that was matched)", what, admHits[0].Path, want)
				} else if admHits[0].Header.Get("X-Panel-User") != "alice" {
					t.Errorf("%s: admin upstream got no identity", what)
				}
			default:
				t.Fatalf("paths.txt: unknown expectation %q", expect)
			}
		}
	}
	if n < 100 {
		t.Fatalf("only %d path payloads", n)
	}
}

// TestBypassForwardedHeaders: X-Forwarded-* are believed only from
// trusted_proxies, unparsable ones fail closed there, and elsewhere they
// never reach the upstream or drive anything.
func TestBypassForwardedHeaders(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run("trusted="+strconv.FormatBool(trusted), func(t *testing.T) {
			g, pub, adm := twoRoutes(t, func(c *config.Config) {
				if trusted {
					c.TrustedProxies = []string{"127.0.0.1"}
				}
			})
			cookie, _ := signIn2FA(t, g, g.browser(t))
			host := hostOf(g)
			for _, p := range payloads(t, "testdata/forwarded_headers.txt") {
				// Anonymous: never the upstream, never 200.
				r := rawDo(t, host, "GET /admin/x HTTP/1.1\r\nHost: "+host+"\r\n"+p)
				if r.status == http.StatusOK {
					t.Errorf("%q anonymous: 200", p)
				}
				noHits(t, strconv.Quote(p), pub, adm)
				// Signed in.
				r = rawDo(t, host, "GET /admin/x HTTP/1.1\r\nHost: "+host+"\r\nCookie: authgate_session="+cookie+"\r\n"+p)
				hits := adm.take()
				if trusted {
					if r.status != http.StatusBadRequest || len(hits) > 0 {
						t.Errorf("%q from a trusted proxy: status %d, upstream hits %d; want 400, none", p, r.status, len(hits))
					}
					continue
				}
				if r.status != http.StatusOK || len(hits) != 1 {
					t.Errorf("%q from an untrusted peer: status %d, hits %d; want the header ignored", p, r.status, len(hits))
					continue
				}
				hd := hits[0].Header
				if got := strings.Join(hd.Values("X-Forwarded-For"), ","); got != "127.0.0.1" {
					t.Errorf("%q: upstream X-Forwarded-For %q, want 127.0.0.1", p, got)
				}
				if got := strings.Join(hd.Values("X-Forwarded-Proto"), ","); got != "http" {
					t.Errorf("%q: upstream X-Forwarded-Proto %q, want http", p, got)
				}
				if got := strings.Join(hd.Values("X-Forwarded-Host"), ","); got != host {
					t.Errorf("%q: upstream X-Forwarded-Host %q, want %q", p, got, host)
				}
			}
		})
	}
}

// TestForwardedHeadersNeverDriveRedirectsCookiesOrIssuer: from an
// untrusted peer, X-Forwarded-Host/-Proto change neither the login
// redirect, nor rd validation, nor the cookie flags; the QR issuer never
// comes from the request at all, trusted proxy or not.
func TestForwardedHeadersNeverDriveRedirectsCookiesOrIssuer(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run("trusted="+strconv.FormatBool(trusted), func(t *testing.T) {
			g, _, _ := twoRoutes(t, func(c *config.Config) {
				c.PublicURL = "https://panel.example.com"
				c.TwoFactor.Issuer = "" // default: host of public_url
				if trusted {
					c.TrustedProxies = []string{"127.0.0.1"}
				}
			})
			host := hostOf(g)
			spoof := "\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.9"
			get := func(target, cookies string) rawResp {
				return rawDo(t, host, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nAccept: text/html"+spoof+cookies)
			}
			r := get("/admin/x", "")
			if r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), "/.authgate/login?rd=") {
				t.Errorf("challenge: %d, Location %q; want a path on this gateway", r.status, r.header.Get("Location"))
			}
			// Sign in with the spoofed headers and an rd on the spoofed host.
			page := get("/.authgate/login", "")
			m := csrfRE.FindStringSubmatch(page.body)
			if m == nil {
				t.Fatalf("no csrf token: %d", page.status)
			}
			tok := m[1] + m[2]
			csrfName, sessName, origin := "authgate_csrf", "authgate_session", g.URL
			if trusted {
				csrfName, sessName, origin = "__Host-authgate_csrf", "__Host-authgate_session", "https://evil.example"
			}
			csrfCookie := cookieFrom(page.header, csrfName)
			if csrfCookie == nil {
				t.Fatalf("no csrf cookie %s in %q", csrfName, page.header.Values("Set-Cookie"))
			}
			if csrfCookie.Secure != trusted {
				t.Errorf("csrf cookie %s: %+v; Secure must follow the trusted scheme only", csrfName, csrfCookie)
			}
			form := url.Values{"username": {"alice"}, "password": {"correct horse"}, "rd": {"https://evil.example/x"}, "csrf_token": {tok}}.Encode()
			r = rawDoBody(t, host, "POST /.authgate/login HTTP/1.1\r\nHost: "+host+spoof+"\r\nOrigin: "+origin+
				"\r\nContent-Type: application/x-www-form-urlencoded\r\nCookie: "+csrfName+"="+csrfCookie.Value, form)
			if r.status != http.StatusSeeOther {
				t.Fatalf("login: status %d: %.300s", r.status, r.body)
			}
			sc := cookieFrom(r.header, sessName)
			if sc == nil {
				t.Fatalf("no %s cookie in %q", sessName, r.header.Values("Set-Cookie"))
			}
			if sc.Secure != trusted {
				t.Errorf("session cookie Secure=%v with trusted=%v", sc.Secure, trusted)
			}
			if r.header.Get("Location") != "/.authgate/enroll" {
				t.Errorf("after login went to %q", r.header.Get("Location"))
			}
			// The pending session remembers rd: evil.example only when a
			// trusted proxy vouched for that host.
			if trusted {
				r = rawDo(t, host, "GET /.authgate/enroll HTTP/1.1\r\nHost: "+host+spoof+"\r\nCookie: "+sessName+"="+sc.Value)
			} else {
				r = get("/.authgate/enroll", "\r\nCookie: "+sessName+"="+sc.Value)
			}
			if r.status != http.StatusOK {
				t.Fatalf("enrol page: %d", r.status)
			}
			otp := otpauthRE.FindString(r.body)
			if otp == "" || strings.Contains(otp, "evil") || !strings.Contains(otp, "issuer=panel.example.com") ||
				!strings.Contains(otp, "totp/panel.example.com:alice") {
				t.Errorf("otpauth URL %q: issuer must be the configured default", otp)
			}
			if !trusted && strings.Contains(r.body, "evil.example") {
				t.Errorf("enrol page mentions the spoofed host")
			}
		})
	}
}

var otpauthRE = regexp.MustCompile(`otpauth://totp/[^"'<> ]+`)

// cookieFrom finds a Set-Cookie by name.
func cookieFrom(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestBypassSessionCookies(t *testing.T) {
	g, pub, adm := twoRoutes(t, nil)
	full, _ := signIn2FA(t, g, g.browser(t))
	// A second, half-finished sign-in of alice (code owed).
	pb := g.browser(t)
	login(t, pb, "alice", "correct horse")
	pending := sessionCookie(t, g, pb)
	host := hostOf(g)
	repl := strings.NewReplacer(
		"{hash}", session.HashID(full),
		"{pending}", pending,
		"{real_cut}", full[:len(full)-1],
		"{real_plus}", full+"A",
		"{long}", strings.Repeat("A", server.MaxHeaderBytes+8192),
	)
	for _, p := range payloads(t, "testdata/session_cookies.txt") {
		c := repl.Replace(p)
		for _, target := range []string{"/admin/x", "/.authgate/account", "/.authgate/admin"} {
			r := rawDo(t, host, "GET "+target+" HTTP/1.1\r\nHost: "+host+"\r\nCookie: "+c)
			if r.status == http.StatusOK || r.header.Get("X-Upstream") != "" {
				t.Errorf("cookie %.60q on %s: status %d", p, target, r.status)
			}
		}
		noHits(t, strconv.Quote(p), pub, adm)
	}
	// The real session still works: the payloads did not disturb it.
	if r := rawDo(t, host, "GET /admin/x HTTP/1.1\r\nHost: "+host+"\r\nCookie: authgate_session="+full); r.status != http.StatusOK {
		t.Fatalf("real session after the payloads: %d", r.status)
	}
}

func TestBypassIdentityHeadersStripped(t *testing.T) {
	g, pub, adm := twoRoutes(t, nil)
	cookie, _ := signIn2FA(t, g, g.browser(t))
	host := hostOf(g)
	names := payloads(t, "testdata/identity_headers.txt")
	var all strings.Builder
	for i, name := range names {
		all.WriteString("\r\n" + name + ": mallory" + strconv.Itoa(i))
	}
	for _, tc := range []struct {
		target string
		rec    *recorder
		other  *recorder
	}{{"/admin/x", adm, pub}, {"/public/x", pub, adm}} {
		// One header at a time and all at once.
		heads := []string{all.String()}
		for i, name := range names {
			heads = append(heads, "\r\n"+name+": mallory"+strconv.Itoa(i))
		}
		for _, extra := range heads {
			r := rawDo(t, host, "GET "+tc.target+" HTTP/1.1\r\nHost: "+host+"\r\nCookie: authgate_session="+cookie+extra)
			hits := tc.rec.take()
			if r.status != http.StatusOK || len(hits) != 1 {
				t.Fatalf("%s with %q: status %d, hits %d", tc.target, extra, r.status, len(hits))
			}
			for k, vs := range hits[0].Header {
				for _, v := range vs {
					if strings.Contains(v, "mallory") {
						t.Errorf("%s: spoofed header %s: %s reached the upstream", tc.target, k, v)
					}
				}
			}
			if tc.target == "/admin/x" {
				if got := hits[0].Header.Values("X-Panel-User"); len(got) != 1 || got[0] != "alice" {
					t.Errorf("X-Panel-User upstream = %q, want exactly alice", got)
				}
				if got := hits[0].Header.Values("X-Panel-Groups"); len(got) != 1 || got[0] != "ops" {
					t.Errorf("X-Panel-Groups upstream = %q, want exactly ops", got)
				}
			}
			noHits(t, tc.target, tc.other)
		}
	}
}

func TestBypassHostHeader(t *testing.T) {
	panel, open := newRecorder(t), newRecorder(t)
	g := startGatewayWith(t, gwOpts{mode: "required", routes: []config.Route{
		{Name: "panel", Host: "panel.example", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyTwoFactor},
		{Name: "open", Host: "open.example", PathPrefix: "/", Upstream: open.URL, Policy: config.PolicyBypass},
	}}, nil)
	g = served(t, g)
	addr := hostOf(g)
	for _, p := range payloads(t, "testdata/hosts.txt") {
		cols := strings.Split(p, "\t")
		if len(cols) < 2 {
			t.Fatalf("hosts.txt: bad line %q", p)
		}
		hostHdr, expect, target := cols[0], cols[1], "/x"
		if len(cols) > 2 {
			target = cols[2]
		}
		what := strconv.Quote(hostHdr) + " " + target
		for _, xfh := range []string{"", "\r\nX-Forwarded-Host: open.example"} {
			r := rawDo(t, addr, "GET "+target+" HTTP/1.1\r\nHost: "+hostHdr+"\r\nAccept: text/html"+xfh)
			ph, oh := panel.take(), open.take()
			switch expect {
			case "panel":
				if r.status != http.StatusFound || len(ph)+len(oh) > 0 {
					t.Errorf("%s%s: status %d, hits panel %d open %d; want the panel's challenge", what, xfh, r.status, len(ph), len(oh))
				}
			case "open":
				if r.status != http.StatusOK || len(oh) != 1 || len(ph) != 0 {
					t.Errorf("%s%s: status %d, hits panel %d open %d; want the open upstream", what, xfh, r.status, len(ph), len(oh))
				}
			case "none":
				if r.status != http.StatusNotFound || len(ph)+len(oh) > 0 {
					t.Errorf("%s%s: status %d, hits %d; want 404 and no upstream", what, xfh, r.status, len(ph)+len(oh))
				}
			case "reject":
				if r.status != http.StatusBadRequest || len(ph)+len(oh) > 0 {
					t.Errorf("%s%s: status %d, hits %d; want 400 and no upstream", what, xfh, r.status, len(ph)+len(oh))
				}
			default:
				t.Fatalf("hosts.txt: unknown expectation %q", expect)
			}
		}
	}
}

// TestOpenRedirectPayloadsThroughLoginAndLogout drives every payload of
// gateway/auth/testdata/openredirects.txt through the login form, the
// login page of a signed-in user and the logout form.
func TestOpenRedirectPayloadsThroughLoginAndLogout(t *testing.T) {
	g := startGateway(t, gwOpts{mode: "off"})
	g.addUser(t, "alice", "correct horse")
	g = served(t, g)
	list := payloads(t, "../auth/testdata/openredirects.txt")
	if len(list) < 200 {
		t.Fatalf("only %d open-redirect payloads, want at least 200", len(list))
	}
	b := g.browser(t)
	page := b.get("/.authgate/login")
	m := csrfRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("no csrf token")
	}
	tok := m[1] + m[2]
	for _, rd := range list {
		r := b.do("POST", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "rd": {rd}, "csrf_token": {tok}}, nil)
		if r.status != http.StatusSeeOther || location(r) != "/" {
			t.Errorf("login rd %q: status %d, Location %q; want /", rd, r.status, location(r))
		}
		// Signed in: the login page forwards to rd at once.
		r = b.get("/.authgate/login?rd=" + url.QueryEscape(rd))
		if r.status != http.StatusSeeOther || location(r) != "/" {
			t.Errorf("login page rd %q: status %d, Location %q; want /", rd, r.status, location(r))
		}
		if strings.Contains(r.body, "evil") {
			t.Errorf("login page rd %q: body mentions the payload", rd)
		}
		// Logout ignores rd: always the login page. Its form carries the
		// session's token (the login page's token was bound to the
		// pre-session cookie, and works again once signed out).
		out := csrfRE.FindStringSubmatch(b.get("/.authgate/logout").body)
		if out == nil {
			t.Fatal("no csrf token on the logout page")
		}
		r = b.do("POST", "/.authgate/logout", url.Values{"rd": {rd}, "csrf_token": {out[1] + out[2]}}, nil)
		if r.status != http.StatusSeeOther || location(r) != "/.authgate/login?signed_out=1" {
			t.Errorf("logout rd %q: status %d, Location %q", rd, r.status, location(r))
		}
	}
	// Signed out, the login form carries only safe rd values.
	for _, rd := range list[:40] {
		r := b.get("/.authgate/login?rd=" + url.QueryEscape(rd))
		if r.status != http.StatusOK || strings.Contains(r.body, `name="rd" value="`+htmlAttr(rd)+`"`) && rd != "/" {
			t.Errorf("login form keeps rd %q", rd)
		}
	}
}

func htmlAttr(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// TestHalfAuthenticatedRefusedEverywhere: a session that passed the
// password but owes the code reaches nothing: no route of any policy, no
// account or admin page, no WebSocket upgrade. (There is no forward-auth
// endpoint yet; when one is added it belongs in this list.)
func TestHalfAuthenticatedRefusedEverywhere(t *testing.T) {
	panel, docs := newRecorder(t), newRecorder(t)
	g := startGateway(t, gwOpts{mode: "required", routes: []config.Route{
		{Name: "docs", PathPrefix: "/docs", Upstream: docs.URL, Policy: config.PolicyPassword},
		{Name: "panel", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyTwoFactor},
	}})
	g.addUser(t, "alice", "correct horse")
	if _, err := g.srv.Store().UpdateUser(context.Background(), "alice", func(x *store.User) error { x.Role = store.RoleAdmin; return nil }); err != nil {
		t.Fatal(err)
	}
	g = served(t, g)
	// Enrol once, then sign in again: pending at the code step.
	first := g.browser(t)
	login(t, first, "alice", "correct horse")
	secretEnrol(t, g, first)
	for _, stage := range []string{"enrol pending", "code pending"} {
		b := g.browser(t)
		if stage == "enrol pending" {
			// A user without an app yet: pending at the enrolment step.
			g.addUser(t, "bob", "correct horse")
			login(t, b, "bob", "correct horse")
		} else {
			login(t, b, "alice", "correct horse")
			if r := b.get("/.authgate/verify"); r.status != http.StatusOK {
				t.Fatalf("verify page: %d", r.status)
			}
		}
		cookie := sessionCookie(t, g, b)
		for _, target := range []string{"/", "/x", "/docs", "/docs/x", "/.authgate/account", "/.authgate/account/password",
			"/.authgate/account/sessions", "/.authgate/admin", "/.authgate/admin/users", "/.authgate/account/recovery/first"} {
			for _, accept := range []string{"text/html", "application/json"} {
				r := rawDo(t, hostOf(g), "GET "+target+" HTTP/1.1\r\nHost: "+hostOf(g)+"\r\nAccept: "+accept+"\r\nCookie: authgate_session="+cookie)
				if r.status == http.StatusOK || r.header.Get("X-Upstream") != "" {
					t.Errorf("%s: %s (%s): status %d", stage, target, accept, r.status)
				}
			}
			// POST too (API clients).
			r := rawDo(t, hostOf(g), "POST "+target+" HTTP/1.1\r\nHost: "+hostOf(g)+"\r\nContent-Length: 0\r\nCookie: authgate_session="+cookie)
			if r.status == http.StatusOK || r.header.Get("X-Upstream") != "" {
				t.Errorf("%s: POST %s: status %d", stage, target, r.status)
			}
		}
		// WebSocket upgrades.
		for _, target := range []string{"/ws", "/docs/ws"} {
			r := rawDo(t, hostOf(g), "GET "+target+" HTTP/1.1\r\nHost: "+hostOf(g)+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: "+g.URL+"\r\nCookie: authgate_session="+cookie)
			if r.status == http.StatusSwitchingProtocols || r.status == http.StatusOK {
				t.Errorf("%s: WebSocket %s: status %d", stage, target, r.status)
			}
		}
		noHits(t, stage, panel, docs)
	}
}

// TestBasicAuthNeverSkipsTheCode: the right password in an
// Authorization header is no sign-in at all, alone or with a session
// that owes the code.
func TestBasicAuthNeverSkipsTheCode(t *testing.T) {
	g, pub, adm := twoRoutes(t, nil)
	signIn2FA(t, g, g.browser(t))
	b := g.browser(t)
	login(t, b, "alice", "correct horse")
	pending := sessionCookie(t, g, b)
	basic := "Basic " + basicToken("alice", "correct horse")
	for _, c := range []string{"", "\r\nCookie: authgate_session=" + pending} {
		for _, accept := range []string{"text/html", "*/*"} {
			r := rawDo(t, hostOf(g), "GET /admin/x HTTP/1.1\r\nHost: "+hostOf(g)+"\r\nAccept: "+accept+"\r\nAuthorization: "+basic+c)
			if r.status == http.StatusOK {
				t.Errorf("Basic auth (pending cookie %v): 200", c != "")
			}
		}
		for _, target := range []string{"/.authgate/account", "/.authgate/admin"} {
			r := rawDo(t, hostOf(g), "GET "+target+" HTTP/1.1\r\nHost: "+hostOf(g)+"\r\nAuthorization: "+basic+c)
			if r.status == http.StatusOK {
				t.Errorf("Basic auth on %s: 200", target)
			}
		}
	}
	noHits(t, "basic auth", pub, adm)
}

func basicToken(user, pw string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pw)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
