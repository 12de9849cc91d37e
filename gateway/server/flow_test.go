package server_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/demo"
	"github.com/authgate/authgate/gateway/internal/testkit"
)

// panelGateway puts the demo panel behind a gateway with the given mode.
func panelGateway(t *testing.T, mode string, logw io.Writer) *gateway {
	t.Helper()
	panel := httptest.NewServer(demo.NewPanel(demo.PanelOptions{EventInterval: 300 * time.Millisecond, EventCount: 3}))
	t.Cleanup(panel.Close)
	return startGateway(t, gwOpts{mode: mode, logw: logw, routes: []config.Route{{
		Name: "panel", PathPrefix: "/", Upstream: panel.URL, Policy: config.PolicyTwoFactor,
	}}})
}

func login(t *testing.T, b *browser, user, pw string) {
	t.Helper()
	r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {user}, "password": {pw}})
	mustStatus(t, r, http.StatusSeeOther, "login")
}

func TestModeOffAsksNoCode(t *testing.T) {
	g := panelGateway(t, "off", nil)
	g.addUser(t, "alice", "correct horse")
	b := g.browser(t)
	r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "rd": {"/settings"}})
	mustStatus(t, r, http.StatusSeeOther, "login")
	if location(r) != "/settings" {
		t.Fatalf("mode off: login went to %q, want straight to rd", location(r))
	}
	r = b.get("/settings")
	mustStatus(t, r, http.StatusOK, "two_factor route with mode off")
	if !strings.Contains(r.body, "alice") {
		t.Fatalf("panel does not see alice: %.300s", r.body)
	}
}

func TestPanelThroughGateway(t *testing.T) {
	g := panelGateway(t, "off", nil)
	g.addUser(t, "alice", "correct horse")
	b := g.browser(t)

	// Unauthenticated WebSocket upgrade: refused before the panel.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(g.URL, "http") + "/ws"
	_, res, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: g.http.Client()})
	if err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous websocket: err %v, response %v", err, res)
	}

	login(t, b, "alice", "correct horse")

	// The panel's absolute redirect to its own origin comes back pointing
	// at the gateway.
	r := b.do("POST", "/restart", url.Values{}, nil)
	mustStatus(t, r, http.StatusFound, "restart")
	if want := g.URL + "/?restarted=1"; location(r) != want {
		t.Fatalf("Location %q, want %q", location(r), want)
	}

	// WebSocket with the session cookie: echo works through the gateway.
	gu, _ := url.Parse(g.URL)
	hdr := http.Header{"Origin": {g.URL}}
	for _, c := range b.c.Jar.Cookies(gu) {
		hdr.Add("Cookie", c.Name+"="+c.Value)
	}
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: g.http.Client(), HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("authenticated websocket: %v", err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte("ping through authgate")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := conn.Read(ctx)
	if err != nil || !strings.Contains(string(msg), "ping through authgate") {
		t.Fatalf("echo = %q, %v", msg, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")

	// Streaming: the first line arrives before the upstream has finished.
	req, _ := http.NewRequest("GET", g.URL+"/events", nil)
	for _, c := range b.c.Jar.Cookies(gu) {
		req.AddCookie(c)
	}
	start := time.Now()
	res, err = g.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line == "" {
		t.Fatalf("first streamed line: %q, %v", line, err)
	}
	firstAt := time.Since(start)
	rest, _ := io.ReadAll(res.Body)
	total := time.Since(start)
	// Three lines 300 ms apart: the first must not wait for the last.
	if len(rest) == 0 || firstAt >= total-200*time.Millisecond {
		t.Fatalf("not streamed: first line after %v, whole body after %v", firstAt, total)
	}
}

// TestLogsHoldNoSecrets walks a whole login with enrolment and checks that
// no password, code, TOTP secret, session id or CSRF token reaches the log,
// while the auth decisions do.
func TestLogsHoldNoSecrets(t *testing.T) {
	var logs testkit.SyncBuffer
	g := startGateway(t, gwOpts{mode: "required", logw: &logs})
	g.addUser(t, "alice", "correct horse")
	b := g.browser(t)
	// A failed attempt with a distinctive wrong password.
	r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"Wr0ngPassw0rd!"}})
	mustStatus(t, r, http.StatusUnauthorized, "wrong password")
	secret := enroll(t, g, b)
	code := codeFor(t, secret, g.clock.Now())

	gu, _ := url.Parse(g.URL)
	var secrets []string
	for _, c := range b.c.Jar.Cookies(gu) {
		secrets = append(secrets, c.Value)
	}
	page := b.get("/.authgate/logout")
	if m := csrfRE.FindStringSubmatch(page.body); m != nil {
		secrets = append(secrets, m[1]+m[2])
	}
	secrets = append(secrets, "correct horse", "Wr0ngPassw0rd!", secret, strings.ToLower(secret), code)
	out := logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("log contains a secret value %q", s)
		}
	}
	for _, want := range []string{`"event":"auth"`, `"reason":"wrong_password"`, `"user":"alice"`, `"message":"request"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s", want)
		}
	}
}
