package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/middleware"
)

// Regression: with preserve_host off (the default) the upstream got its
// own Host but the browser's Origin, the gateway's. Cockpit compares the
// two and refused its WebSocket ("received request from bad Origin"), so
// every page showed "Connection failed" after a good sign-in. A
// same-origin Origin on upgrades and state-changing requests is now the
// upstream's origin; anything else, a cross-site Origin above all, passes
// unchanged so the panel can still refuse it.
func TestOriginRewrite(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(echoHandler))
	upURL := mustURL(t, up.URL)
	upOrigin := "http://" + upURL.Host
	g := newGateway(t, Options{Routes: []Route{
		{Name: "plain", Upstream: upURL},
		{Name: "keep", PathPrefix: "/keep", Upstream: upURL, PreserveHost: true},
	}})
	gwOrigin := g.srv.URL // no middleware client: the request's own Host
	ws := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}
	with := func(h http.Header, origins ...string) http.Header {
		out := h.Clone()
		if out == nil {
			out = http.Header{}
		}
		out["Origin"] = origins
		return out
	}
	tests := []struct {
		name   string
		method string
		target string
		client *middleware.Client
		hdr    http.Header
		want   string // Origin lines the upstream got, joined with "|"
	}{
		{"websocket, same origin", "GET", "/ws", nil, with(ws, gwOrigin), upOrigin},
		{"POST, same origin", "POST", "/form", nil, with(nil, gwOrigin), upOrigin},
		{"PUT, same origin", "PUT", "/x", nil, with(nil, gwOrigin), upOrigin},
		{"DELETE, same origin", "DELETE", "/x", nil, with(nil, gwOrigin), upOrigin},
		{"PATCH, same origin", "PATCH", "/x", nil, with(nil, gwOrigin), upOrigin},
		{"same origin in upper case", "POST", "/x", nil, with(nil, strings.ToUpper(gwOrigin)), upOrigin},
		{"GET keeps its Origin", "GET", "/x", nil, with(nil, gwOrigin), gwOrigin},
		{"OPTIONS keeps its Origin", "OPTIONS", "/x", nil, with(nil, gwOrigin), gwOrigin},
		{"no Origin", "POST", "/x", nil, http.Header{}, ""},
		{"cross-site websocket", "GET", "/ws", nil, with(ws, "https://evil.example"), "https://evil.example"},
		{"cross-site POST", "POST", "/x", nil, with(nil, "http://evil.example"), "http://evil.example"},
		{"null Origin", "POST", "/x", nil, with(nil, "null"), "null"},
		{"the upstream's own origin", "POST", "/x", nil, with(nil, upOrigin), upOrigin},
		{"other scheme", "POST", "/x", nil, with(nil, "https://"+strings.TrimPrefix(gwOrigin, "http://")), "https://" + strings.TrimPrefix(gwOrigin, "http://")},
		{"look-alike host", "POST", "/x", nil, with(nil, gwOrigin+".evil.example"), gwOrigin + ".evil.example"},
		{"with a path", "POST", "/x", nil, with(nil, gwOrigin+"/"), gwOrigin + "/"},
		{"with credentials", "POST", "/x", nil, with(nil, "http://u@"+strings.TrimPrefix(gwOrigin, "http://")), "http://u@" + strings.TrimPrefix(gwOrigin, "http://")},
		{"two Origin lines", "POST", "/x", nil, with(nil, gwOrigin, gwOrigin), gwOrigin + "|" + gwOrigin},
		{"preserve_host keeps it", "POST", "/keep/x", nil, with(nil, gwOrigin), gwOrigin},
		{"preserve_host websocket keeps it", "GET", "/keep/ws", nil, with(ws, gwOrigin), gwOrigin},
		{
			"public origin from the trusted client", "POST", "/x",
			&middleware.Client{Scheme: "https", Host: "panel.example"},
			with(nil, "https://panel.example:443"), upOrigin,
		},
		{
			"gateway's address is not the public origin behind a proxy", "POST", "/x",
			&middleware.Client{Scheme: "https", Host: "panel.example"},
			with(nil, gwOrigin), gwOrigin,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.set(tt.client, nil)
			s := decodeSeen(t, g.do(t, tt.method, tt.target, tt.hdr))
			if got := strings.Join(s.Header["Origin"], "|"); got != tt.want {
				t.Errorf("upstream got Origin %q; want %q", got, tt.want)
			}
		})
	}
}

func decodeSeen(t *testing.T, res *http.Response) seen {
	t.Helper()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return s
}

// originCheckingUpstream accepts a WebSocket-style upgrade only when
// Origin is "http://" + Host, as cockpit-ws does, and answers 403 with
// "Connection: close" otherwise.
func originCheckingUpstream(t *testing.T) string {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "http://"+r.Host {
			w.Header().Set("Connection", "close")
			http.Error(w, "Received invalid WebSocket request", http.StatusForbidden)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
	}))
	return up.URL
}

// wsStatus sends a WebSocket-style upgrade with origin to addr and returns
// the status.
func wsStatus(t *testing.T, addr, origin string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /cockpit/socket HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nOrigin: " + origin + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode
}

// A same-origin WebSocket passes an Origin-checking upstream; a
// cross-site one is refused by it, and the gateway says so in one warning
// with the route, the status and a hint (before, the refusal showed only
// as a 403 in the access log).
func TestUpgradeRefusedByUpstreamIsLogged(t *testing.T) {
	var logs testkit.SyncBuffer
	g := newGateway(t, Options{
		Routes: []Route{{Name: "cockpit", Upstream: mustURL(t, originCheckingUpstream(t))}},
		Logger: zerolog.New(&logs),
	})
	addr := strings.TrimPrefix(g.srv.URL, "http://")
	if got := wsStatus(t, addr, g.srv.URL); got != http.StatusSwitchingProtocols {
		t.Fatalf("same-origin WebSocket: status %d; want 101", got)
	}
	if strings.Contains(logs.String(), "refused the upgrade") {
		t.Fatalf("an accepted upgrade was logged as refused:\n%s", logs.String())
	}
	if got := wsStatus(t, addr, "https://evil.example"); got != http.StatusForbidden {
		t.Fatalf("cross-site WebSocket: status %d; want the upstream's 403", got)
	}
	out := logs.String()
	if n := strings.Count(out, "upstream refused the upgrade"); n != 1 {
		t.Fatalf("%d refusal lines; want 1:\n%s", n, out)
	}
	for _, want := range []string{`"level":"warn"`, `"route":"cockpit"`, `"status":403`, `"upgrade":"websocket"`, `"origin":"https://evil.example"`, `"hint":"the panel's own log says why`} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal line lacks %s:\n%s", want, out)
		}
	}
}
