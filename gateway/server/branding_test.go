package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/settings"
)

var (
	pngLogo = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR-first")
	svgLogo = []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><script>alert(1)</script></svg>`)
	logoRE  = regexp.MustCompile(`<img class="brand-logo" src="(/\.authgate/logo\?v=[0-9a-f]+)" alt="">`)
)

func writeLogo(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// logoURL is the logo a sign-in page shows, "" if none.
func logoURL(page string) string {
	if m := logoRE.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}

// The login page names the gateway (ui.title) and the host being signed
// into and shows the logo, served to anyone at /.authgate/logo.
func TestBrandingOnSignInPages(t *testing.T) {
	logo := writeLogo(t, "logo.png", pngLogo)
	g := startGatewayWith(t, gwOpts{mode: "required"}, func(c *config.Config) {
		c.UI.Title = "Acme Hosting"
		c.UI.LogoFile = logo
	})
	b := g.browser(t)
	page := b.get("/.authgate/login")
	mustStatus(t, page, http.StatusOK, "login page")
	host := strings.TrimPrefix(g.URL, "http://")
	for _, want := range []string{
		`<p class="brand">Acme Hosting</p>`,
		`Sign in to <strong>` + host + `</strong>`,
		`<title>Sign in · Acme Hosting</title>`,
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("login page lacks %q:\n%.2000s", want, page.body)
		}
	}
	src := logoURL(page.body)
	if src == "" {
		t.Fatalf("no logo on the login page:\n%.2000s", page.body)
	}

	// The logo needs no session and sets no cookie.
	anon := g.browser(t)
	r := anon.get(src)
	mustStatus(t, r, http.StatusOK, "logo")
	if r.body != string(pngLogo) {
		t.Fatalf("logo body = %q", r.body)
	}
	for k, v := range map[string]string{
		"Content-Type":            "image/png",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
		"Cache-Control":           "public, max-age=31536000, immutable",
		"Set-Cookie":              "",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("logo %s = %q, want %q", k, got, v)
		}
	}
	etag := r.header.Get("ETag")
	if etag == "" {
		t.Fatal("logo without ETag")
	}
	nm := anon.do("GET", "/.authgate/logo", nil, http.Header{"If-None-Match": {etag}})
	mustStatus(t, nm, http.StatusNotModified, "logo with If-None-Match")
	if nm.body != "" {
		t.Errorf("304 with a body")
	}
	// In any letter case the path stays the gateway's: never forwarded.
	if r := anon.get("/.AUTHGATE/logo"); strings.Contains(r.body, `"path"`) {
		t.Errorf("/.AUTHGATE/logo reached the upstream: %d %.200s", r.status, r.body)
	}

	// After the password, the second-factor pages carry the same header.
	g.addUser(t, "alice", "correct horse")
	res := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}})
	mustStatus(t, res, http.StatusSeeOther, "password step")
	enrollPage := b.get(location(res))
	mustStatus(t, enrollPage, http.StatusOK, "enroll page")
	if !strings.Contains(enrollPage.body, `<p class="brand">Acme Hosting</p>`) || logoURL(enrollPage.body) != src ||
		!strings.Contains(enrollPage.body, `Sign in to <strong>`+host+`</strong>`) {
		t.Errorf("enroll page lacks the brand:\n%.2000s", enrollPage.body)
	}
}

// Without ui.title the title is the Issuer in force, and follows an
// Issuer set on the Settings page (stored) without a restart.
func TestBrandingTitleFollowsIssuer(t *testing.T) {
	g := startGateway(t, gwOpts{})
	b := g.browser(t)
	if page := b.get("/.authgate/login"); !strings.Contains(page.body, `<p class="brand">Test Panel</p>`) {
		t.Fatalf("title is not the configured Issuer:\n%.1500s", page.body)
	}
	if page := b.get("/.authgate/login"); logoURL(page.body) != "" || strings.Contains(page.body, "<img") {
		t.Error("a logo without ui.logo_file")
	}
	if r := b.get("/.authgate/logo"); r.status != http.StatusNotFound {
		t.Errorf("/.authgate/logo without a logo: %d", r.status)
	}
	if err := g.srv.Store().SetSetting(context.Background(), settings.KeyIssuer, "Renamed Panel"); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(5 * time.Second) // past the settings cache
	if page := b.get("/.authgate/login"); !strings.Contains(page.body, `<p class="brand">Renamed Panel</p>`) {
		t.Fatalf("title did not follow the stored Issuer:\n%.1500s", page.body)
	}
}

// An SVG logo is served as an image under a policy that runs nothing,
// and pages show it through <img> only.
func TestBrandingSVGLogo(t *testing.T) {
	logo := writeLogo(t, "logo.svg", svgLogo)
	g := startGatewayWith(t, gwOpts{}, func(c *config.Config) { c.UI.LogoFile = logo })
	b := g.browser(t)
	page := b.get("/.authgate/login")
	if strings.Contains(page.body, "<svg") || logoURL(page.body) == "" {
		t.Fatalf("SVG logo not shown through <img>:\n%.2000s", page.body)
	}
	r := b.get("/.authgate/logo")
	mustStatus(t, r, http.StatusOK, "svg logo")
	for k, v := range map[string]string{
		"Content-Type":            "image/svg+xml",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
		"Cache-Control":           "no-cache",
	} {
		if got := r.header.Get(k); got != v {
			t.Errorf("svg logo %s = %q, want %q", k, got, v)
		}
	}
}

// ui.* reload: a new title and logo apply without a restart; a logo file
// that is not an image rejects the reload and the running one stays.
func TestBrandingReload(t *testing.T) {
	first := writeLogo(t, "first.png", pngLogo)
	second := writeLogo(t, "second.svg", svgLogo)
	up := namedUpstream(t, "A")
	ui := func(title, logo string) fileConfig {
		return fileConfig{upstream: up.URL, extra: "server:\n  watch_config: false\nui:\n  title: \"" + title + "\"\n  logo_file: \"" + logo + "\"\n"}
	}
	g := startFileGateway(t, ui("First", first))
	dir := filepath.Dir(g.path) // the data_dir stays
	b := g.client(t)
	page := b.get("/.authgate/login")
	oldSrc := logoURL(page.body)
	if !strings.Contains(page.body, `<p class="brand">First</p>`) || oldSrc == "" {
		t.Fatalf("start: %.1500s", page.body)
	}

	writeGatewayConfig(t, g.path, dir, ui("Second", second))
	if err := g.srv.Reload(g.path); err != nil {
		t.Fatal(err)
	}
	page = b.get("/.authgate/login")
	newSrc := logoURL(page.body)
	if !strings.Contains(page.body, `<p class="brand">Second</p>`) || newSrc == "" || newSrc == oldSrc {
		t.Fatalf("after reload: logo %q (was %q): %.1500s", newSrc, oldSrc, page.body)
	}
	if r := b.get(newSrc); r.header.Get("Content-Type") != "image/svg+xml" || r.body != string(svgLogo) {
		t.Fatalf("new logo: %s %q", r.header.Get("Content-Type"), r.body)
	}
	if strings.Contains(g.logs.String(), "only change at restart") {
		t.Errorf("ui.* reported as restart-only:\n%s", g.logs)
	}

	notImage := writeLogo(t, "logo.png", []byte("not an image"))
	writeGatewayConfig(t, g.path, dir, ui("Third", notImage))
	err := g.srv.Reload(g.path)
	var probs config.Problems
	if !errors.Is(err, server.ErrConfigRejected) || !errors.As(err, &probs) || len(probs) != 1 ||
		probs[0].Key != "ui.logo_file" || probs[0].Line == 0 {
		t.Fatalf("Reload with a bad logo = %v, want ErrConfigRejected naming ui.logo_file and its line", err)
	}
	if page := b.get("/.authgate/login"); !strings.Contains(page.body, `<p class="brand">Second</p>`) || logoURL(page.body) != newSrc {
		t.Fatalf("after a rejected reload: %.1500s", page.body)
	}
}
