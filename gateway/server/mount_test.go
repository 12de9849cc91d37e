package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/config"
)

// Regression (issue "Real panels behind the gateway"): a panel served at
// "/" (netdata) configured as "path_prefix: /netdata" with "upstream:
// http://127.0.0.1:19999/" got /netdata/... unchanged and answered 404.
// Through the whole gateway: the prefix is replaced by the upstream's
// "/", the panel's redirect to its own "/login" and its cookie for
// "Path=/" come back under /netdata, and a browser then sends that cookie
// to the panel, but not to another route on the same host.
func TestPanelAtRootMountedUnderPrefix(t *testing.T) {
	type saw struct {
		By     string `json:"by"`
		Path   string `json:"path"`
		Cookie string `json:"cookie"`
	}
	echo := func(by string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(saw{By: by, Path: r.URL.Path, Cookie: r.Header.Get("Cookie")})
		}
	}
	panel := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			http.SetCookie(w, &http.Cookie{Name: "nd_session", Value: "v1", Path: "/", HttpOnly: true})
			http.Redirect(w, r, "/login?next=%2F", http.StatusFound)
		case "/home":
			// An absolute redirect to the panel's own origin.
			http.Redirect(w, r, "http://"+r.Host+"/dashboard", http.StatusSeeOther)
		default:
			echo("panel")(w, r)
		}
	}))
	t.Cleanup(panel.Close)
	other := httptest.NewServer(echo("other"))
	t.Cleanup(other.Close)

	g := startGateway(t, gwOpts{mode: "off", routes: []config.Route{
		{Name: "netdata", PathPrefix: "/netdata", Upstream: panel.URL + "/", Policy: config.PolicyPassword},
		{Name: "other", PathPrefix: "/", Upstream: other.URL, Policy: config.PolicyPassword},
	}})
	g.addUser(t, "alice", "correct horse")
	// The bare prefix is challenged like every other path before sign-in:
	// its redirect to the prefix with a slash comes after the policy.
	if loc := location(g.browser(t).get("/netdata")); !strings.HasPrefix(loc, "/.authgate/login") {
		t.Fatalf("/netdata without a session: redirected to %q, want the sign-in page", loc)
	}
	b := g.browser(t)
	mustStatus(t, b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}}), http.StatusSeeOther, "login")

	get := func(path string) saw {
		t.Helper()
		r := b.get(path)
		mustStatus(t, r, http.StatusOK, path)
		var s saw
		if err := json.Unmarshal([]byte(r.body), &s); err != nil {
			t.Fatalf("%s: %v: %s", path, err, r.body)
		}
		return s
	}

	// The bare prefix goes to the prefix with its slash (the panel's page
	// at "/" has relative links), as nginx does for "location /netdata/".
	r := b.get("/netdata?x=1")
	mustStatus(t, r, http.StatusPermanentRedirect, "/netdata")
	if loc := location(r); loc != "/netdata/?x=1" {
		t.Fatalf("/netdata: redirected to %q, want /netdata/?x=1", loc)
	}
	for _, path := range []string{"/netdata/"} {
		r := b.get(path)
		mustStatus(t, r, http.StatusFound, path)
		if loc := location(r); loc != "/netdata/login?next=%2F" {
			t.Fatalf("%s: redirected to %q, want /netdata/login?next=%%2F", path, loc)
		}
		if got := r.header.Values("Set-Cookie"); len(got) != 1 || got[0] != "nd_session=v1; HttpOnly; Path=/netdata" {
			t.Fatalf("%s: Set-Cookie %q, want nd_session=v1; HttpOnly; Path=/netdata", path, got)
		}
	}
	// The browser follows the redirect and sends the panel's cookie.
	s := get("/netdata/login?next=%2F")
	if s.By != "panel" || s.Path != "/login" {
		t.Fatalf("%s got %q, want the panel's /login", s.By, s.Path)
	}
	if !strings.Contains(s.Cookie, "nd_session=v1") {
		t.Fatalf("panel did not get its cookie: %q", s.Cookie)
	}
	if strings.Contains(s.Cookie, "authgate") {
		t.Fatalf("panel got the gateway's cookie: %q", s.Cookie)
	}
	if s := get("/netdata/api/v1/info"); s.By != "panel" || s.Path != "/api/v1/info" {
		t.Fatalf("%s got %q, want the panel's /api/v1/info", s.By, s.Path)
	}
	// ".." is resolved before matching: it leaves the route instead of
	// climbing above the panel's "/". (Go's cookie jar, unlike browsers,
	// does not resolve "%2e%2e" itself, so which cookies it sends here
	// says nothing.)
	for _, path := range []string{"/netdata/%2e%2e/api", "/netdata/x/../../api"} {
		if s := get(path); s.By != "other" || s.Path != "/api" {
			t.Fatalf("%s reached %s's %q; want the other route's /api", path, s.By, s.Path)
		}
	}
	// Another route on the same host never sees the panel's cookie.
	if s := get("/elsewhere"); s.By != "other" || s.Path != "/elsewhere" || strings.Contains(s.Cookie, "nd_session") {
		t.Fatalf("/elsewhere reached %s's %q with cookies %q", s.By, s.Path, s.Cookie)
	}
	r = b.get("/netdata/home")
	mustStatus(t, r, http.StatusSeeOther, "absolute redirect")
	if loc := location(r); loc != g.URL+"/netdata/dashboard" {
		t.Fatalf("absolute redirect went to %q, want %s/netdata/dashboard", loc, g.URL)
	}
}
