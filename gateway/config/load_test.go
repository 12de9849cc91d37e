package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clearEnv makes the test independent of the caller's environment.
func clearEnv(t *testing.T) {
	t.Helper()
	t.Setenv(EnvSecretKey, "")
	t.Setenv(EnvRedisPassword, "")
	t.Setenv(EnvRedisSentinelPassword, "")
}

func TestDefaults(t *testing.T) {
	d := Defaults()
	want := Config{
		Listen:        ":8080",
		DataDir:       "/var/lib/authgate",
		SecretKeyFile: "/var/lib/authgate/secret.key",
		Store: Store{
			Driver: "embedded",
			Path:   "/var/lib/authgate/authgate.db",
			Redis:  Redis{KeyPrefix: "authgate", PoolSize: DefaultRedisPoolSize},
		},
		Session: Session{CookieName: "authgate_session", IdleTimeout: time.Hour, MaxLifetime: 12 * time.Hour, CacheMaxAge: 30 * time.Second, CacheSize: 100000},
		TwoFactor: TwoFactor{
			Mode: "on", Issuer: "", Period: 30, Digits: 6, Algorithm: "SHA1", Skew: 1, DriftScan: 10 * time.Minute,
		},
		Password:   Password{Argon2: Argon2{MemoryKiB: 65536, Iterations: 3, Parallelism: 2}, CPUShare: 0.2},
		Time:       Time{CheckInterval: 5 * time.Minute, WarnOver: 5 * time.Second},
		Proxy:      Proxy{ResponseHeaderTimeout: 2 * time.Minute},
		Regulation: Regulation{MaxFailures: 5, Window: 5 * time.Minute, Ban: 15 * time.Minute, MaxBan: 4 * time.Hour},
		Log:        Log{Level: "info", Format: "json", FlushInterval: 100 * time.Millisecond},
		Server:     Server{ShutdownTimeout: 15 * time.Second, WatchConfig: true, GCPercent: 400, MemoryLimitMiB: 192},
		TLS:        TLS{Mode: TLSOff, ACME: ACME{CA: LetsEncryptProduction, Storage: "/var/lib/authgate/acme"}},
		WebAuthn:   WebAuthn{Enabled: true, UserVerification: "preferred", Attestation: "none", Timeout: 2 * time.Minute},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Defaults() =\n%+v\nwant\n%+v", d, want)
	}
}

func TestLoadEmptyIsDefaults(t *testing.T) {
	clearEnv(t)
	for name, data := range map[string]string{
		"empty":         "",
		"comments only": "# nothing here\n",
		"null document": "~\n",
		"document mark": "---\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := LoadBytes([]byte(data), "test.yaml")
			if err != nil {
				t.Fatal(err)
			}
			c.lines, c.path = nil, ""
			if d := Defaults(); !reflect.DeepEqual(*c, d) {
				t.Fatalf("got\n%+v\nwant defaults\n%+v", *c, d)
			}
		})
	}
}

