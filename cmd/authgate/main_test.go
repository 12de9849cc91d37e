package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// envRunMain makes the test binary behave as the authgate binary: the
// subprocess tests re-execute it (os.Executable) with this set, so they
// run the real main() — signals, exit codes and all — without a separate
// build.
const envRunMain = "AUTHGATE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// cliResult is what one run of the command line produced.
type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCLI calls run() in-process, as main would.
func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// shortTempDir is a temporary directory with a short path: the control
// socket lives in data_dir and unix socket paths are limited to 107 bytes,
// which t.TempDir's long test-named paths can exceed.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "agcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Callers that bind it must retry if another process took it meanwhile.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testConfig is the variable part of a config file written by writeConfig.
type testConfig struct {
	Listen   string // default 127.0.0.1:1 (never bound by user commands)
	DataDir  string
	Upstream string // default http://127.0.0.1:9
	Mode     string // two_factor.mode, default "off"
	Extra    string // appended verbatim (top-level YAML)
}

// writeConfig writes a valid config with fast argon2 parameters into dir
// and returns its path.
func writeConfig(t *testing.T, dir string, c testConfig) string {
	t.Helper()
	if c.Listen == "" {
		c.Listen = "127.0.0.1:1"
	}
	if c.Upstream == "" {
		c.Upstream = "http://127.0.0.1:9"
	}
	if c.Mode == "" {
		c.Mode = "off"
	}
	if c.DataDir == "" {
		c.DataDir = dir
	}
	yaml := fmt.Sprintf(`listen: %q
data_dir: %q
two_factor:
  mode: %q
password:
  argon2:
    memory_kib: 8192
    iterations: 1
    parallelism: 1
log:
  level: warn
routes:
  - name: app
    upstream: %q
    policy: password
%s`, c.Listen, c.DataDir, c.Mode, c.Upstream, c.Extra)
	return writeFile(t, dir, "authgate.yaml", yaml)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunTopLevel(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string
		wantStderr []string
	}{
		{name: "version", args: []string{"version"}, wantStdout: []string{"authgate dev (", runtime.Version()}},
		{name: "--version", args: []string{"--version"}, wantStdout: []string{"authgate dev (", runtime.Version()}},
		{name: "help", args: []string{"help"}, wantStdout: []string{"Usage:", "authgate serve", "authgate user import-htpasswd FILE"}},
		{name: "--help", args: []string{"--help"}, wantStdout: []string{"Usage:"}},
		{name: "no command", args: nil, wantCode: 2, wantStderr: []string{"Usage:"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2,
			wantStderr: []string{`unknown command "frobnicate"`, "Usage:", "authgate config check"}},
		{name: "config without check", args: []string{"config"}, wantCode: 2, wantStderr: []string{"authgate config check"}},
		{name: "config check extra argument", args: []string{"config", "check", "x.yaml"}, wantCode: 2, wantStderr: []string{`takes no argument "x.yaml"`}},
		{name: "serve bad flag", args: []string{"serve", "--bogus"}, wantCode: 2, wantStderr: []string{"-bogus"}},
		{name: "serve --help", args: []string{"serve", "--help"}, wantCode: 0, wantStderr: []string{"-config"}},
		{name: "user without command", args: []string{"user"}, wantCode: 2, wantStderr: []string{"add|list|passwd|delete|import-htpasswd"}},
		{name: "unknown user command", args: []string{"user", "frob", "--admin"}, wantCode: 2, wantStderr: []string{`unknown user command "frob"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, "", tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("want exit %d, got %v", tt.wantCode, r)
			}
			for _, s := range tt.wantStdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q: %v", s, r)
				}
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q: %v", s, r)
				}
			}
		})
	}
}

// TestUsageMatchesCommands checks every command line in the usage text
// against the dispatcher: each is known and answers --help with exit 0.
func TestUsageMatchesCommands(t *testing.T) {
	var cmds [][]string
	for _, line := range strings.Split(usage, "\n") {
		rest, ok := strings.CutPrefix(line, "  authgate ")
		if !ok {
			continue
		}
		var words []string
		for _, w := range strings.Fields(rest) {
			if w != strings.ToLower(w) || strings.HasPrefix(w, "[") || strings.HasPrefix(w, "-") {
				break // NAME, FILE, [--flag], description
			}
			words = append(words, w)
		}
		cmds = append(cmds, words)
	}
	if len(cmds) < 11 {
		t.Fatalf("found only %d command lines in the usage text: %q", len(cmds), cmds)
	}
	for _, words := range cmds {
		t.Run(strings.Join(words, " "), func(t *testing.T) {
			args := words
			if words[0] != "version" && words[0] != "help" {
				args = append(append([]string(nil), words...), "--help")
			}
			if r := runCLI(t, "", args...); r.code != 0 {
				t.Errorf("usage lists %q, but it fails: %v", words, r)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	valid := writeConfig(t, dir, testConfig{})
	tests := []struct {
		name string
		file string // content; "" means the valid config above
		// wantCode is the exit status; want are substrings of stdout, one
		// per problem (each naming key and line).
		wantCode int
		want     []string
		// wantProblems is the exact number of problem lines.
		wantProblems int
	}{
		{name: "valid", wantCode: 0, want: []string{"OK (1 route(s), store embedded)"}},
		{
			name: "unknown key and two invalid values",
			file: `listen: 127.0.0.1:8080
data_dir: /tmp/x
bogus: 1
two_factor:
  mode: sometimes
  digits: 7
routes:
  - name: app
    upstream: http://127.0.0.1:9
`,
			wantCode: 1,
			want: []string{
				`bogus (line 3): unknown key`,
				`two_factor.mode (line 5): must be "off", "on" or "required", got "sometimes"`,
				`two_factor.digits (line 6): must be 6 or 8, got 7`,
			},
			wantProblems: 3,
		},
		{
			name: "type errors, nested unknown key and invalid upstream",
			file: `data_dir: /tmp/x
session:
  idle_timeout: forever
  cookie: x
two_factor:
  digits: seven
routes:
  - bogus: 1
    name: app
    upstream: ftp://127.0.0.1:9
`,
			wantCode: 1,
			want: []string{
				`session.idle_timeout (line 3):`,
				`session.cookie (line 4): unknown key`,
				`two_factor.digits (line 6):`,
				`routes[0].bogus (line 8): unknown key`,
				`routes[0].upstream (line 10): must be an absolute http or https URL`,
			},
			wantProblems: 5,
		},
		{
			name: "duplicate key and invalid value",
			file: `data_dir: /tmp/x
listen: 127.0.0.1:8080
listen: 127.0.0.1:8081
log:
  level: loud
routes:
  - name: app
    upstream: http://127.0.0.1:9
`,
			wantCode: 1,
			want: []string{
				`listen (line 3): duplicate key (first set on line 2)`,
				`log.level (line 5):`,
			},
			wantProblems: 2,
		},
		{
			name: "validation problems only",
			file: `data_dir: /tmp/x
password:
  argon2:
    memory_kib: 64
routes: []
`,
			wantCode: 1,
			want: []string{
				`password.argon2.memory_kib (line 4): must be at least 8192`,
				`routes (line 5): at least one route is required`,
			},
			wantProblems: 2,
		},
		{
			name:     "not YAML",
			file:     "listen: [unclosed\n",
			wantCode: 1,
			// The path once, the line, and the likely cause.
			want: []string{"config (line 1): not valid YAML: did not find expected ',' or ']' (a quote or bracket opened here and never closed?)"},
		},
		{
			name: "warning only",
			file: `data_dir: /tmp/x
routes:
  - name: open
    upstream: http://127.0.0.1:9
    policy: bypass
`,
			wantCode: 0,
			want:     []string{"warning: routes[0].policy (line 5): is bypass", "OK (1 route(s), store embedded)"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := valid
			if tt.file != "" {
				path = writeFile(t, dir, fmt.Sprintf("c%d.yaml", i), tt.file)
			}
			r := runCLI(t, "", "config", "check", "--config", path)
			if r.code != tt.wantCode {
				t.Fatalf("want exit %d, got %v", tt.wantCode, r)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, path+": "+w) {
					t.Errorf("stdout lacks %q: %v", path+": "+w, r)
				}
			}
			if tt.wantProblems > 0 {
				// Each problem line is "<path>: <key> (line N): ..."; the
				// summary line counts them.
				re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(path) + `: [^ ]+ \(line \d+\): `)
				if got := len(re.FindAllString(r.stdout, -1)); got != tt.wantProblems {
					t.Errorf("want %d problem lines, got %d: %v", tt.wantProblems, got, r)
				}
				if sum := fmt.Sprintf("%s: %d problem(s)", path, tt.wantProblems); !strings.Contains(r.stdout, sum) {
					t.Errorf("stdout lacks %q: %v", sum, r)
				}
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "nope.yaml")
		r := runCLI(t, "", "config", "check", "--config", path)
		if r.code != 1 || !strings.Contains(r.stdout, "no such file") {
			t.Fatalf("want exit 1 naming the missing file, got %v", r)
		}
	})
}

func TestConfigPathFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	valid := writeConfig(t, dir, testConfig{})
	invalid := writeFile(t, dir, "bad.yaml", "bogus: 1\n")

	t.Setenv("AUTHGATE_CONFIG", valid)
	r := runCLI(t, "", "config", "check")
	if r.code != 0 || !strings.HasPrefix(r.stdout, valid+": OK") {
		t.Fatalf("AUTHGATE_CONFIG=%s: want OK, got %v", valid, r)
	}

	t.Setenv("AUTHGATE_CONFIG", invalid)
	r = runCLI(t, "", "config", "check")
	if r.code != 1 || !strings.Contains(r.stdout, invalid+`: bogus (line 1): unknown key`) {
		t.Fatalf("AUTHGATE_CONFIG=%s: want its problem, got %v", invalid, r)
	}

	// --config wins over the environment.
	r = runCLI(t, "", "config", "check", "--config", valid)
	if r.code != 0 || !strings.HasPrefix(r.stdout, valid+": OK") {
		t.Fatalf("--config must override AUTHGATE_CONFIG, got %v", r)
	}

	// The user commands read it too.
	t.Setenv("AUTHGATE_CONFIG", valid)
	r = runCLI(t, "", "user", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "NAME") {
		t.Fatalf("user list with AUTHGATE_CONFIG: %v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "authgate.db")); err != nil {
		t.Fatalf("user list did not use the store of $AUTHGATE_CONFIG: %v", err)
	}
}
