package server_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
)

// plantSession stores a session for user straight in the gateway's store
// and returns its cookie value.
func plantSession(t *testing.T, g *gateway, user, stage string, twoFactor bool) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	now := g.clock.Now().UTC()
	// As a sign-in would make it: under the user's epoch and the mode
	// in force.
	u, err := g.srv.Store().GetUser(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	mode, err := g.srv.Store().GetSetting(context.Background(), settings.KeyMode)
	if err != nil {
		mode = g.cfg.TwoFactor.Mode
	}
	s := store.Session{IDHash: session.HashID(id), User: user, Stage: stage, TwoFactor: twoFactor,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), UserEpoch: u.AuthEpoch, Mode: mode}
	if twoFactor {
		s.TwoFactorAt = now
	}
	if err := g.srv.Store().PutSession(context.Background(), s, time.Hour); err != nil {
		t.Fatal(err)
	}
	return id
}

// startForwardAuthGateway runs a gateway (2FA mode on) trusting
// 127.0.0.1 as a proxy, with one route per policy:
//
//	/public on any host: bypass; /docs on any host: password (host routes
//	win: on panel.example and admin.example these are theirs);
//	panel.example: two_factor (Remote-User/Remote-Groups);
//	admin.example: two_factor, group admins only (X-Auth-User/X-Auth-Groups).
//
// No route catches other hosts' other paths.
func startForwardAuthGateway(t *testing.T) *gateway {
	t.Helper()
	up := newUpstream(t)
	g := startGatewayWith(t, gwOpts{mode: "on", routes: []config.Route{
		{Name: "open", PathPrefix: "/public", Upstream: up.URL, Policy: config.PolicyBypass},
		{Name: "docs", PathPrefix: "/docs", Upstream: up.URL, Policy: config.PolicyPassword},
		{Name: "panel", Host: "panel.example", PathPrefix: "/", Upstream: up.URL, Policy: config.PolicyTwoFactor},
		{Name: "admin", Host: "admin.example", PathPrefix: "/", Upstream: up.URL, Policy: config.PolicyTwoFactor,
			Allow:           config.Allow{Groups: []string{"admins"}},
			IdentityHeaders: config.IdentityHeaders{User: "X-Auth-User", Groups: "X-Auth-Groups"}},
	}}, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	g.addUser(t, "alice", "correct horse", "admins", "ops")
	g.addUser(t, "bob", "correct horse", "ops")
	g.addUser(t, "carol", "correct horse")
	if _, err := g.srv.Store().UpdateUser(context.Background(), "carol", func(u *store.User) error {
		u.MustChangePassword = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return g
}

// fwd are Traefik/Caddy-style forwarded headers.
func fwd(method, proto, host, uri string) http.Header {
	return http.Header{"X-Forwarded-Method": {method}, "X-Forwarded-Proto": {proto}, "X-Forwarded-Host": {host},
		"X-Forwarded-Uri": {uri}, "X-Forwarded-For": {"203.0.113.7"}}
}

// orig is nginx-style: X-Original-URL.
func orig(u string) http.Header {
	return http.Header{"X-Original-Url": {u}, "X-Forwarded-For": {"203.0.113.7"}}
}

const (
	trustedPeer   = "127.0.0.1:40000"
	untrustedPeer = "192.0.2.9:40000"
	htmlAccept    = "text/html,application/xhtml+xml"
)

func loginURL(host, page, rd string) string {
	u := "http://" + host + page
	if rd != "" {
		u += "?rd=" + url.QueryEscape(rd)
	}
	return u
}

func TestForwardAuth(t *testing.T) {
	g := startForwardAuthGateway(t)
	aliceFull := plantSession(t, g, "alice", store.StageFull, true)
	alicePending := plantSession(t, g, "alice", store.StagePending, false)
	bobFull := plantSession(t, g, "bob", store.StageFull, true)
	bobPassword := plantSession(t, g, "bob", store.StageFull, false)
	carol := plantSession(t, g, "carol", store.StageFull, true)

	cases := []struct {
		name    string
		peer    string
		method  string // of the auth request itself (default GET)
		hdr     http.Header
		accept  string
		cookie  string // raw Cookie header
		status  int
		headers map[string]string // "" means must be absent
		loc     string            // expected Location ("" = none)
		present []string          // headers that must be sent (maybe empty)
	}{
		// No session.
		{name: "anonymous browser, X-Forwarded-*", peer: trustedPeer, hdr: fwd("GET", "http", "panel.example", "/app?x=1&y=2"), accept: htmlAccept,
			status: http.StatusFound, loc: loginURL("panel.example", "/.authgate/login", "http://panel.example/app?x=1&y=2")},
		{name: "anonymous api, X-Forwarded-*", peer: trustedPeer, hdr: fwd("GET", "http", "panel.example", "/api/x"), accept: "application/json",
			status: http.StatusUnauthorized},
		{name: "anonymous browser POST", peer: trustedPeer, hdr: fwd("POST", "http", "panel.example", "/app"), accept: htmlAccept,
			status: http.StatusUnauthorized},
		{name: "anonymous browser, nginx: 401 carrying the login Location", peer: trustedPeer, hdr: orig("http://panel.example:8080/app?x=1"), accept: htmlAccept,
			status: http.StatusUnauthorized, loc: loginURL("panel.example:8080", "/.authgate/login", "http://panel.example:8080/app?x=1")},
		{name: "anonymous browser, nginx POST (method kept by auth_request)", peer: trustedPeer, method: "POST", hdr: orig("http://panel.example/app"), accept: htmlAccept,
			status: http.StatusUnauthorized},
		{name: "anonymous api, nginx", peer: trustedPeer, hdr: orig("http://panel.example/api"), accept: "application/json",
			status: http.StatusUnauthorized},
		{name: "bypass route needs nothing, asserts nobody", peer: trustedPeer, hdr: fwd("GET", "http", "other.example", "/public/x"),
			status: http.StatusOK, headers: map[string]string{"Remote-User": "", "Remote-Groups": ""}, present: []string{"Remote-User", "Remote-Groups"}},

		// Complete sessions.
		{name: "two_factor route, 2FA session", peer: trustedPeer, hdr: fwd("GET", "http", "panel.example", "/app"), cookie: "authgate_session=" + aliceFull,
			status: http.StatusOK, headers: map[string]string{"Remote-User": "alice", "Remote-Groups": "admins,ops"}},
		{name: "two_factor route, nginx style", peer: trustedPeer, hdr: orig("http://panel.example/app"), cookie: "other=1; authgate_session=" + aliceFull,
			status: http.StatusOK, headers: map[string]string{"Remote-User": "alice"}},
		{name: "route's own identity headers", peer: trustedPeer, hdr: fwd("GET", "http", "admin.example", "/"), cookie: "authgate_session=" + aliceFull,
			status: http.StatusOK, headers: map[string]string{"X-Auth-User": "alice", "X-Auth-Groups": "admins,ops", "Remote-User": ""}},
		{name: "allow list refuses", peer: trustedPeer, hdr: fwd("GET", "http", "admin.example", "/"), cookie: "authgate_session=" + bobFull,
			status: http.StatusForbidden, headers: map[string]string{"X-Auth-User": ""}},
		{name: "password route, password session", peer: trustedPeer, hdr: fwd("GET", "http", "other.example", "/docs/a"), cookie: "authgate_session=" + bobPassword,
			status: http.StatusOK, headers: map[string]string{"Remote-User": "bob", "Remote-Groups": "ops"}},
		{name: "two_factor route, password session: enrol", peer: trustedPeer, hdr: fwd("GET", "http", "panel.example", "/app"), accept: htmlAccept, cookie: "authgate_session=" + bobPassword,
			status: http.StatusFound, loc: loginURL("panel.example", "/.authgate/enroll", "http://panel.example/app")},
		{name: "reset password must be changed first", peer: trustedPeer, hdr: fwd("GET", "http", "panel.example", "/app"), accept: htmlAccept, cookie: "authgate_session=" + carol,
			status: http.StatusFound, loc: loginURL("panel.example", "/.authgate/account/password", "http://panel.example/app")},
		{name: "https: __Host- cookie", peer: trustedPeer, hdr: fwd("GET", "https", "panel.example", "/app"), cookie: "__Host-authgate_session=" + aliceFull,
			status: http.StatusOK, headers: map[string]string{"Remote-User": "alice"}},
		{name: "https: the plain-http cookie does not count", peer: trustedPeer, hdr: fwd("GET", "https", "panel.example", "/app"), cookie: "authgate_session=" + aliceFull,
			status: http.StatusUnauthorized},

		// Half-authenticated: never 200.
		{name: "half-authenticated browser: verify", peer: trustedPeer, hdr: fwd("GET", "http", "panel.example", "/app"), accept: htmlAccept, cookie: "authgate_session=" + alicePending,
			status: http.StatusFound, loc: loginURL("panel.example", "/.authgate/verify", "")},
		{name: "half-authenticated api", peer: trustedPeer, hdr: fwd("GET", "http", "panel.example", "/app"), cookie: "authgate_session=" + alicePending,
			status: http.StatusUnauthorized, headers: map[string]string{"Remote-User": ""}},
		{name: "half-authenticated on a password route", peer: trustedPeer, hdr: orig("http://other.example/docs"), cookie: "authgate_session=" + alicePending,
			status: http.StatusUnauthorized, headers: map[string]string{"Remote-User": ""}},

		// Trust: an untrusted peer's forwarded headers mean nothing.
		{name: "untrusted peer, X-Forwarded-*, valid session", peer: untrustedPeer, hdr: fwd("GET", "http", "panel.example", "/app"), cookie: "authgate_session=" + aliceFull,
			status: http.StatusUnauthorized, headers: map[string]string{"Remote-User": ""}},
		{name: "untrusted peer, X-Original-URL to a bypass route", peer: untrustedPeer, hdr: orig("http://other.example/public/x"),
			status: http.StatusUnauthorized},
		{name: "untrusted peer, browser", peer: untrustedPeer, hdr: fwd("GET", "http", "panel.example", "/app"), accept: htmlAccept,
			status: http.StatusUnauthorized},
		{name: "trusted peer naming no original request", peer: trustedPeer, hdr: http.Header{}, cookie: "authgate_session=" + aliceFull,
			status: http.StatusUnauthorized, headers: map[string]string{"Remote-User": ""}},

		// Routing on the original host and canonical path.
		{name: "unknown host", peer: trustedPeer, hdr: fwd("GET", "http", "other.example", "/x"), cookie: "authgate_session=" + aliceFull,
			status: http.StatusNotFound},
		{name: "dot segments leave the bypass prefix", peer: trustedPeer, hdr: fwd("GET", "http", "other.example", "/public/%2e%2e/docs"),
			status: http.StatusUnauthorized},
		{name: "dot segments, nginx", peer: trustedPeer, hdr: orig("http://other.example/public/../docs"),
			status: http.StatusUnauthorized},
		{name: "encoded slash refused", peer: trustedPeer, hdr: fwd("GET", "http", "panel.example", "/public%2f..%2fapp"),
			status: http.StatusBadRequest},
		{name: "gateway path is no route", peer: trustedPeer, hdr: fwd("GET", "http", "panel.example", "/.authgate/login"), cookie: "authgate_session=" + aliceFull,
			status: http.StatusNotFound},

		// Unusable forwarded information fails closed.
		{name: "both styles at once", peer: trustedPeer, hdr: func() http.Header {
			h := orig("http://panel.example/app")
			h.Set("X-Forwarded-Uri", "/public/x")
			h.Set("X-Forwarded-Host", "panel.example")
			return h
		}(), status: http.StatusBadRequest},
		{name: "X-Forwarded-Uri without host", peer: trustedPeer, hdr: http.Header{"X-Forwarded-Uri": {"/public/x"}},
			status: http.StatusBadRequest},
		{name: "X-Forwarded-Uri not origin-form", peer: trustedPeer, hdr: fwd("GET", "http", "panel.example", "http://panel.example/public"),
			status: http.StatusBadRequest},
		{name: "X-Original-URL relative", peer: trustedPeer, hdr: orig("/public/x"), status: http.StatusBadRequest},
		{name: "X-Original-URL with userinfo", peer: trustedPeer, hdr: orig("http://a@panel.example/public/x"), status: http.StatusBadRequest},
		{name: "X-Original-URL bad host", peer: trustedPeer, hdr: orig("http://panel example/public/x"), status: http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, "http://authgate.internal:9091/.authgate/auth", nil)
			req.RemoteAddr = tc.peer
			for k, v := range tc.hdr {
				req.Header[k] = v
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			rec := httptest.NewRecorder()
			g.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body %.300s", rec.Code, tc.status, rec.Body.String())
			}
			if got := rec.Header().Get("Location"); got != tc.loc {
				t.Fatalf("Location %q, want %q", got, tc.loc)
			}
			for _, k := range tc.present {
				if len(rec.Header().Values(k)) != 1 {
					t.Fatalf("%s sent %d times, want once (empty overwrites a client's value)", k, len(rec.Header().Values(k)))
				}
			}
			for k, want := range tc.headers {
				if got := rec.Header().Get(k); got != want {
					t.Fatalf("%s = %q, want %q", k, got, want)
				}
			}
			if rec.Code == http.StatusOK && rec.Body.Len() != 0 {
				t.Fatalf("200 with a body: %q", rec.Body.String())
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Fatalf("Cache-Control %q", cc)
			}
		})
	}
}

// TestForwardAuthAgreesWithGate: the endpoint and the built-in gate share
// one policy decision, so the same request gets the same answer (status;
// the gate's redirect is relative, the endpoint's absolute on the original
// host).
func TestForwardAuthAgreesWithGate(t *testing.T) {
	g := startForwardAuthGateway(t)
	sessions := map[string]string{
		"none":          "",
		"alice full":    plantSession(t, g, "alice", store.StageFull, true),
		"alice pending": plantSession(t, g, "alice", store.StagePending, false),
		"bob full":      plantSession(t, g, "bob", store.StageFull, true),
		"bob password":  plantSession(t, g, "bob", store.StageFull, false),
		"carol":         plantSession(t, g, "carol", store.StageFull, true),
	}
	targets := [][2]string{{"panel.example", "/app?q=1"}, {"admin.example", "/x"}, {"other.example", "/docs/a"},
		{"other.example", "/public/p"}, {"panel.example", "/public/p"}, {"other.example", "/x"}, {"other.example", "/docs"}}
	for who, id := range sessions {
		for _, tg := range targets {
			for _, accept := range []string{htmlAccept, "application/json"} {
				name := who + " " + tg[0] + tg[1] + " " + accept
				gateReq := httptest.NewRequest("GET", "http://"+tg[0]+tg[1], nil)
				gateReq.RemoteAddr = untrustedPeer
				faReq := httptest.NewRequest("GET", "http://authgate.internal/.authgate/auth", nil)
				faReq.RemoteAddr = trustedPeer
				for k, v := range fwd("GET", "http", tg[0], tg[1]) {
					faReq.Header[k] = v
				}
				for _, r := range []*http.Request{gateReq, faReq} {
					r.Header.Set("Accept", accept)
					if id != "" {
						r.Header.Set("Cookie", "authgate_session="+id)
					}
				}
				gw, fw := httptest.NewRecorder(), httptest.NewRecorder()
				g.srv.Handler().ServeHTTP(gw, gateReq)
				g.srv.Handler().ServeHTTP(fw, faReq)
				if gw.Code != fw.Code {
					t.Errorf("%s: gate %d, forward auth %d", name, gw.Code, fw.Code)
					continue
				}
				if gw.Code == http.StatusFound {
					gl, fl := gw.Header().Get("Location"), fw.Header().Get("Location")
					gatePage, _, _ := strings.Cut(gl, "?")
					if !strings.HasPrefix(fl, "http://"+tg[0]+gatePage) {
						t.Errorf("%s: gate to %q, forward auth to %q", name, gl, fl)
					}
				}
			}
		}
	}
}
