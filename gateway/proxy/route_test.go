package proxy

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustNew(t testing.TB, o Options) *Proxy {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestMatch(t *testing.T) {
	up := mustURL(t, "http://up.invalid")
	p := mustNew(t, Options{Routes: []Route{
		{Name: "any-root", Upstream: up},
		{Name: "any-app", PathPrefix: "/app", Upstream: up},
		{Name: "any-app-admin", PathPrefix: "/app/admin/", Upstream: up},
		{Name: "panel-root", Host: "Panel.Example.", PathPrefix: "/", Upstream: up},
		{Name: "panel-app", Host: "panel.example", PathPrefix: "/app", Upstream: up},
		{Name: "other-x", Host: "other.example", PathPrefix: "/x", Upstream: up},
	}})
	tests := []struct {
		host, path string
		want       string // "" = no match
	}{
		{"unknown.example", "/", "any-root"},
		{"unknown.example", "/app", "any-app"},
		{"unknown.example", "/app/", "any-app"},
		{"unknown.example", "/app/x", "any-app"},
		{"unknown.example", "/apple", "any-root"},
		{"unknown.example", "/app/admin", "any-app-admin"},
		{"unknown.example", "/app/admin/x", "any-app-admin"},
		{"unknown.example", "/app/administrator", "any-app"},
		{"unknown.example", "/app;jsessionid=1", "any-app"},
		{"unknown.example", "/app/admin;x/y", "any-app-admin"},
		// Host routes win over host-less ones, even with a shorter prefix.
		{"panel.example", "/app/admin/x", "panel-app"},
		{"panel.example", "/apple", "panel-root"},
		{"PANEL.EXAMPLE:8443", "/app", "panel-app"},
		{"panel.example.", "/", "panel-root"},
		// other.example has only /x: other paths fall back to host-less routes.
		{"other.example", "/x/y", "other-x"},
		{"other.example", "/xy", "any-root"},
		{"other.example", "/app", "any-app"},
		{"", "/app", "any-app"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			rt, ok := p.Match(tt.host, tt.path)
			got := ""
			if ok {
				got = rt.Name
			}
			if got != tt.want {
				t.Fatalf("Match(%q, %q) = %q; want %q", tt.host, tt.path, got, tt.want)
			}
		})
	}
}

func TestMatchNoFallback(t *testing.T) {
	up := mustURL(t, "http://up.invalid")
	p := mustNew(t, Options{Routes: []Route{
		{Name: "panel", Host: "panel.example", PathPrefix: "/app", Upstream: up},
		{Name: "api", PathPrefix: "/api", Upstream: up},
	}})
	for _, tt := range []struct{ host, path string }{
		{"panel.example", "/"}, {"panel.example", "/apple"}, {"other.example", "/app"}, {"other.example", "/apix"},
	} {
		if rt, ok := p.Match(tt.host, tt.path); ok {
			t.Errorf("Match(%q, %q) = %q; want no match", tt.host, tt.path, rt.Name)
		}
	}
}

func TestNewNormalises(t *testing.T) {
	p := mustNew(t, Options{Routes: []Route{
		{Host: "[::1]:8080", PathPrefix: "/app/", Upstream: mustURL(t, "http://up.invalid/base/")},
	}})
	rt := p.Routes()[0]
	if rt.Name != "route0" || rt.Host != "::1" || rt.PathPrefix != "/app" || rt.Upstream.Path != "/base" {
		t.Fatalf("normalised route = %+v", rt)
	}
	if rt.UserHeader != DefaultUserHeader || rt.GroupsHeader != DefaultGroupsHeader {
		t.Fatalf("identity headers = %q, %q", rt.UserHeader, rt.GroupsHeader)
	}
	if len(rt.UpgradeProtocols) != 1 || rt.UpgradeProtocols[0] != "websocket" {
		t.Fatalf("upgrade protocols = %q; want the default websocket", rt.UpgradeProtocols)
	}
	// An empty list stays empty (no upgrades), not the default.
	none := mustNew(t, Options{Routes: []Route{{Upstream: mustURL(t, "http://up.invalid"), UpgradeProtocols: []string{}}}}).Routes()[0]
	if none.UpgradeProtocols == nil || len(none.UpgradeProtocols) != 0 {
		t.Fatalf("empty upgrade protocols normalised to %q", none.UpgradeProtocols)
	}
}

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := mustURL(t, "http://up.invalid")
	ups := mustURL(t, "https://up.invalid")
	tests := []struct {
		name   string
		routes []Route
		want   string
	}{
		{"no routes", nil, "no routes"},
		{"no upstream", []Route{{Name: "a"}}, "no upstream"},
		{"bad scheme", []Route{{Name: "a", Upstream: mustURL(t, "ftp://x")}}, "scheme"},
		{"no host", []Route{{Name: "a", Upstream: mustURL(t, "http:///x")}}, "no host"},
		{"credentials", []Route{{Name: "a", Upstream: mustURL(t, "http://u:p@x")}}, "credentials"},
		{"query", []Route{{Name: "a", Upstream: mustURL(t, "http://x/?a=1")}}, "query"},
		{"relative prefix", []Route{{Name: "a", PathPrefix: "app", Upstream: up}}, "must start with /"},
		{"prefix with escape", []Route{{Name: "a", PathPrefix: "/a%2fb", Upstream: up}}, "must not contain"},
		{"bad header", []Route{{Name: "a", Upstream: up, UserHeader: "Remote User"}}, "not a valid header name"},
		{"same headers", []Route{{Name: "a", Upstream: up, UserHeader: "X-Id", GroupsHeader: "x_id"}}, "must differ"},
		{"tls on http", []Route{{Name: "a", Upstream: up, InsecureSkipVerify: true}}, "https upstream"},
		{"ca and insecure", []Route{{Name: "a", Upstream: ups, CAFile: notPEM, InsecureSkipVerify: true}}, "exclude"},
		{"missing ca", []Route{{Name: "a", Upstream: ups, CAFile: filepath.Join(dir, "nope.pem")}}, "ca_file"},
		{"not pem", []Route{{Name: "a", Upstream: ups, CAFile: notPEM}}, "no PEM"},
		{"upgrade protocol with version", []Route{{Name: "a", Upstream: up, UpgradeProtocols: []string{"websocket/13"}}}, `upgrade protocol "websocket/13"`},
		{"empty upgrade protocol", []Route{{Name: "a", Upstream: up, UpgradeProtocols: []string{""}}}, "upgrade protocol"},
		{"dup name", []Route{{Name: "a", Upstream: up}, {Name: "a", PathPrefix: "/x", Upstream: up}}, "duplicate name"},
		{"dup match", []Route{{Name: "a", PathPrefix: "/x/", Upstream: up}, {Name: "b", PathPrefix: "/x", Upstream: up}}, "same host and path_prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{Routes: tt.routes})
			if !errors.Is(err, ErrInvalidRoute) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v; want ErrInvalidRoute containing %q", err, tt.want)
			}
		})
	}
}

// All problems are reported at once, each naming its route.
func TestNewReportsEveryRoute(t *testing.T) {
	_, err := New(Options{Routes: []Route{{Name: "one"}, {Name: "two", Upstream: mustURL(t, "ftp://x")}}})
	if err == nil || !strings.Contains(err.Error(), `"one"`) || !strings.Contains(err.Error(), `"two"`) {
		t.Fatalf("error = %v; want both routes named", err)
	}
}
