package main

import (
	"strings"
	"testing"
)

// config check says what each route does to request paths, so an
// operator sees before starting whether a panel served at "/" behind
// path_prefix /netdata gets "/" or "/netdata/".
func TestConfigCheckDescribesRoutePaths(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "routes.yaml", `data_dir: `+dir+`
routes:
  - name: netdata
    path_prefix: /netdata
    upstream: http://127.0.0.1:19999/
  - name: app
    path_prefix: /app/
    upstream: http://127.0.0.1:9000/base
  - name: webmin
    host: panel.example.com
    path_prefix: /webmin
    upstream: http://10.0.0.5:10000
  - name: root
    upstream: https://127.0.0.1:2087/
`)
	r := runCLI(t, "", "config", "check", "--config", path)
	if r.code != 0 {
		t.Fatalf("exit %v", r)
	}
	for _, want := range []string{
		"route netdata: /netdata/… → http://127.0.0.1:19999/… (prefix replaced; /netdata redirected to /netdata/)\n",
		"route app: /app/… → http://127.0.0.1:9000/base/… (prefix replaced; /app redirected to /app/)\n",
		"route webmin: panel.example.com/webmin/… → http://10.0.0.5:10000/webmin/… (path unchanged)\n",
		"route root: /… → https://127.0.0.1:2087/… (path unchanged)\n",
		"OK (4 route(s), store embedded)\n",
	} {
		if !strings.Contains(r.stdout, path+": "+want) {
			t.Errorf("stdout lacks %q:\n%s", path+": "+want, r.stdout)
		}
	}
}

// A logo that is not an image is reported like any bad value: the key
// and its line, exit 1.
func TestConfigCheckReportsBadLogo(t *testing.T) {
	dir := t.TempDir()
	logo := writeFile(t, dir, "logo.png", "<html>not an image</html>")
	path := writeFile(t, dir, "ui.yaml", `data_dir: `+dir+`
routes:
  - name: app
    upstream: http://127.0.0.1:9000
ui:
  title: "Acme"
  logo_file: `+logo+`
`)
	r := runCLI(t, "", "config", "check", "--config", path)
	want := `ui.logo_file (line 7): "` + logo + `" is not a PNG, JPEG, WebP or SVG image`
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, want) {
		t.Fatalf("exit %d, want 1 and %q:\n%s%s", r.code, want, r.stdout, r.stderr)
	}
}

// config check says which 2FA mode is in force and where it comes from:
// the file's until one is stored (Settings page, `authgate 2fa mode`),
// then the stored one, which wins.
func TestConfigCheckSaysWhereTheModeComesFrom(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, testConfig{Mode: "on"})
	r := runCLI(t, "", "config", "check", "--config", path)
	if r.code != 0 || !strings.Contains(r.stdout, path+": 2fa mode: on from two_factor.mode in the config file, unless one was set on the Settings page") ||
		!strings.Contains(r.stdout, "does not exist yet") {
		t.Fatalf("before any store: %v", r)
	}
	if r := runCLI(t, "", "2fa", "mode", "required", "--config", path); r.code != 0 {
		t.Fatalf("2fa mode required: %v", r)
	}
	r = runCLI(t, "", "config", "check", "--config", path)
	want := path + ": 2fa mode: required, set on the Settings page or with `authgate 2fa mode`; it wins over two_factor.mode on in the config file\n"
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("stdout lacks %q: %v", want, r)
	}
}

// config check says whether passkeys are offered, with which relying
// party, or why browsers will not offer them.
func TestConfigCheckSaysWhetherPasskeysAreOffered(t *testing.T) {
	for _, tc := range []struct{ extra, want string }{
		{"public_url: https://panel.example.com\nwebauthn:\n  passwordless: true\n",
			": passkeys: offered (RP ID panel.example.com, origins https://panel.example.com, user verification preferred); passwordless sign-in on\n"},
		{"public_url: http://localhost:8080\n", ": passkeys: offered (RP ID localhost, origins http://localhost:8080"},
		{"public_url: http://panel.lan:8080\n", ": passkeys: unavailable: "},
		{"", ": passkeys: unavailable: passkeys need an origin"},
	} {
		path := writeConfig(t, t.TempDir(), testConfig{Extra: tc.extra})
		r := runCLI(t, "", "config", "check", "--config", path)
		if r.code != 0 || !strings.Contains(r.stdout, path+tc.want) {
			t.Errorf("%q: stdout lacks %q: %v", tc.extra, tc.want, r)
		}
	}
}