func TestLoadDerivedDefaults(t *testing.T) {
	clearEnv(t)
	c, err := LoadBytes([]byte(`
data_dir: /srv/ag
routes:
  - name: a
    upstream: http://127.0.0.1:1
  - name: b
    upstream: http://127.0.0.1:2
    path_prefix: /b
    policy: password
    identity_headers: {user: X-User}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretKeyFile != "/srv/ag/secret.key" || c.Store.Path != "/srv/ag/authgate.db" {
		t.Errorf("derived paths = %q, %q", c.SecretKeyFile, c.Store.Path)
	}
	a, b := c.Routes[0], c.Routes[1]
	if a.PathPrefix != "/" || a.Policy != "two_factor" || a.IdentityHeaders != (IdentityHeaders{"Remote-User", "Remote-Groups"}) {
		t.Errorf("route a defaults wrong: %+v", a)
	}
	if b.PathPrefix != "/b" || b.Policy != "password" || b.IdentityHeaders != (IdentityHeaders{"X-User", "Remote-Groups"}) {
		t.Errorf("route b wrong: %+v", b)
	}
}

func TestLoadExplicitValuesBeatDefaults(t *testing.T) {
	clearEnv(t)
	c, err := LoadBytes([]byte(`
listen: 127.0.0.1:9000
secret_key_file: /etc/ag/key
store: {driver: redis, redis: {addrs: [r1:6379, r2:6379], db: 0, key_prefix: x}}
session: {idle_timeout: 90s, max_lifetime: 2h30m, cookie_name: sid}
two_factor: {mode: off, skew: 0, period: 60, digits: 8, algorithm: SHA512, issuer: Corp}
password: {argon2: {memory_kib: 8192, iterations: 1, parallelism: 4}}
trusted_proxies: [10.0.0.0/8]
log: {level: debug, format: console}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "127.0.0.1:9000"},
		{"secret_key_file", c.SecretKeyFile, "/etc/ag/key"},
		{"store.path (still derived)", c.Store.Path, "/var/lib/authgate/authgate.db"},
		{"store.redis.addrs", c.Store.Redis.Addrs, []string{"r1:6379", "r2:6379"}},
		{"idle", c.Session.IdleTimeout, 90 * time.Second},
		{"max", c.Session.MaxLifetime, 150 * time.Minute},
		// Unquoted "off" must stay the string "off", not YAML 1.1 false.
		{"mode", c.TwoFactor.Mode, "off"},
		// An explicit zero is kept, not replaced by the default 1.
		{"skew", c.TwoFactor.Skew, 0},
		{"digits", c.TwoFactor.Digits, 8},
		{"parallelism", c.Password.Argon2.Parallelism, uint8(4)},
		{"trusted", c.TrustedProxies, []string{"10.0.0.0/8"}},
		{"log", c.Log, Log{Level: "debug", Format: "console", FlushInterval: DefaultLogFlushInterval}},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
}

func TestLoadDecodeErrors(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name string
		yaml string
		want []Problem // Key, Line, Msg
	}{
		{
			name: "unknown top-level key",
			yaml: "listen: :1\nlisten_addr: :2\n",
			want: []Problem{{"listen_addr", 2, `unknown key; did you mean "listen"?`}},
		},
		{
			name: "unknown nested key",
			yaml: "store:\n  redis:\n    tls:\n      enable: true\n",
			want: []Problem{{"store.redis.tls.enable", 4, `unknown key; did you mean "store.redis.tls.enabled"?`}},
		},
		{
			name: "unknown key in a route",
			yaml: "routes:\n  - name: a\n    upstream: http://x\n  - name: b\n    upstrem: http://y\n",
			want: []Problem{{"routes[1].upstrem", 5, `unknown key; did you mean "routes[1].upstream"?`}},
		},
		{
			name: "unknown key deep in a route",
			yaml: "routes:\n  - name: a\n    allow:\n      user: [x]\n",
			want: []Problem{{"routes[0].allow.user", 4, `unknown key; did you mean "routes[0].allow.users"?`}},
		},
		{
			name: "secret_key is env only",
			yaml: "secret_key: abc\n",
			want: []Problem{{"secret_key", 1, `unknown key; did you mean "secret_key_file"?`}},
		},
		{
			name: "keys are case-sensitive",
			yaml: "Listen: :1\n",
			want: []Problem{{"Listen", 1, `unknown key; did you mean "listen"?`}},
		},
		{
			name: "duplicate key",
			yaml: "log:\n  level: info\n  level: debug\n",
			want: []Problem{{"log.level", 3, `duplicate key (first set on line 2)`}},
		},
		{
			name: "string for duration",
			yaml: "session:\n  idle_timeout: soon\n",
			want: []Problem{{"session.idle_timeout", 2, `must be a duration such as "90s" or "1h", got "soon"`}},
		},
		{
			name: "bare number for duration",
			yaml: "session:\n  max_lifetime: 3600\n",
			want: []Problem{{"session.max_lifetime", 2, `must be a duration such as "90s" or "1h", got "3600"`}},
		},
		{
			name: "string for int",
			yaml: "two_factor:\n  period: thirty\n",
			want: []Problem{{"two_factor.period", 2, `must be a whole number, got "thirty"`}},
		},
		{
			name: "float for int is not truncated",
			yaml: "two_factor:\n  digits: 6.5\n",
			want: []Problem{{"two_factor.digits", 2, `must be a whole number, got "6.5"`}},
		},
		{
			name: "negative for uint",
			yaml: "password:\n  argon2:\n    iterations: -1\n",
			want: []Problem{{"password.argon2.iterations", 3, `must be a whole number from 0 to 4294967295, got "-1"`}},
		},
		{
			name: "overflow uint8",
			yaml: "password:\n  argon2:\n    parallelism: 300\n",
			want: []Problem{{"password.argon2.parallelism", 3, `must be a whole number from 0 to 255, got "300"`}},
		},
		{
			name: "long values are shortened in messages",
			yaml: "two_factor:\n  period: " + strings.Repeat("x", 40) + "\n",
			want: []Problem{{"two_factor.period", 2, `must be a whole number, got "` + strings.Repeat("x", 32) + `"...`}},
		},
		{
			name: "merge of a scalar",
			yaml: "log:\n  <<: info\n",
			want: []Problem{{"log", 2, `<< must name a mapping or a list of mappings`}},
		},
		{
			name: "bool",
			yaml: "routes:\n  - preserve_host: maybe\n",
			want: []Problem{{"routes[0].preserve_host", 2, `must be true or false, got "maybe"`}},
		},
		{
			name: "list for string",
			yaml: "listen: [a, b]\n",
			want: []Problem{{"listen", 1, `must be a string, got a list`}},
		},
		{
			name: "scalar for list",
			yaml: "trusted_proxies: 10.0.0.1\n",
			want: []Problem{{"trusted_proxies", 1, `must be a list, got "10.0.0.1"`}},
		},
		{
			name: "scalar for mapping",
			yaml: "store: redis\n",
			want: []Problem{{"store", 1, `must be a mapping of keys, got "redis"`}},
		},
		{
			name: "mapping in a string list",
			yaml: "routes:\n  - allow:\n      groups:\n        - {a: b}\n",
			want: []Problem{{"routes[0].allow.groups[0]", 4, `must be a string, got a mapping`}},
		},
		{
			name: "document is a list",
			yaml: "- a\n- b\n",
			want: []Problem{{"", 1, `must be a mapping of keys, got a list`}},
		},
		{
			name: "non-scalar key",
			yaml: "log:\n  ? [a]\n  : b\n",
			want: []Problem{{"log", 2, `keys must be plain names, got a list`}},
		},
		{
			name: "two documents",
			yaml: "listen: :1\n---\nlisten: :2\n",
			want: []Problem{{"", 2, `the file must hold a single YAML document`}},
		},
		{
			name: "several problems at once",
			yaml: "listen: :1\nlistn: :2\nsession:\n  idle_timeout: x\nroutes:\n  - name: a\n    hots: b\n",
			want: []Problem{
				{"listn", 2, `unknown key; did you mean "listen"?`},
				{"session.idle_timeout", 4, `must be a duration such as "90s" or "1h", got "x"`},
				{"routes[0].hots", 7, `unknown key; did you mean "routes[0].host"?`},
			},
		},
		{
			name: "unknown key inside a merged mapping",
			yaml: "base: &b {policy: password, nope: 1}\nroutes:\n  - <<: *b\n    name: a\n",
			want: []Problem{
				{"base", 1, `unknown key`},
				{"routes[0].nope", 1, `unknown key; did you mean "routes[0].name"?`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes([]byte(tt.yaml), "t.yaml")
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *DecodeError", err)
			}
			if !reflect.DeepEqual([]Problem(de.Problems), tt.want) {
				t.Fatalf("problems =\n%#v\nwant\n%#v", de.Problems, tt.want)
			}
		})
	}
}

