//go:build linux

package server_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
)

// nginxBinary finds Debian's nginx; in CI its absence fails the test.
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx is not installed (apt-get install nginx; .ci/run does) and CI is set: the forward-auth integration test must run")
	}
	t.Skip("SKIPPING the nginx forward-auth integration test: nginx is not installed (apt-get install nginx)")
	return ""
}

// recordingUpstream counts and keeps the requests it gets, and counts
// the connections it accepts.
type recordingUpstream struct {
	*httptest.Server
	mu    sync.Mutex
	seen  []seen
	conns int
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Headers: r.Header.Clone()}
		u.mu.Lock()
		u.seen = append(u.seen, s)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	}))
	u.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			u.mu.Lock()
			u.conns++
			u.mu.Unlock()
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) accepted() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// startNginx runs nginx in the foreground with the documented
// configs/nginx-auth-request.conf, its addresses pointed at the gateway and
// upstream, on a free loopback port. It returns nginx's base URL.
func startNginx(t *testing.T, gatewayAddr, upstreamAddr string) string {
	t.Helper()
	return startNginxEdited(t, gatewayAddr, upstreamAddr, nil)
}

// startNginxEdited is startNginx with the documented config passed
// through edit first (nil: as shipped).
func startNginxEdited(t *testing.T, gatewayAddr, upstreamAddr string, edit func(t *testing.T, conf string) string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "configs", "nginx-auth-request.conf"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	if edit != nil {
		doc = edit(t, doc)
	}
	return "http://" + runNginxSite(t, func(port int) string {
		return replaceAll(t, "configs/nginx-auth-request.conf", doc, [][2]string{
			{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port)},
			{"127.0.0.1:9091", gatewayAddr},
			{"127.0.0.1:8080", upstreamAddr},
		})
	})
}

// replaceAll replaces each pair's first string with its second in doc
// (the text of file), all of them there.
func replaceAll(t *testing.T, file, doc string, pairs [][2]string) string {
	t.Helper()
	for _, r := range pairs {
		if !strings.Contains(doc, r[0]) {
			t.Fatalf("%s no longer contains %q (the test adapts it)", file, r[0])
		}
		doc = strings.ReplaceAll(doc, r[0], r[1])
	}
	return doc
}

// runNginxSite runs nginx in the foreground with the server blocks site
// writes for a free loopback port inside an http {} block, and returns
// the address it listens on (host:port).
func runNginxSite(t *testing.T, site func(port int) string) string {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, site(port))
		confPath := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start nginx: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			select {
			case err := <-exited:
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				lastErr = fmt.Errorf("nginx exited: %v\n%s\n%s", err, out.String(), log)
			default:
				c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
				if err == nil {
					_ = c.Close()
					t.Cleanup(func() {
						_ = cmd.Process.Kill()
						<-exited
						if t.Failed() {
							log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
							t.Logf("nginx error.log:\n%s", log)
						}
					})
					return addr
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					<-exited
					t.Fatalf("nginx did not listen on %s within 10s: %s", addr, out.String())
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			break
		}
		if !strings.Contains(lastErr.Error(), "Address already in use") {
			break
		}
	}
	t.Fatal(lastErr)
	return ""
}

// proxyClient is a browser of the gateway's pages through a proxy in
// front of it: it keeps cookies, asks for HTML, sends forms with the
// proxy's origin and follows no redirect.
type proxyClient struct {
	t      *testing.T
	c      *http.Client
	origin string
}

// newProxyClient returns a proxyClient for origin (the proxy's public
// base URL) over tr (nil: http.DefaultTransport).
func newProxyClient(t *testing.T, origin string, tr http.RoundTripper) *proxyClient {
	jar, _ := cookiejar.New(nil)
	return &proxyClient{t: t, origin: origin, c: &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends method to target (a whole URL), form as its body if not nil,
// with the extra headers hdr.
func (p *proxyClient) do(method, target string, form url.Values, hdr http.Header) resp {
	p.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Accept", htmlAccept)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", p.origin)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := p.c.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: string(data), header: res.Header}
}

// token returns the CSRF token of the gateway page at target.
func (p *proxyClient) token(target string) string {
	p.t.Helper()
	m := csrfRE.FindStringSubmatch(p.do("GET", target, nil, nil).body)
	if m == nil {
		p.t.Fatalf("no csrf token on %s", target)
	}
	return html.UnescapeString(m[1] + m[2])
}

// countingRelay passes TCP connections on to target and counts them.
type countingRelay struct {
	ln net.Listener
	mu sync.Mutex
	n  int
}

func newCountingRelay(t *testing.T, target string) *countingRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &countingRelay{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.n++
			r.mu.Unlock()
			wg.Go(func() { relayConn(c, target) })
		}
	})
	return r
}

// relayConn copies between c and a new connection to target until
// either side closes.
func relayConn(c net.Conn, target string) {
	defer c.Close()
	d, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer d.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(d, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, d); done <- struct{}{} }()
	<-done
}

func (r *countingRelay) addr() string { return r.ln.Addr().String() }

