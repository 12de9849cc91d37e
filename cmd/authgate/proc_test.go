package main

import (
	"bytes"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Generous bounds: the subprocess is the race-instrumented test binary and
// the machine may have two slow cores.
const (
	startTimeout = 90 * time.Second
	exitTimeout  = 60 * time.Second
)

// syncBuffer is a bytes.Buffer safe for a writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is the authgate binary running as a child process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when the process has exited
}

// startCLI starts "authgate args..." as a subprocess: this test binary,
// which runs main() when envRunMain is set (see TestMain).
func startCLI(t *testing.T, stdin string, env []string, args ...string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), envRunMain+"=1"), env...)
	cmd.Stdin = strings.NewReader(stdin)
	p := &proc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait returns the exit code (-1 if killed by a signal).
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%v did not exit within %v\nstdout:\n%s\nstderr:\n%s", p.cmd.Args[1:], timeout, p.stdout, p.stderr)
		return 0
	}
}

func (p *proc) result(t *testing.T) cliResult {
	t.Helper()
	code := p.wait(t, exitTimeout)
	return cliResult{code: code, stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// runSub runs one command as a subprocess to its end.
func runSub(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	return startCLI(t, stdin, nil, args...).result(t)
}

// waitFor polls cond until it holds, the process exits, or the start
// timeout passes. It reports whether cond held.
func (p *proc) waitFor(t *testing.T, what string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		if p.exited() {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s\nstdout:\n%s\nstderr:\n%s", what, p.stdout, p.stderr)
	return false
}

// browser is an HTTP client that keeps cookies and does not follow
// redirects, so each answer can be checked.
type browser struct {
	*http.Client
	jar *cookiejar.Jar
}

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{
		jar: jar,
		Client: &http.Client{
			Jar:           jar,
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// get returns status, Location and body of a browser navigation to
// rawURL (Accept: text/html, so the gateway redirects instead of
// answering 401).
func (b *browser) get(t *testing.T, rawURL string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	resp, err := b.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// login signs in through the login form as a browser would and returns
// the status and Location of the form's answer.
func (b *browser) login(t *testing.T, origin, user, pw string) (int, string) {
	t.Helper()
	code, _, body := b.get(t, origin+"/.authgate/login")
	if code != http.StatusOK {
		t.Fatalf("GET /.authgate/login: %d", code)
	}
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf_token in the login page:\n%s", body)
	}
	form := url.Values{"csrf_token": {html.UnescapeString(m[1])}, "username": {user}, "password": {pw}}
	req, err := http.NewRequest(http.MethodPost, origin+"/.authgate/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatalf("POST /.authgate/login: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// hasCookie reports whether the jar holds a cookie named name for rawURL.
func (b *browser) hasCookie(t *testing.T, rawURL, name string) bool {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return true
		}
	}
	return false
}