func TestDecodeErrorMessage(t *testing.T) {
	clearEnv(t)
	_, err := LoadBytes([]byte("routes:\n  - name: a\n\n\n\n\n\n\n\n\n\n    upstrem: http://x\n"), "authgate.yaml")
	want := `config: authgate.yaml: line 12: routes[0].upstrem: unknown key; did you mean "routes[0].upstream"?`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestLoadSyntaxError(t *testing.T) {
	// Regression: the parser's message came wrapped twice in the file's
	// name and said nothing of the cause.
	_, err := LoadBytes([]byte("listen: [\n"), "bad.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "config: bad.yaml: line 1: not valid YAML: ") || !strings.Contains(err.Error(), "never closed?") {
		t.Fatalf("err = %v", err)
	}
	// An unterminated quote is reported on the line it opens.
	_, err = LoadBytes([]byte("listen: \":8080\"\npublic_url: \"https://x\nroutes:\n  - name: a\n    upstream: http://127.0.0.1:1\n"), "q.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "config: q.yaml: line 2: not valid YAML: ") {
		t.Fatalf("unterminated quote: err = %v", err)
	}
}

func TestLoadAnchorsAndMerge(t *testing.T) {
	clearEnv(t)
	c, err := LoadBytes([]byte(`
x-common: &common
  policy: password
  allow: {groups: [admins]}
routes:
  - <<: *common
    name: a
    upstream: http://a
  - <<: [{policy: bypass, name: ignored}, *common]
    name: b
    upstream: http://b
`), "t.yaml")
	if err == nil {
		t.Fatalf("x-common must be an unknown key, got %+v", c)
	}
	c, err = LoadBytes([]byte(`
routes:
  - &first
    name: a
    upstream: http://a
    policy: password
    allow: {groups: [admins]}
  - <<: *first
    name: b
  - <<: [{policy: bypass, path_prefix: /x}, *first]
    name: c
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Routes[1]; got.Name != "b" || got.Upstream != "http://a" || got.Policy != "password" || !reflect.DeepEqual(got.Allow.Groups, []string{"admins"}) {
		t.Errorf("merged route = %+v", got)
	}
	// In a merge list the earlier mapping wins.
	if got := c.Routes[2]; got.Name != "c" || got.Policy != "bypass" || got.PathPrefix != "/x" || got.Upstream != "http://a" {
		t.Errorf("merge list route = %+v", got)
	}
	if l := c.Line("routes[1].name"); l != 9 {
		t.Errorf("line of routes[1].name = %d, want 9", l)
	}
}

func TestLoadAliasBombIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 {name: x}\n")
	// Each level merges the previous one ten times: 10^12 mappings if expanded.
	for i := 1; i <= 12; i++ {
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + "\n  <<: [")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + strconv.Itoa(i-1))
		}
		b.WriteString("]\n")
	}
	b.WriteString("routes:\n  - <<: *a12\n")
	start := time.Now()
	_, err := LoadBytes([]byte(b.String()), "bomb.yaml")
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("err = %v, want a too-large error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestLoadStopsAfterManyProblems(t *testing.T) {
	var b strings.Builder
	for i := range 500 {
		b.WriteString("k" + strconv.Itoa(i) + ": 1\n")
	}
	_, err := LoadBytes([]byte(b.String()), "t.yaml")
	var de *DecodeError
	if !errors.As(err, &de) || len(de.Problems) != maxProblems+1 {
		t.Fatalf("err = %v", err)
	}
	if last := de.Problems[maxProblems]; last.Msg != "too many problems, stopping" {
		t.Fatalf("last problem = %+v", last)
	}
}

func TestLoadMergeCycle(t *testing.T) {
	_, err := LoadBytes([]byte("routes:\n  - &r\n    name: a\n    <<: *r\n"), "t.yaml")
	if err == nil {
		t.Fatal("want an error for a mapping merged into itself")
	}
}

func TestLoadNullKeepsDefaults(t *testing.T) {
	clearEnv(t)
	c, err := LoadBytes([]byte("session:\nlisten: ~\ntrusted_proxies:\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8080" || c.Session.CookieName != "authgate_session" || c.TrustedProxies != nil {
		t.Fatalf("got %+v", c)
	}
}

func TestLoadFile(t *testing.T) {
	clearEnv(t)
	p := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(p, []byte("listen: :9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || c.Listen != ":9" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		yaml          string
		envKey, envPW string
		wantKey       string
		wantPW        string
		wantErr       error
	}{
		{name: "nothing", yaml: "", wantPW: ""},
		{name: "password in yaml", yaml: "store: {redis: {password: inline}}", wantPW: "inline"},
		{name: "password_file, newline trimmed", yaml: "store: {redis: {password_file: " + pwFile + "}}", wantPW: "from-file"},
		{name: "env beats password_file", yaml: "store: {redis: {password_file: " + pwFile + "}}", envPW: "from-env", wantPW: "from-env"},
		{name: "env beats yaml password", yaml: "store: {redis: {password: inline}}", envPW: "from-env", wantPW: "from-env"},
		{name: "env beats a missing password_file", yaml: "store: {redis: {password_file: /nonexistent/pw}}", envPW: "e", wantPW: "e"},
		{name: "secret key from env, trimmed", envKey: " abc\n", wantKey: "abc"},
		{name: "password and password_file both set", yaml: "store: {redis: {password: a, password_file: " + pwFile + "}}", wantErr: ErrSecretConflict},
		{name: "missing password_file", yaml: "store: {redis: {password_file: /nonexistent/pw}}", wantErr: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvSecretKey, tt.envKey)
			t.Setenv(EnvRedisPassword, tt.envPW)
			c, err := LoadBytes([]byte(tt.yaml), "t.yaml")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SecretKey != tt.wantKey || c.Store.Redis.Password != tt.wantPW {
				t.Fatalf("SecretKey=%q Password=%q, want %q %q", c.SecretKey, c.Store.Redis.Password, tt.wantKey, tt.wantPW)
			}
		})
	}
}

func TestPasswordFileMustBeRegular(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxSecretFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, big, "/dev/zero"} {
		if _, err := LoadBytes([]byte("store: {redis: {password_file: "+p+"}}"), "t.yaml"); err == nil {
			t.Errorf("password_file %s: want an error", p)
		}
	}
}

func TestLine(t *testing.T) {
	clearEnv(t)
	c, err := LoadBytes([]byte("listen: :1\nroutes:\n  - name: a\n    upstream: http://x\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]int{
		"listen":                1,
		"routes":                2,
		"routes[0]":             3,
		"routes[0].upstream":    4,
		"routes[0].policy":      3, // defaulted: falls back to the route's line
		"routes[0].allow.users": 3,
		"session.idle_timeout":  0,
	} {
		if got := c.Line(key); got != want {
			t.Errorf("Line(%q) = %d, want %d", key, got, want)
		}
	}
}

func FuzzLoadBytes(f *testing.F) {
	for _, s := range []string{
		"",
		"listen: :8080\n",
		"routes:\n  - name: a\n    upstream: http://x\n    allow: {users: [a]}\n",
		"a: &a {<<: *a}\n",
		"routes: [&r {<<: *r}]\n",
		"session: {idle_timeout: 1h, max_lifetime: 2h}\n",
		"trusted_proxies: [10.0.0.0/8, '::1', 'fe80::1%eth0']\n",
		"- a\n---\nb\n",
		"? [a]\n: b\n",
		"password: {argon2: {parallelism: 300}}\n",
	} {
		f.Add([]byte(s))
	}
	if data, err := os.ReadFile("../../configs/authgate.example.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadBytes(data, "fuzz.yaml")
		if err != nil {
			return
		}
		_ = c.Validate()
		_ = c.Warnings()
		_, _ = c.TrustedPrefixes()
	})
}

// The sentinels' password comes from the same places as the master's,
// independently of it.
func TestSentinelPasswordSources(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "spw")
	if err := os.WriteFile(pwFile, []byte("sentinel-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const base = "store: {redis: {master_name: m, password: data, "
	tests := []struct {
		name, yaml, env, want string
		wantErr               error
	}{
		{name: "inline", yaml: base + "sentinel_password: s}}", want: "s"},
		{name: "file, newline trimmed", yaml: base + "sentinel_password_file: " + pwFile + "}}", want: "sentinel-file"},
		{name: "env beats file", yaml: base + "sentinel_password_file: " + pwFile + "}}", env: "from-env", want: "from-env"},
		{name: "both set", yaml: base + "sentinel_password: s, sentinel_password_file: " + pwFile + "}}", wantErr: ErrSentinelSecretConflict},
		{name: "missing file", yaml: base + "sentinel_password_file: /nonexistent/spw}}", wantErr: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvRedisPassword, "")
			t.Setenv(EnvRedisSentinelPassword, tt.env)
			c, err := LoadBytes([]byte(tt.yaml), "t.yaml")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Store.Redis.SentinelPassword != tt.want || c.Store.Redis.Password != "data" {
				t.Fatalf("sentinel password %q, data password %q; want %q and %q", c.Store.Redis.SentinelPassword, c.Store.Redis.Password, tt.want, "data")
			}
		})
	}
}
