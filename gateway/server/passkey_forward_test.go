//go:build linux

// Linux only for the nginx variant (startNginx, nginx_test.go).

package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/passkey/passkeytest"
)

// passkeyForwardRoutes: /public bypass, /docs password, everything else
// two_factor with the default identity headers (Remote-User,
// Remote-Groups), on any host.
func passkeyForwardRoutes(up string) []config.Route {
	return []config.Route{
		{Name: "open", PathPrefix: "/public", Upstream: up, Policy: config.PolicyBypass},
		{Name: "docs", PathPrefix: "/docs", Upstream: up, Policy: config.PolicyPassword},
		{Name: "app", PathPrefix: "/", Upstream: up, Policy: config.PolicyTwoFactor},
	}
}

// askForwardAuth asks the forward-auth endpoint over HTTP, from
// 127.0.0.1 (a trusted proxy), about a GET of target (an absolute URL)
// carrying session id ("" none). style "fwd" sends Traefik/Caddy's
// X-Forwarded-* headers, "nginx" X-Original-URL.
func askForwardAuth(t *testing.T, g *gateway, style, target, accept, id string) resp {
	t.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("GET", g.http.URL+"/.authgate/auth", nil)
	if err != nil {
		t.Fatal(err)
	}
	switch style {
	case "fwd":
		req.Header = fwd("GET", tu.Scheme, tu.Host, tu.RequestURI())
	case "nginx":
		req.Header = orig(target)
	default:
		t.Fatalf("unknown forward-auth style %q", style)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if id != "" {
		req.Header.Set("Cookie", "other=1; authgate_session="+id)
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("forward auth: %v", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: string(data), header: res.Header}
}

// mustAllow checks a forward-auth answer lets the request through with
// user's identity, the way TestForwardAuth's allowed cases do.
func mustAllow(t *testing.T, r resp, what, user, groups string) {
	t.Helper()
	mustStatus(t, r, http.StatusOK, what)
	if got := r.header.Get("Remote-User"); got != user {
		t.Fatalf("%s: Remote-User %q, want %q", what, got, user)
	}
	if got := r.header.Get("Remote-Groups"); got != groups {
		t.Fatalf("%s: Remote-Groups %q, want %q", what, got, groups)
	}
	if r.body != "" {
		t.Fatalf("%s: 200 with a body: %q", what, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("%s: Cache-Control %q", what, cc)
	}
}

// mustRefuse checks a forward-auth answer does not let the request
// through: status, Location (exact), and no identity.
func mustRefuse(t *testing.T, r resp, what string, status int, loc string) {
	t.Helper()
	mustStatus(t, r, status, what)
	if got := location(r); got != loc {
		t.Fatalf("%s: Location %q, want %q", what, got, loc)
	}
	if got := r.header.Get("Remote-User"); got != "" {
		t.Fatalf("%s: Remote-User %q on a refusal", what, got)
	}
}

// TestPasskeyForwardAuth: passkeys behind forward auth. The gateway
// serves its pages on its own origin (http://localhost:PORT, public_url),
// where the ceremonies run; a proxy in front of the app on that host asks
// /.authgate/auth. A user with an authenticator app registers a key; in a
// new browser the endpoint sends them to the login page, password + key
// complete the sign-in (back to the original URL), and then the endpoint
// allows that session on the two_factor route with its identity, until
// sign-out.
func TestPasskeyForwardAuth(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		g := startGatewayWith(t, gwOpts{driver: driver, mode: "on", localhost: true, routes: passkeyForwardRoutes(newUpstream(t).URL)},
			func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1", "::1"} })
		g.addUser(t, "alice", attackPW, "ops", "web")
		secret := giveTOTP(t, g, "alice")
		key := passkeytest.New(g.URL)
		mustStatus(t, registerKey(t, signInCode(t, g, "10.7.0.1", "alice", secret), key, "Laptop"), http.StatusSeeOther, "add key")

		host := strings.TrimPrefix(g.URL, "http://")
		original := g.URL + "/app/page?x=1&y=two"
		wantLogin := loginURL(host, "/.authgate/login", original)

		// A new browser, no session: sent to the login page (X-Forwarded-*),
		// a 401 carrying it (nginx style), a plain 401 for an API client.
		b := g.browserFrom(t, "10.7.0.2")
		for _, style := range []string{"fwd", "nginx"} {
			mustRefuse(t, askForwardAuth(t, g, style, original, "application/json", ""), style+": anonymous api", http.StatusUnauthorized, "")
		}
		mustRefuse(t, askForwardAuth(t, g, "fwd", original, htmlAccept, ""), "anonymous browser", http.StatusFound, wantLogin)
		mustRefuse(t, askForwardAuth(t, g, "nginx", original, htmlAccept, ""), "anonymous browser, nginx", http.StatusUnauthorized, wantLogin)

		// The browser follows the redirect: the gateway's login page on its
		// own origin, the password, then the verify page offering the key.
		loginPage := strings.TrimPrefix(wantLogin, g.URL)
		mustStatus(t, b.get(loginPage), http.StatusOK, "login page")
		r := b.post(loginPage, "/.authgate/login", url.Values{"username": {"alice"}, "password": {attackPW}, "rd": {original}})
		mustStatus(t, r, http.StatusSeeOther, "password")
		if location(r) != "/.authgate/verify" {
			t.Fatalf("password led to %q, want the verify page", location(r))
		}
		pending := sessionCookie(t, g, b)
		// Half signed in: never allowed, even on the password route.
		mustRefuse(t, askForwardAuth(t, g, "fwd", original, htmlAccept, pending), "half signed in, browser", http.StatusFound, loginURL(host, "/.authgate/verify", ""))
		mustRefuse(t, askForwardAuth(t, g, "fwd", original, "application/json", pending), "half signed in, api", http.StatusUnauthorized, "")
		mustRefuse(t, askForwardAuth(t, g, "nginx", g.URL+"/docs/a", "application/json", pending), "half signed in, password route", http.StatusUnauthorized, "")

		page := b.get("/.authgate/verify")
		if !strings.Contains(page.body, "Use your security key or passkey") {
			t.Fatalf("verify page offers no key: %.600s", page.body)
		}
		r = submitKey(b, "/.authgate/verify", keyAnswer(t, b, key, "/.authgate/verify"))
		mustStatus(t, r, http.StatusSeeOther, "key as second factor")
		if location(r) != original {
			t.Fatalf("the key led to %q, want back to %q", location(r), original)
		}
		if !auditHas(t, g, "login", "alice", "passkey") {
			t.Error("no login audit event naming the passkey")
		}
		id := sessionCookie(t, g, b)

		// Signed in with password + key: allowed on the two_factor route,
		// both styles, with the identity of the session.
		mustAllow(t, askForwardAuth(t, g, "fwd", original, htmlAccept, id), "two_factor route", "alice", "ops,web")
		mustAllow(t, askForwardAuth(t, g, "nginx", original, htmlAccept, id), "two_factor route, nginx style", "alice", "ops,web")
		mustAllow(t, askForwardAuth(t, g, "fwd", g.URL+"/docs/a", "application/json", id), "password route", "alice", "ops,web")
		if id != pending {
			// The half-finished session's id is not the signed-in one's.
			mustRefuse(t, askForwardAuth(t, g, "fwd", original, "application/json", pending), "the pre-key session id", http.StatusUnauthorized, "")
		}
		// An untrusted peer's forwarded headers still mean nothing.
		req := httptest.NewRequest("GET", "http://authgate.internal/.authgate/auth", nil)
		req.RemoteAddr = untrustedPeer
		req.Header = fwd("GET", "http", host, "/app/page")
		req.Header.Set("Cookie", "authgate_session="+id)
		rec := httptest.NewRecorder()
		g.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("Remote-User") != "" {
			t.Fatalf("untrusted peer with the passkey session: %d, Remote-User %q", rec.Code, rec.Header().Get("Remote-User"))
		}

		// Signed out: refused again.
		mustStatus(t, b.post("/.authgate/logout", "/.authgate/logout", url.Values{}), http.StatusSeeOther, "logout")
		mustRefuse(t, askForwardAuth(t, g, "fwd", original, htmlAccept, id), "after sign-out", http.StatusFound, wantLogin)
	})
}

// TestPasskeyForwardAuthNginx: the same through a real nginx running
// configs/nginx-auth-request.conf. public_url is nginx's address
// (http://localhost:NGINXPORT), so the gateway's pages and the passkey
// ceremonies run through nginx on the app's own origin, and the app sees
// the identity nginx took from the auth answer.
func TestPasskeyForwardAuthNginx(t *testing.T) {
	eachStore(t, func(t *testing.T, driver string) {
		up := newRecordingUpstream(t)
		// nginx needs the gateway's address before the gateway (whose
		// public_url is nginx's) exists: a stand-in hands over to it.
		var handler atomic.Pointer[http.Handler]
		standIn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := handler.Load()
			if h == nil {
				http.Error(w, "gateway not started", http.StatusServiceUnavailable)
				return
			}
			(*h).ServeHTTP(w, r)
		}))
		t.Cleanup(standIn.Close)
		base := startNginx(t, strings.TrimPrefix(standIn.URL, "http://"), strings.TrimPrefix(up.URL, "http://"))
		public := strings.Replace(base, "127.0.0.1", "localhost", 1)
		g := startGatewayWith(t, gwOpts{driver: driver, mode: "on", localhost: true, routes: passkeyForwardRoutes(up.URL)},
			func(c *config.Config) {
				c.PublicURL = public
				c.TrustedProxies = []string{"127.0.0.1", "::1"}
			})
		if g.URL != public {
			t.Fatalf("gateway URL %q, want nginx's %q", g.URL, public)
		}
		h := g.srv.Handler()
		handler.Store(&h)

		// Set up through nginx: password + code, then a key registered on
		// the account page (a ceremony on nginx's origin).
		g.addUser(t, "alice", attackPW, "ops", "web")
		secret := giveTOTP(t, g, "alice")
		key := passkeytest.New(public)
		mustStatus(t, registerKey(t, signInCode(t, g, "10.8.0.1", "alice", secret), key, "Laptop"), http.StatusSeeOther, "add key through nginx")
		if n := len(getUser(t, g, "alice").Passkeys); n != 1 {
			t.Fatalf("%d keys stored", n)
		}
		if n := up.count(); n != 0 {
			t.Fatalf("the app was reached %d times by the gateway's own pages", n)
		}

		// A new browser: the app is behind the login page.
		b := g.browserFrom(t, "10.8.0.2")
		original := public + "/app/page?x=1&y=two"
		wantLogin := public + "/.authgate/login?rd=" + url.QueryEscape(original)
		r := b.get("/app/page?x=1&y=two")
		mustStatus(t, r, http.StatusFound, "anonymous through nginx")
		if location(r) != wantLogin {
			t.Fatalf("login redirect %q, want %q", location(r), wantLogin)
		}
		loginPage := strings.TrimPrefix(wantLogin, public)
		r = b.post(loginPage, "/.authgate/login", url.Values{"username": {"alice"}, "password": {attackPW}, "rd": {original}})
		mustStatus(t, r, http.StatusSeeOther, "password through nginx")
		if location(r) != "/.authgate/verify" {
			t.Fatalf("password led to %q, want the verify page", location(r))
		}
		// Half signed in: nginx turns the 401 into the verify page.
		r = b.get("/app/page?x=1&y=two")
		mustStatus(t, r, http.StatusFound, "half signed in through nginx")
		if want := public + "/.authgate/verify"; location(r) != want {
			t.Fatalf("half signed in sent to %q, want %q", location(r), want)
		}
		if n := up.count(); n != 0 {
			t.Fatalf("the app was reached %d times before the key", n)
		}
		r = submitKey(b, "/.authgate/verify", keyAnswer(t, b, key, "/.authgate/verify"))
		mustStatus(t, r, http.StatusSeeOther, "key through nginx")
		if location(r) != original {
			t.Fatalf("the key led to %q, want back to %q", location(r), original)
		}

		// Signed in: the app gets the request with the identity from the
		// auth answer (not the client's), without the gateway's cookie.
		r = b.do("GET", "/app/page?x=1&y=two", nil, http.Header{"Remote-User": {"root"}, "Remote-Groups": {"wheel"}})
		mustStatus(t, r, http.StatusOK, "signed in through nginx")
		var s seen
		if err := json.Unmarshal([]byte(r.body), &s); err != nil {
			t.Fatalf("upstream body: %v: %s", err, r.body)
		}
		if got := s.Headers["Remote-User"]; len(got) != 1 || got[0] != "alice" {
			t.Fatalf("Remote-User at the app = %v, want [alice]", got)
		}
		if got := s.Headers["Remote-Groups"]; len(got) != 1 || got[0] != "ops,web" {
			t.Fatalf("Remote-Groups at the app = %v, want [ops,web]", got)
		}
		if s.Path != "/app/page" || s.Query != "x=1&y=two" {
			t.Fatalf("app saw %s?%s", s.Path, s.Query)
		}
		if ck := strings.Join(s.Headers["Cookie"], "; "); strings.Contains(ck, "authgate_session") {
			t.Fatalf("cookies at the app: %q", ck)
		}
	})
}
