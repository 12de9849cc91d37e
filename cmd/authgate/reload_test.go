package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// namedUpstream answers "NAME for USER"; /slow answers after ?d=.
func namedUpstream(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			d, _ := time.ParseDuration(r.URL.Query().Get("d"))
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "%s for %s", name, r.Header.Get("Remote-User"))
	}))
	t.Cleanup(s.Close)
	return s
}

// waitForBody polls the gateway until GET path answers want.
func waitForBody(t *testing.T, p *gatewayProc, b *browser, path, want string) {
	t.Helper()
	var code int
	var body string
	ok := p.waitFor(t, "GET "+path+" = "+want, func() bool {
		code, _, body = b.get(t, p.origin+path)
		return code == http.StatusOK && body == want
	})
	if !ok {
		t.Fatalf("serve exited; last GET %s: %d %q\nstderr:\n%s", path, code, body, p.stderr)
	}
}

// TestServeSIGHUPAndSIGTERM runs the real binary: SIGHUP reloads a
// rewritten config (the route moves from A to B with the same session),
// a SIGHUP with an invalid file keeps B and logs the problem, and SIGTERM
// lets a slow in-flight request finish, exits 0 and removes the control
// socket.
func TestServeSIGHUPAndSIGTERM(t *testing.T) {
	dir := shortTempDir(t)
	a, b := namedUpstream(t, "A"), namedUpstream(t, "B")
	// Not watched: only SIGHUP may reload it.
	const extra = "server:\n  watch_config: false\n  shutdown_timeout: 20s\n"
	srv := startServer(t, dir, testConfig{Upstream: a.URL, Extra: extra})
	listen := strings.TrimPrefix(srv.origin, "http://")
	rewrite := func(c testConfig) {
		t.Helper()
		c.Listen = listen
		writeConfig(t, dir, c)
	}
	r := runSub(t, "bob-password-1\n", "user", "add", "bob", "--password-stdin", "--config", srv.config)
	if r.code != 0 {
		t.Fatalf("user add: %v", r)
	}
	br := newBrowser()
	if code, _ := br.login(t, srv.origin, "bob", "bob-password-1"); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	waitForBody(t, srv, br, "/", "A for bob")

	rewrite(testConfig{Upstream: b.URL, Extra: extra})
	time.Sleep(500 * time.Millisecond) // a watcher would have reloaded by now
	if code, _, body := br.get(t, srv.origin+"/"); code != http.StatusOK || body != "A for bob" {
		t.Fatalf("unwatched file reloaded without SIGHUP: %d %q", code, body)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForBody(t, srv, br, "/", "B for bob") // same session cookie

	rewrite(testConfig{Upstream: "not a url", Extra: extra})
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !srv.waitFor(t, "the rejection in the log", func() bool {
		return strings.Contains(srv.stderr.String(), "config reload rejected")
	}) {
		t.Fatalf("serve exited after a bad reload:\n%s", srv.stderr)
	}
	if !strings.Contains(srv.stderr.String(), `"key":"routes[0].upstream"`) {
		t.Errorf("the problem's key is not logged:\n%s", srv.stderr)
	}
	if code, _, body := br.get(t, srv.origin+"/"); code != http.StatusOK || body != "B for bob" {
		t.Fatalf("after a rejected reload: %d %q", code, body)
	}

	// SIGTERM with a request in flight: it completes, then exit 0.
	type answer struct {
		code int
		body string
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, srv.origin+"/slow?d=1500ms", nil)
		res, err := br.Do(req)
		if err != nil {
			got <- answer{err: err}
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		got <- answer{code: res.StatusCode, body: string(body), err: err}
	}()
	time.Sleep(500 * time.Millisecond) // the request is at the upstream
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t, exitTimeout); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d\nstderr:\n%s", code, srv.stderr)
	}
	if ans := <-got; ans.err != nil || ans.code != http.StatusOK || ans.body != "B for bob" {
		t.Fatalf("in-flight request during shutdown: %+v", ans)
	}
	if _, err := os.Lstat(filepath.Join(dir, "authgate.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("control socket left behind: %v", err)
	}
}