func (r *countingRelay) accepted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestNginxAuthRequest runs a real nginx with configs/nginx-auth-request.conf
// in front of a recording upstream, asking the gateway on every request.
func TestNginxAuthRequest(t *testing.T) {
	up := newRecordingUpstream(t)
	g := startGatewayWith(t, gwOpts{mode: "off", routes: []config.Route{
		{Name: "open", PathPrefix: "/public", Upstream: up.URL, Policy: config.PolicyBypass},
		{Name: "panel", PathPrefix: "/", Upstream: up.URL, Policy: config.PolicyPassword},
	}}, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	g.addUser(t, "alice", "correct horse", "ops", "web")
	relay := newCountingRelay(t, strings.TrimPrefix(g.URL, "http://"))
	base := startNginx(t, relay.addr(), strings.TrimPrefix(up.URL, "http://"))

	do := newProxyClient(t, base, nil).do

	// 1. Anonymous browser: nginx answers with the login redirect on its
	// own host, rd = the original URL; the panel is never asked.
	original := base + "/app/page?x=1&y=two"
	r := do("GET", original, nil, nil)
	mustStatus(t, r, http.StatusFound, "anonymous through nginx")
	wantLogin := base + "/.authgate/login?rd=" + url.QueryEscape(original)
	if location(r) != wantLogin {
		t.Fatalf("login redirect %q, want %q", location(r), wantLogin)
	}
	// An API client keeps the 401; a POST (method kept by auth_request)
	// too; the endpoint is internal to nginx.
	mustStatus(t, do("GET", base+"/api/x", nil, http.Header{"Accept": {"application/json"}}), http.StatusUnauthorized, "anonymous api")
	mustStatus(t, do("POST", base+"/app/form", url.Values{"a": {"b"}}, nil), http.StatusUnauthorized, "anonymous POST")
	mustStatus(t, do("GET", base+"/.authgate/auth", nil, nil), http.StatusNotFound, "auth endpoint from outside")
	// Forged forwarded headers and a forged identity change nothing.
	mustStatus(t, do("GET", base+"/app", nil, http.Header{
		"X-Forwarded-Uri": {"/public/x"}, "X-Original-Url": {base + "/public/x"}, "Remote-User": {"root"},
	}), http.StatusFound, "forged forwarded headers")
	if n := up.count(); n != 0 {
		t.Fatalf("upstream reached %d times before any login", n)
	}
	// A bypass route passes without a session, asserting nobody.
	r = do("GET", base+"/public/x", nil, http.Header{"Remote-User": {"root"}})
	mustStatus(t, r, http.StatusOK, "bypass route")
	var s seen
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("upstream body: %v: %s", err, r.body)
	}
	if got := s.Headers["Remote-User"]; len(got) != 0 {
		t.Fatalf("bypass route: spoofed Remote-User reached the panel: %v", got)
	}

	// 2. Log in through nginx (the gateway's pages on nginx's host).
	page := do("GET", wantLogin, nil, nil)
	mustStatus(t, page, http.StatusOK, "login page through nginx")
	m := csrfRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no csrf token on the login page: %.500s", page.body)
	}
	r = do("POST", base+"/.authgate/login", url.Values{
		"csrf_token": {html.UnescapeString(m[1] + m[2])}, "username": {"alice"}, "password": {"correct horse"}, "rd": {original},
	}, nil)
	mustStatus(t, r, http.StatusSeeOther, "login through nginx")
	if location(r) != original {
		t.Fatalf("after login sent to %q, want %q", location(r), original)
	}

	// 3. Signed in: nginx passes to the panel with the identity from the
	// auth response; the client's own Remote-User is replaced and the
	// gateway's cookie is not sent upstream.
	r = do("GET", original, nil, http.Header{"Remote-User": {"root"}, "Remote-Groups": {"wheel"}, "Cookie": {"panel=keep"}})
	mustStatus(t, r, http.StatusOK, "signed in through nginx")
	s = seen{}
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("upstream body: %v: %s", err, r.body)
	}
	if got := s.Headers["Remote-User"]; len(got) != 1 || got[0] != "alice" {
		t.Fatalf("Remote-User at the panel = %v, want [alice]", got)
	}
	if got := s.Headers["Remote-Groups"]; len(got) != 1 || got[0] != "ops,web" {
		t.Fatalf("Remote-Groups at the panel = %v, want [ops,web]", got)
	}
	if s.Path != "/app/page" || s.Query != "x=1&y=two" {
		t.Fatalf("panel saw %s?%s", s.Path, s.Query)
	}
	if ck := strings.Join(s.Headers["Cookie"], "; "); strings.Contains(ck, "authgate_session") || !strings.Contains(ck, "panel=keep") {
		t.Fatalf("cookies at the panel: %q", ck)
	}

	// nginx keeps its connections to authgate and to the panel (the
	// config's upstream keepalive): thirty requests, each asking authgate,
	// open at most a couple of new ones to each, not thirty.
	opened, openedPanel := relay.accepted(), up.accepted()
	for i := range 30 {
		mustStatus(t, do("GET", fmt.Sprintf("%s/app/page?n=%d", base, i), nil, nil), http.StatusOK, "signed in, again")
	}
	if n := relay.accepted() - opened; n > 2 {
		t.Fatalf("30 requests through nginx opened %d new connections to authgate: the subrequests are not kept alive", n)
	}
	if n := up.accepted() - openedPanel; n > 2 {
		t.Fatalf("30 requests through nginx opened %d new connections to the panel: they are not kept alive", n)
	}

	// 4. Logged out: back to the login page, the panel not reached.
	before := up.count()
	logout := do("GET", base+"/.authgate/logout", nil, nil)
	m = csrfRE.FindStringSubmatch(logout.body)
	if m == nil {
		t.Fatalf("no csrf token on the logout page: %.300s", logout.body)
	}
	mustStatus(t, do("POST", base+"/.authgate/logout", url.Values{"csrf_token": {html.UnescapeString(m[1] + m[2])}}, nil), http.StatusSeeOther, "logout")
	r = do("GET", original, nil, nil)
	mustStatus(t, r, http.StatusFound, "after logout")
	if !strings.HasPrefix(location(r), base+"/.authgate/login?") {
		t.Fatalf("after logout sent to %q", location(r))
	}
	if up.count() != before {
		t.Fatal("panel reached after logout")
	}
}
