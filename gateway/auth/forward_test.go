package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/middleware"
)

// FuzzOriginalRequest: whatever a proxy (or a client behind it) puts in
// the forwarded headers, originalRequest never panics, reads nothing from
// an untrusted peer, and what it accepts has a valid host and either a
// canonical path or a path CanonicalPath refuses.
func FuzzOriginalRequest(f *testing.F) {
	f.Add("http://panel.example/app?x=1", "", "", "GET", true)
	f.Add("", "/app/../x?y", "panel.example:8443", "POST", true)
	f.Add("http://a@b/x", "/x", "h", "G ET", true)
	f.Add("https://[::1]:443/%2e%2e/", "", "", "", false)
	f.Add("//evil/x", "//evil", "evil", "GET", true)
	f.Fuzz(func(t *testing.T, origURL, fwdURI, fwdHost, method string, trusted bool) {
		r := httptest.NewRequest("GET", "http://authgate/.authgate/auth", nil)
		set := func(k, v string) {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				r.Header.Set(k, v)
			}
		}
		set("X-Original-URL", origURL)
		set("X-Forwarded-Uri", fwdURI)
		set("X-Forwarded-Host", fwdHost)
		set("X-Forwarded-Method", method)
		c := middleware.Client{ViaTrustedProxy: trusted, Scheme: "http", Host: strings.ToLower(fwdHost), Peer: netip.MustParseAddr("127.0.0.1")}
		o, err := originalRequest(r, c)
		if !trusted {
			if !errors.Is(err, ErrNotForwarded) {
				t.Fatalf("untrusted peer: err %v", err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrNotForwarded) && !errors.Is(err, ErrBadForwarded) {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		if o.Scheme != "http" && o.Scheme != "https" {
			t.Fatalf("scheme %q", o.Scheme)
		}
		if o.nginx {
			if _, err := middleware.NormalizeHost(o.Host, o.Scheme); err != nil {
				t.Fatalf("accepted host %q: %v", o.Host, err)
			}
		}
		if !validMethod(o.Method) {
			t.Fatalf("method %q", o.Method)
		}
		if p, err := proxy.CanonicalPath(o.URL); err == nil && !strings.HasPrefix(p, "/") {
			t.Fatalf("canonical path %q", p)
		}
	})
}

// forwardAuthRequest is a proxy's question about GET
// https://panel.example<uri>, Traefik/Caddy style, from peer, carrying
// the browser's session cookie and Accept header.
func forwardAuthRequest(peer, uri, accept string, cookie bool) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://authgate:8080"+ForwardAuthPath, nil)
	r.RemoteAddr = peer + ":40000"
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", "panel.example")
	r.Header.Set("X-Forwarded-Uri", uri)
	r.Header.Set("X-Forwarded-Method", http.MethodGet)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	if cookie {
		r.AddCookie(&http.Cookie{Name: "__Host-sid", Value: "s1"})
	}
	return r
}

// trustedProxies: the proxy asking is 10.0.0.2; 203.0.113.9 is a client
// reaching the gateway directly.
var trustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

func serveForwardAuth(g *Gate, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	middleware.RealClient(trustedProxies)(http.HandlerFunc(g.ForwardAuth)).ServeHTTP(rec, r)
	return rec
}

// TestForwardAuthDecisions: forward auth gives the gate's answer for
// every session state × route policy × mode, written for a proxy: 200
// with the identity headers, a 302 to the page on the original host for
// a navigation, else 401.
func TestForwardAuthDecisions(t *testing.T) {
	for _, mode := range []string{settings.ModeOff, settings.ModeOn, settings.ModeRequired} {
		for _, policy := range []string{"bypass", "password", "two_factor"} {
			route := map[string]string{"bypass": "open", "password": "pw", "two_factor": "tf"}[policy]
			for _, st := range sessionStates() {
				for _, navigation := range []bool{true, false} {
					t.Run(fmt.Sprintf("%s/%s/%s/navigation=%v", mode, policy, st.name, navigation), func(t *testing.T) {
						w := newWorld(mode)
						w.setState(st)
						accept := "application/json"
						if navigation {
							accept = "text/html"
						}
						uri := "/" + route + "/x?q=1"
						rec := serveForwardAuth(w.gate, forwardAuthRequest("10.0.0.2", uri, accept, st.sess != nil))
						answer, keepRD, _ := expected(st, policy, mode)
						if rec.Header().Get("Cache-Control") != "no-store" {
							t.Fatalf("answer cacheable: %q", rec.Header().Get("Cache-Control"))
						}
						switch {
						case answer == "allow":
							user := st.user
							if policy == "bypass" {
								user = ""
							}
							if rec.Code != http.StatusOK || rec.Header().Get("Remote-User") != user || rec.Body.Len() != 0 {
								t.Fatalf("want 200 as %q, got %d %q", user, rec.Code, rec.Header().Get("Remote-User"))
							}
							if _, ok := rec.Header()["Remote-Groups"]; !ok {
								t.Fatal("groups header not sent")
							}
						case !navigation:
							if rec.Code != http.StatusUnauthorized {
								t.Fatalf("want 401, got %d", rec.Code)
							}
						default:
							want := "https://panel.example" + challengePages[answer]
							if keepRD {
								want += "?rd=" + url.QueryEscape("https://panel.example"+uri)
							}
							if rec.Code != http.StatusFound || rec.Header().Get("Location") != want {
								t.Fatalf("want 302 to %s, got %d %q", want, rec.Code, rec.Header().Get("Location"))
							}
						}
						if len(w.upstreams.ids) != 0 {
							t.Fatal("forward auth forwarded a request")
						}
					})
				}
			}
		}
	}
}

// TestForwardAuthTrustsOnlyProxies: X-Forwarded-* and X-Original-URL
// are read only from a trusted peer. A client reaching the gateway
// directly with a valid session cookie and headers naming a protected
// route never gets a 200: it named no original request (401).
func TestForwardAuthTrustsOnlyProxies(t *testing.T) {
	full := store.Session{User: "alice", Stage: store.StageFull, TwoFactor: true, UserEpoch: 1, Mode: settings.ModeRequired}
	nginx := func(peer, original string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://authgate:8080"+ForwardAuthPath, nil)
		r.RemoteAddr = peer + ":40000"
		r.Header.Set("X-Original-URL", original)
		r.AddCookie(&http.Cookie{Name: "__Host-sid", Value: "s1"})
		return r
	}
	tests := []struct {
		name     string
		r        *http.Request
		want     int
		user     string
		location string
	}{
		{"trusted proxy, Traefik style", forwardAuthRequest("10.0.0.2", "/tf/x", "", true), http.StatusOK, "alice", ""},
		{"trusted proxy, nginx style", nginx("10.0.0.2", "https://panel.example/tf/x"), http.StatusOK, "alice", ""},
		{"untrusted peer, Traefik style", forwardAuthRequest("203.0.113.9", "/tf/x", "", true), http.StatusUnauthorized, "", ""},
		{"untrusted peer, nginx style", nginx("203.0.113.9", "https://panel.example/tf/x"), http.StatusUnauthorized, "", ""},
		{"untrusted peer naming a bypass route", forwardAuthRequest("203.0.113.9", "/open/x", "", false), http.StatusUnauthorized, "", ""},
		{"trusted proxy, both styles at once", func() *http.Request {
			r := forwardAuthRequest("10.0.0.2", "/tf/x", "", true)
			r.Header.Set("X-Original-URL", "https://panel.example/open/x")
			return r
		}(), http.StatusBadRequest, "", ""},
		{"trusted proxy, no original request", func() *http.Request {
			r := forwardAuthRequest("10.0.0.2", "/tf/x", "", true)
			r.Header.Del("X-Forwarded-Uri")
			return r
		}(), http.StatusUnauthorized, "", ""},
		{"trusted proxy, gateway path", forwardAuthRequest("10.0.0.2", "/.authgate/account", "", true), http.StatusNotFound, "", ""},
		{"trusted proxy, nginx style, no session: 401 with the login page", func() *http.Request {
			r := nginx("10.0.0.2", "https://panel.example/tf/x")
			r.Header.Del("Cookie")
			r.Header.Set("Accept", "text/html")
			return r
		}(), http.StatusUnauthorized, "", "https://panel.example/.authgate/login?rd=" + url.QueryEscape("https://panel.example/tf/x")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(settings.ModeRequired)
			w.sessions.add("s1", full)
			rec := serveForwardAuth(w.gate, tc.r)
			if rec.Code != tc.want || rec.Header().Get("Remote-User") != tc.user || rec.Header().Get("Location") != tc.location {
				t.Fatalf("got %d user %q location %q, want %d %q %q", rec.Code, rec.Header().Get("Remote-User"),
					rec.Header().Get("Location"), tc.want, tc.user, tc.location)
			}
		})
	}
}
