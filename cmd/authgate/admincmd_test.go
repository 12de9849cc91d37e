package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/users"
)

// seedAdminStore stores root (admin), alice (2FA, 3 recovery codes, two
// sessions, one with a hostile user agent), bob (no 2FA), carol (two
// passkeys, one named with a terminal escape), dave (an authenticator app
// and a security key) and an audit event whose target holds a terminal
// escape.
func seedAdminStore(t *testing.T, st *embedded.Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	users := []store.User{
		{Name: "root", Role: store.RoleAdmin},
		{Name: "alice", Role: store.RoleUser, TOTPSecret: []byte("sealed"), TOTPEnrolledAt: now.Add(-72 * time.Hour),
			TOTPLastUsedAt: now.Add(-time.Hour), RecoveryCodes: []string{"h1", "h2", "h3"}, RecoveryCodesAt: now.Add(-72 * time.Hour)},
		{Name: "bob", Role: store.RoleUser},
		{Name: "carol", Role: store.RoleUser, PasskeyUserID: []byte("handle-of-carol"), Passkeys: []store.Passkey{
			{ID: []byte("cred-1"), Name: "Phone", PublicKey: []byte("key-1"), Discoverable: true, CreatedAt: now.Add(-48 * time.Hour), LastUsedAt: now.Add(-time.Hour)},
			{ID: []byte("cred-2"), Name: "YubiKey\x1b]0;x\x07 5", PublicKey: []byte("key-2"), CreatedAt: now.Add(-24 * time.Hour)},
		}},
		{Name: "dave", Role: store.RoleUser, TOTPSecret: []byte("sealed"), TOTPEnrolledAt: now.Add(-72 * time.Hour), Passkeys: []store.Passkey{
			{ID: []byte("cred-3"), Name: "Backup key", PublicKey: []byte("key-3"), CreatedAt: now.Add(-24 * time.Hour)},
		}},
	}
	for _, u := range users {
		u.PasswordHash = "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
		u.CreatedAt, u.UpdatedAt = now, now
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for i, ua := range []string{"Firefox/140", "evil\x1b]0;owned\x07agent"} {
		err := st.PutSession(ctx, store.Session{
			IDHash: strings.Repeat(string(rune('a'+i)), 64), User: "alice", Stage: store.StageFull, TwoFactor: i == 0,
			CreatedAt: now.Add(time.Duration(i) * time.Minute), LastSeenAt: now, ExpiresAt: now.Add(time.Hour),
			IP: "192.0.2.7", UserAgent: ua,
		}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AppendAudit(ctx, store.AuditFailures, store.AuditEvent{Time: now.Add(-time.Hour), Action: "login_failed", Target: "x\x1b[31mred", IP: "198.51.100.9"}, 500); err != nil {
		t.Fatal(err)
	}
}

// TestAdminCommands runs the 2fa, sessions and audit commands in order on
// one embedded store, checking each one's output and its effect.
func TestAdminCommands(t *testing.T) {
	dir := shortTempDir(t)
	cfg := writeConfig(t, dir, testConfig{Extra: "public_url: \"https://panel.example.com\"\n"})
	ctx := context.Background()
	withStore(t, dir, func(st *embedded.Store) { seedAdminStore(t, st) })

	setting := func(t *testing.T, st *embedded.Store, key string) string {
		t.Helper()
		v, err := st.GetSetting(ctx, key)
		if err != nil {
			t.Fatalf("setting %s: %v", key, err)
		}
		return v
	}
	steps := []struct {
		name       string
		args       []string // --config is added
		wantCode   int
		wantStdout []string // regular expressions
		wantStderr []string // substrings
		notStdout  []string // substrings
		before     func(t *testing.T, st *embedded.Store)
		check      func(t *testing.T, st *embedded.Store)
	}{
		{
			name: "2fa status", args: []string{"2fa", "status"},
			wantStdout: []string{
				`(?m)^2FA mode: off \(two_factor.mode in the config file, until .*\); issuer: "panel.example.com" \(the default\)$`,
				`(?m)^NAME\s+ROLE\s+2FA\s+FACTORS\s+ENROLLED\s+LAST CODE\s+RECOVERY\s+SESSIONS$`,
				`(?m)^alice\s+user\s+enabled\s+app\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+3 left\s+2$`,
				`(?m)^bob\s+user\s+not set up\s+-\s+-\s+-\s+-\s+0$`,
				`(?m)^carol\s+user\s+enabled\s+2 keys\s+-\s+-\s+0 left\s+0$`,
				`(?m)^dave\s+user\s+enabled\s+app\+1 key\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+-\s+0 left\s+0$`,
				`(?m)^root\s+admin\s+not set up\s+-\s+-\s+-\s+-\s+0$`,
				`(?m)^5 user\(s\), 3 with 2FA enabled$`,
			},
		},
		{
			name: "2fa status of one user", args: []string{"2fa", "status", "alice"},
			wantStdout: []string{
				`(?m)^user:\s+alice$`, `(?m)^2FA:\s+enabled$`,
				`(?m)^enrolled:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`, `(?m)^last code used:\s+\d{4}-`,
				`(?m)^recovery codes left:\s+3$`, `(?m)^active sessions:\s+2$`, `(?m)^passkeys:\s+none$`,
			},
		},
		{
			name: "2fa status of a user with passkeys only", args: []string{"2fa", "status", "carol"},
			wantStdout: []string{
				`(?m)^2FA:\s+enabled$`, `(?m)^authenticator app:\s+not set up$`,
				`(?m)^passkey 1:\s+Phone\s+added \d{4}-\d\d-\d\d\s+last used \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+passkey$`,
				`(?m)^passkey 2:\s+YubiKey\?\]0;x\? 5\s+added \d{4}-\d\d-\d\d\s+last used never\s+security key$`,
				`(?m)^recovery codes left:\s+0$`,
			},
			notStdout: []string{"\x1b", "\x07", "enrolled", "last code", "cred-", "key-1", "handle-of"},
		},
		{
			name: "2fa status of a user with an app and a key", args: []string{"2fa", "status", "dave"},
			wantStdout: []string{
				`(?m)^enrolled:\s+\d{4}-`, `(?m)^last code used:\s+-$`,
				`(?m)^passkey 1:\s+Backup key\s+added \d{4}-\d\d-\d\d\s+last used never\s+security key$`,
			},
			notStdout: []string{"passkey 2", "authenticator app:"},
		},
		{name: "2fa status of a user not set up", args: []string{"2fa", "status", "bob"},
			wantStdout: []string{`(?m)^2FA:\s+not set up$`}, notStdout: []string{"recovery", "passkey"}},
		{name: "2fa status of an unknown user", args: []string{"2fa", "status", "nobody"}, wantCode: 1, wantStderr: []string{`no user "nobody"`}},
		{name: "2fa status of a bad name", args: []string{"2fa", "status", "a/b"}, wantCode: 1, wantStderr: []string{`user name "a/b"`}},
		{name: "2fa status of two users", args: []string{"2fa", "status", "alice", "bob"}, wantCode: 2, wantStderr: []string{"authgate 2fa status [USER]"}},
		{name: "2fa without command", args: []string{"2fa"}, wantCode: 2, wantStderr: []string{"status|disable|mode|issuer"}},
		{name: "unknown 2fa command", args: []string{"2fa", "enable", "alice"}, wantCode: 2, wantStderr: []string{`unknown 2fa command "enable"`}},
		{
			name: "sessions list", args: []string{"sessions", "list", "alice"},
			wantStdout: []string{
				`(?m)^ID\s+CREATED\s+LAST SEEN\s+IP\s+2FA\s+USER AGENT$`,
				`(?m)^aaaaaaaaaaaa\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+192\.0\.2\.7\s+yes\s+Firefox/140$`,
				`(?m)^bbbbbbbbbbbb\s+.*\s+no\s+evil\?\]0;owned\?agent$`,
			},
			notStdout: []string{"\x1b", "\x07", strings.Repeat("a", 13)},
		},
		{name: "sessions list without sessions", args: []string{"sessions", "list", "bob"}, wantStdout: []string{`^bob has no active sessions\n$`}},
		{name: "sessions list of an unknown user", args: []string{"sessions", "list", "nobody"}, wantCode: 1, wantStderr: []string{`no user "nobody"`}},
		{name: "sessions without command", args: []string{"sessions"}, wantCode: 2, wantStderr: []string{"list|revoke"}},
		{name: "sessions list without USER", args: []string{"sessions", "list"}, wantCode: 2, wantStderr: []string{"authgate sessions list USER"}},
		{
			name: "2fa disable with an unknown name changes nothing", args: []string{"2fa", "disable", "alice", "nobody", "ghost"},
			wantCode: 1, wantStderr: []string{`no user "nobody", "ghost"; nothing changed`},
			check: func(t *testing.T, st *embedded.Store) {
				if !getUser(t, st, "alice").HasTOTP() {
					t.Error("alice lost 2FA")
				}
				if ss, _ := st.ListUserSessions(ctx, "alice"); len(ss) != 2 {
					t.Errorf("alice has %d sessions, want 2", len(ss))
				}
			},
		},
		{name: "2fa disable without USER", args: []string{"2fa", "disable"}, wantCode: 2, wantStderr: []string{"authgate 2fa disable USER..."}},
		{
			name: "2fa disable", args: []string{"2fa", "disable", "alice", "--config", "", "bob", "carol"},
			before: func(t *testing.T, st *embedded.Store) { putSession(t, st, "bob", strings.Repeat("c", 64)) },
			wantStdout: []string{
				`(?m)^2FA of alice disabled \(authenticator app, passkeys and recovery codes removed\); their sessions were ended$`,
				`(?m)^bob had no 2FA set up; their sessions were ended$`,
				`(?m)^2FA of carol disabled \(authenticator app, passkeys and recovery codes removed\); their sessions were ended$`,
			},
			check: func(t *testing.T, st *embedded.Store) {
				u := getUser(t, st, "alice")
				if u.HasTOTP() || len(u.RecoveryCodes) != 0 || !u.TOTPEnrolledAt.IsZero() {
					t.Errorf("alice keeps 2FA state: %+v", u)
				}
				if c := getUser(t, st, "carol"); c.Passkeys != nil || c.HasSecondFactor() {
					t.Errorf("carol keeps passkeys: %+v", c.Passkeys)
				}
				if d := getUser(t, st, "dave"); !d.HasTOTP() || len(d.Passkeys) != 1 {
					t.Errorf("dave, not named, changed: %+v", d)
				}
				for _, name := range []string{"alice", "bob"} {
					if ss, _ := st.ListUserSessions(ctx, name); len(ss) != 0 {
						t.Errorf("%s has %d sessions, want 0", name, len(ss))
					}
				}
			},
		},
		{
			name: "2fa mode", args: []string{"2fa", "mode", "required"},
			wantStdout: []string{`(?m)^2FA mode set to required`},
			check: func(t *testing.T, st *embedded.Store) {
				if v := setting(t, st, settings.KeyMode); v != settings.ModeRequired {
					t.Errorf("stored mode %q", v)
				}
			},
		},
		{name: "2fa mode unknown", args: []string{"2fa", "mode", "sometimes"}, wantCode: 2, wantStderr: []string{`unknown 2FA mode "sometimes"`}},
		{name: "2fa mode missing", args: []string{"2fa", "mode"}, wantCode: 2, wantStderr: []string{"off|on|required"}},
		{
			name: "2fa issuer", args: []string{"2fa", "issuer", "Acme Panel"},
			wantStdout: []string{`(?m)^issuer set to "Acme Panel"; it applies to new enrolments`},
			check: func(t *testing.T, st *embedded.Store) {
				if v := setting(t, st, settings.KeyIssuer); v != "Acme Panel" {
					t.Errorf("stored issuer %q", v)
				}
			},
		},
		{
			name: "2fa issuer invalid", args: []string{"2fa", "issuer", "Acme:Panel"}, wantCode: 1,
			wantStderr: []string{"issuer must not contain control characters or ':'"},
			check: func(t *testing.T, st *embedded.Store) {
				if v := setting(t, st, settings.KeyIssuer); v != "Acme Panel" {
					t.Errorf("stored issuer %q after a refused change", v)
				}
			},
		},
		{
			name: "2fa issuer reset", args: []string{"2fa", "issuer", ""},
			wantStdout: []string{`(?m)^issuer set to "panel.example.com" \(the default\)`},
			check: func(t *testing.T, st *embedded.Store) {
				if v := setting(t, st, settings.KeyIssuer); v != "" {
					t.Errorf("stored issuer %q", v)
				}
			},
		},
		{
			name: "sessions revoke", args: []string{"sessions", "revoke", "bob"},
			before: func(t *testing.T, st *embedded.Store) {
				putSession(t, st, "bob", strings.Repeat("d", 64))
				putSession(t, st, "bob", strings.Repeat("e", 64))
				putSession(t, st, "root", strings.Repeat("f", 64))
			},
			wantStdout: []string{`^ended 2 session\(s\) of bob\n$`},
			check: func(t *testing.T, st *embedded.Store) {
				if ss, _ := st.ListUserSessions(ctx, "bob"); len(ss) != 0 {
					t.Errorf("bob has %d sessions", len(ss))
				}
				if ss, _ := st.ListUserSessions(ctx, "root"); len(ss) != 1 {
					t.Errorf("root has %d sessions, want 1", len(ss))
				}
			},
		},
		{name: "sessions revoke of an unknown user", args: []string{"sessions", "revoke", "nobody"}, wantCode: 1, wantStderr: []string{`no user "nobody"`}},
		{
			name: "audit", args: []string{"audit"},
			wantStdout: []string{
				`^TIME\s+ACTOR\s+ACTION\s+TARGET\s+IP\s+DETAIL\n` +
					`\S+ \S+\s+cli\s+sessions_revoked\s+bob\s+-\s+2 session\(s\) revoked\n` +
					`\S+ \S+\s+cli\s+setting_changed\s+two_factor\.issuer\s+-\s+two_factor\.issuer=\(default: panel\.example\.com\) \(was "Acme Panel"\)\n` +
					`\S+ \S+\s+cli\s+setting_changed\s+two_factor\.issuer\s+-\s+two_factor\.issuer=Acme Panel \(was ""\)\n` +
					`\S+ \S+\s+cli\s+setting_changed\s+two_factor\.mode\s+-\s+two_factor\.mode=required \(was "off"\)\n` +
					`\S+ \S+\s+cli\s+totp_disabled\s+carol\s+-\s+2 passkeys removed; 0 session\(s\) revoked\n` +
					`\S+ \S+\s+cli\s+totp_disabled\s+bob\s+-\s+2FA was not set up; 1 session\(s\) revoked\n` +
					`\S+ \S+\s+cli\s+totp_disabled\s+alice\s+-\s+authenticator app removed; 2 session\(s\) revoked\n$`,
			},
			// Failed sign-ins are kept apart: --failures or --all.
			notStdout: []string{"\x1b", "login_failed"},
		},
		{
			name: "audit --failures", args: []string{"audit", "--failures"},
			wantStdout: []string{`^TIME\s+ACTOR\s+ACTION\s+TARGET\s+IP\s+DETAIL\n` +
				`\S+ \S+\s+-\s+login_failed\s+x\?\[31mred\s+198\.51\.100\.9\s+-\n$`},
			notStdout: []string{"\x1b"},
		},
		{
			name: "audit --all", args: []string{"audit", "--all"},
			wantStdout: []string{`^TIME\s+ACTOR\s+ACTION\s+TARGET\s+IP\s+DETAIL\n` +
				`\S+ \S+\s+cli\s+sessions_revoked\s+bob\s+-\s+2 session\(s\) revoked\n` +
				`(?:.*\n){6}` +
				`\S+ \S+\s+-\s+login_failed\s+x\?\[31mred\s+198\.51\.100\.9\s+-\n$`},
		},
		{name: "audit --failures --all", args: []string{"audit", "--failures", "--all"}, wantCode: 2, wantStderr: []string{"exclude each other"}},
		{name: "audit --limit", args: []string{"audit", "--limit", "2"}, wantStdout: []string{`^TIME.*\n.*sessions_revoked.*\n.*two_factor\.issuer=\(default.*\n$`}},
		{name: "audit --since duration", args: []string{"audit", "--all", "--since", "30m"}, wantStdout: []string{`totp_disabled`}, notStdout: []string{"login_failed"}},
		{name: "audit --since time", args: []string{"audit", "--all", "--since", time.Now().Add(-2 * time.Hour).Format(time.RFC3339)},
			wantStdout: []string{`login_failed`}},
		{name: "audit --since the future", args: []string{"audit", "--since", "2999-01-01T00:00:00Z"}, wantStdout: []string{`^TIME\s+ACTOR\s+ACTION\s+TARGET\s+IP\s+DETAIL\n$`}},
		{name: "audit --since negative", args: []string{"audit", "--since", "-5m"}, wantCode: 2, wantStderr: []string{"must be positive"}},
		{name: "audit --since garbage", args: []string{"audit", "--since", "yesterday"}, wantCode: 2, wantStderr: []string{"RFC 3339"}},
		{name: "audit --limit negative", args: []string{"audit", "--limit", "-1"}, wantCode: 2, wantStderr: []string{"--limit"}},
		{name: "audit argument", args: []string{"audit", "alice"}, wantCode: 2, wantStderr: []string{`takes no argument "alice"`}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				withStore(t, dir, func(st *embedded.Store) { s.before(t, st) })
			}
			args := append([]string(nil), s.args...)
			for i := range args {
				if args[i] == "--config" && i+1 < len(args) && args[i+1] == "" {
					args[i+1] = cfg // flags between positional arguments
				}
			}
			if !strings.Contains(strings.Join(args, " "), "--config") {
				args = append(args, "--config", cfg)
			}
			r := runCLI(t, "", args...)
			if r.code != s.wantCode {
				t.Fatalf("want exit %d, got %v", s.wantCode, r)
			}
			for _, re := range s.wantStdout {
				if !regexp.MustCompile(re).MatchString(r.stdout) {
					t.Errorf("stdout does not match %s: %v", re, r)
				}
			}
			for _, w := range s.notStdout {
				if strings.Contains(r.stdout, w) {
					t.Errorf("stdout contains %q: %v", w, r)
				}
			}
			for _, w := range s.wantStderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %v", w, r)
				}
			}
			if s.wantCode != 0 && r.stdout != "" {
				t.Errorf("a failed command printed to stdout: %v", r)
			}
			if s.check != nil {
				withStore(t, dir, func(st *embedded.Store) { s.check(t, st) })
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"90m", now.Add(-90 * time.Minute), false},
		{" 24h ", now.Add(-24 * time.Hour), false},
		{"2026-03-13T08:00:00Z", time.Date(2026, 3, 13, 8, 0, 0, 0, time.UTC), false},
		{"2026-03-13T08:00:00+02:00", time.Date(2026, 3, 13, 6, 0, 0, 0, time.UTC), false},
		{"0s", time.Time{}, true},
		{"-1h", time.Time{}, true},
		{"2026-03-13", time.Time{}, true},
		{"last week", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSince(tt.in, func() time.Time { return now })
			if tt.bad {
				if err == nil {
					t.Fatalf("parseSince(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "-"},
		{"Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (X11; Linux x86_64)"},
		{"a\tb\nc\rd", "a?b?c?d"},
		{"\x1b[2J\x9bX", "?[2J?X"},
		{"ok \xff\xfe", "ok ??"},
		{"über\u202edoc", "über?doc"},
		{"line\u2028sep", "line?sep"},
	}
	for _, tt := range tests {
		if got := cell(tt.in); got != tt.want {
			t.Errorf("cell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// userError tells a rejected argument by its message alone, found with
// errors.As (it used to cut the package prefix out of the error text).
func TestUserError(t *testing.T) {
	invalid := &users.InvalidError{Field: "role", Message: `role "root": must be "admin" or "user"`}
	unknown := &users.UnknownUsersError{Names: []string{"ghost"}}
	tests := []struct {
		name string
		err  error
		user string
		want string
	}{
		{"invalid", invalid, "", invalid.Message},
		{"invalid wrapped", fmt.Errorf("set role of user %q: %w", "bob", invalid), "bob", invalid.Message},
		{"not found", fmt.Errorf("x: %w", store.ErrNotFound), "bob", `no user "bob"`},
		{"unknown users name themselves", fmt.Errorf("disable 2FA: %w", unknown), "", `disable 2FA: no user "ghost"; nothing changed`},
		{"other", errors.New("store down"), "bob", "store down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := userError(tt.err, tt.user).Error(); got != tt.want {
				t.Errorf("userError = %q, want %q", got, tt.want)
			}
		})
	}
	if err := checkNames([]string{"ok", "a/b"}); err == nil || strings.Contains(err.Error(), users.ErrInvalid.Error()) || !strings.Contains(err.Error(), `user name "a/b"`) {
		t.Errorf("checkNames = %v", err)
	}
}
