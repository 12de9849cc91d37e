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
		"route netdata: /netdata/… → http://127.0.0.1:19999/… (prefix replaced; /netdata → /)\n",
		"route app: /app/… → http://127.0.0.1:9000/base/… (prefix replaced; /app → /base)\n",
		"route webmin: panel.example.com/webmin/… → http://10.0.0.5:10000/webmin/… (path unchanged)\n",
		"route root: /… → https://127.0.0.1:2087/… (path unchanged)\n",
		"OK (4 route(s), store embedded)\n",
	} {
		if !strings.Contains(r.stdout, path+": "+want) {
			t.Errorf("stdout lacks %q:\n%s", path+": "+want, r.stdout)
		}
	}
}
