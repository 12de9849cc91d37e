package users

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users/userstest"
)

func TestDisableTwoFactor(t *testing.T) { eachBackend(t, testDisableTwoFactor) }

func testDisableTwoFactor(t *testing.T, e *env) {
	st, c, s := e.st, e.c, e.svc
	addUser(t, st, c, "root", store.RoleAdmin, true)
	addUser(t, st, c, "alice", store.RoleUser, true)
	addUser(t, st, c, "bob", store.RoleUser, true)
	addUser(t, st, c, "carol", store.RoleUser, false)
	// dave has only passkeys (and recovery codes), erin an app and a
	// passkey, frank one passkey and no recovery codes.
	addUser(t, st, c, "dave", store.RoleUser, false)
	addPasskeys(t, st, c, "dave", 2)
	if _, err := st.UpdateUser(context.Background(), "dave", func(u *store.User) error {
		u.RecoveryCodes, u.RecoveryCodesAt = []string{"hash1"}, c.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	addUser(t, st, c, "erin", store.RoleUser, true)
	addPasskeys(t, st, c, "erin", 1)
	addUser(t, st, c, "frank", store.RoleUser, false)
	addPasskeys(t, st, c, "frank", 1)
	for _, id := range []string{"a1", "a2"} {
		putSession(t, st, c, id, "alice")
	}
	putSession(t, st, c, "b1", "bob")
	putSession(t, st, c, "c1", "carol")
	putSession(t, st, c, "r1", "root")
	putSession(t, st, c, "d1", "dave")
	putSession(t, st, c, "f1", "frank")
	ctx := audit.WithActor(context.Background(), "root", "203.0.113.7")

	// An unknown name anywhere in the list changes nothing at all.
	for _, names := range [][]string{{"alice", "nobody"}, {"ghost", "bob"}, {"alice", "bad name"}, {"dave", "ghost"}} {
		had, err := s.DisableTwoFactor(ctx, names)
		if err == nil || had != nil {
			t.Fatalf("DisableTwoFactor(%v) = %v, %v; want an error", names, had, err)
		}
		if strings.Contains(strings.Join(names, ","), "bad name") {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("DisableTwoFactor(%v) = %v, want ErrInvalid", names, err)
			}
		} else if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "nothing changed") {
			t.Errorf("DisableTwoFactor(%v) = %v, want store.ErrNotFound saying nothing changed", names, err)
		} else if ue, ok := errors.AsType[*UnknownUsersError](err); !ok || len(ue.Names) != 1 || ue.Names[0] != names[0] && ue.Names[0] != names[1] {
			t.Errorf("DisableTwoFactor(%v) = %#v, want an UnknownUsersError naming the unknown user", names, err)
		}
		if !getUser(t, st, "alice").HasTOTP() || !getUser(t, st, "bob").HasTOTP() || len(getUser(t, st, "dave").Passkeys) != 2 {
			t.Fatal("a refused DisableTwoFactor removed a secret or a passkey")
		}
		if sessionCount(t, st, "alice") != 2 || sessionCount(t, st, "bob") != 1 || sessionCount(t, st, "dave") != 1 {
			t.Fatal("a refused DisableTwoFactor revoked sessions")
		}
	}
	if _, err := s.DisableTwoFactor(ctx, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("DisableTwoFactor(nil) = %v, want ErrInvalid", err)
	}
	if got := auditSummary(t, st); len(got) != 0 {
		t.Fatalf("refusals were audited as changes: %+v", got)
	}

	c.Advance(time.Minute)
	had, err := s.DisableTwoFactor(ctx, []string{"alice", "bob", "carol", "alice", "dave", "erin"})
	if err != nil {
		t.Fatalf("DisableTwoFactor: %v", err)
	}
	if want := []string{"alice", "bob", "dave", "erin"}; !reflect.DeepEqual(had, want) {
		t.Errorf("had 2FA = %v, want %v", had, want)
	}
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin"} {
		u := getUser(t, st, name)
		if u.HasTOTP() || len(u.RecoveryCodes) != 0 || !u.TOTPEnrolledAt.IsZero() || !u.TOTPLastUsedAt.IsZero() || !u.RecoveryCodesAt.IsZero() ||
			u.Passkeys != nil || u.HasSecondFactor() {
			t.Errorf("%s still has 2FA state: %+v", name, u)
		}
		if u.PasswordHash != argonHash || u.Role != store.RoleUser {
			t.Errorf("%s: password or role changed", name)
		}
		if n := sessionCount(t, st, name); n != 0 {
			t.Errorf("%s has %d sessions, want 0", name, n)
		}
	}
	if u := getUser(t, st, "alice"); !u.UpdatedAt.Equal(c.Now()) {
		t.Errorf("UpdatedAt = %v, want %v", u.UpdatedAt, c.Now())
	}
	// The passkey user handle names the account, not a key: it stays,
	// so passkeys registered later name the same account.
	for _, name := range []string{"dave", "erin"} {
		if u := getUser(t, st, name); !reflect.DeepEqual(u.PasskeyUserID, userstest.PasskeyUserID(name)) {
			t.Errorf("%s's passkey user handle = %q, want it kept", name, u.PasskeyUserID)
		}
	}
	if !getUser(t, st, "root").HasTOTP() || sessionCount(t, st, "root") != 1 {
		t.Error("a user not named was changed")
	}
	if u := getUser(t, st, "frank"); len(u.Passkeys) != 1 || sessionCount(t, st, "frank") != 1 {
		t.Error("a user not named lost a passkey or a session")
	}
	evs := auditEvents(t, st)
	want := []ev{
		{"root", audit.TOTPDisabled, "alice", "authenticator app removed; 2 session(s) revoked"},
		{"root", audit.TOTPDisabled, "bob", "authenticator app removed; 1 session(s) revoked"},
		{"root", audit.TOTPDisabled, "carol", "2FA was not set up; 1 session(s) revoked"},
		{"root", audit.TOTPDisabled, "dave", "2 passkeys removed; 1 session(s) revoked"},
		{"root", audit.TOTPDisabled, "erin", "authenticator app and 1 passkey removed; 0 session(s) revoked"},
	}
	if got := auditSummary(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("audit = %+v, want %+v", got, want)
	}
	for _, e := range evs {
		if e.IP != "203.0.113.7" || !e.Time.Equal(c.Now()) {
			t.Errorf("event %+v: want IP 203.0.113.7 at %v", e, c.Now())
		}
	}
}

func TestResetPassword(t *testing.T) { eachBackend(t, testResetPassword) }

func testResetPassword(t *testing.T, e *env) {
	ctx := context.Background()
	st, c, s := e.st, e.c, e.svc
	bc, _ := bcryptHashes(t)
	addUser(t, st, c, "alice", store.RoleUser, true)
	addUser(t, st, c, "bob", store.RoleUser, false)
	putSession(t, st, c, "a1", "alice")
	putSession(t, st, c, "b1", "bob")

	if err := s.ResetPassword(ctx, "nobody", bc); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ResetPassword unknown = %v, want store.ErrNotFound", err)
	}
	if err := s.ResetPassword(ctx, "alice", "temporary-plaintext"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ResetPassword plaintext = %v, want ErrInvalid", err)
	}
	if u := getUser(t, st, "alice"); u.PasswordHash != argonHash || u.MustChangePassword || sessionCount(t, st, "alice") != 1 {
		t.Fatal("a refused reset changed alice")
	}

	c.Advance(time.Minute)
	if err := s.ResetPassword(ctx, "alice", bc); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	u := getUser(t, st, "alice")
	if u.PasswordHash != bc || !u.MustChangePassword || !u.UpdatedAt.Equal(c.Now()) {
		t.Errorf("after reset: hash replaced=%v must_change=%v updated=%v", u.PasswordHash == bc, u.MustChangePassword, u.UpdatedAt)
	}
	if !u.HasTOTP() {
		t.Error("a password reset removed 2FA")
	}
	if n := sessionCount(t, st, "alice"); n != 0 {
		t.Errorf("alice has %d sessions after reset, want 0", n)
	}
	if n := sessionCount(t, st, "bob"); n != 1 {
		t.Errorf("bob has %d sessions, want 1 (untouched)", n)
	}
	want := []ev{{"cli", audit.PasswordReset, "alice", "1 session(s) revoked"}}
	if got := auditSummary(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("audit = %+v, want %+v", got, want)
	}
	// The user's own change clears the flag again.
	if err := s.SetPassword(ctx, "alice", argonHash); err != nil {
		t.Fatal(err)
	}
	if getUser(t, st, "alice").MustChangePassword {
		t.Error("SetPassword did not clear MustChangePassword")
	}
}

func TestSetRoleAndLastAdmin(t *testing.T) { eachBackend(t, testSetRoleAndLastAdmin) }

func testSetRoleAndLastAdmin(t *testing.T, e *env) {
	ctx := audit.WithActor(context.Background(), "root", "198.51.100.1")
	st, c, s := e.st, e.c, e.svc
	addUser(t, st, c, "root", store.RoleAdmin, false)
	addUser(t, st, c, "alice", store.RoleUser, false)
	role := func(name string) string { return getUser(t, st, name).Role }

	// The only admin can be neither demoted nor deleted.
	if err := s.SetRole(ctx, "root", store.RoleUser); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("demote last admin = %v, want ErrLastAdmin", err)
	}
	if err := s.Delete(ctx, "root"); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("delete last admin = %v, want ErrLastAdmin", err)
	}
	if role("root") != store.RoleAdmin {
		t.Fatal("refused demotion changed the role")
	}

	for _, tt := range []struct {
		name, user, role string
		want             error
	}{
		{"unknown role", "alice", "superuser", ErrInvalid},
		{"empty role", "alice", "", ErrInvalid},
		{"bad name", "al ice", store.RoleAdmin, ErrInvalid},
		{"unknown user", "nobody", store.RoleAdmin, store.ErrNotFound},
	} {
		if err := s.SetRole(ctx, tt.user, tt.role); !errors.Is(err, tt.want) {
			t.Errorf("%s: SetRole = %v, want %v", tt.name, err, tt.want)
		}
	}
	if got := auditSummary(t, st); len(got) != 0 {
		t.Fatalf("refusals were audited: %+v", got)
	}

	if err := s.SetRole(ctx, "alice", store.RoleAdmin); err != nil {
		t.Fatalf("promote alice: %v", err)
	}
	if err := s.SetRole(ctx, "alice", store.RoleAdmin); err != nil {
		t.Fatalf("promote alice again: %v", err) // no change, no event
	}
	if err := s.SetRole(ctx, "root", store.RoleUser); err != nil {
		t.Fatalf("demote root with alice admin: %v", err)
	}
	if role("root") != store.RoleUser || role("alice") != store.RoleAdmin {
		t.Fatalf("roles root=%s alice=%s", role("root"), role("alice"))
	}
	// Now alice is the last admin.
	if err := s.SetRole(ctx, "alice", store.RoleUser); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("demote alice = %v, want ErrLastAdmin", err)
	}
	if err := s.Delete(ctx, "alice"); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("delete alice = %v, want ErrLastAdmin", err)
	}
	if _, err := st.GetUser(context.Background(), "alice"); err != nil {
		t.Fatalf("alice after refused delete: %v", err)
	}
	// Deleting an admin is fine while another remains.
	addUser(t, st, c, "zed", store.RoleAdmin, false)
	if err := s.Delete(ctx, "alice"); err != nil {
		t.Errorf("delete alice with zed admin: %v", err)
	}
	want := []ev{
		{"root", audit.RoleChanged, "alice", "role=admin (was user), 0 session(s) revoked"},
		{"root", audit.RoleChanged, "root", "role=user (was admin), 0 session(s) revoked"},
		{"root", audit.UserDeleted, "alice", "0 session(s) revoked"},
	}
	if got := auditSummary(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("audit = %+v, want %+v", got, want)
	}
}

// Two admins demoting each other at the same time never leave the
// gateway without an admin.
func TestSetRoleConcurrentDemotions(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		addUser(t, e.st, e.c, "a", store.RoleAdmin, false)
		addUser(t, e.st, e.c, "b", store.RoleAdmin, false)
		for i := range 20 {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for j, name := range []string{"a", "b"} {
				wg.Go(func() { errs[j] = e.svc.SetRole(ctx, name, store.RoleUser) })
			}
			wg.Wait()
			admins := 0
			for _, name := range []string{"a", "b"} {
				if getUser(t, e.st, name).Role == store.RoleAdmin {
					admins++
				}
			}
			for _, err := range errs {
				if err != nil && !errors.Is(err, ErrLastAdmin) {
					t.Fatalf("round %d: %v", i, err)
				}
			}
			if admins == 0 {
				t.Fatalf("round %d: no admin left (errors %v)", i, errs)
			}
			// Restore both for the next round.
			for _, name := range []string{"a", "b"} {
				if err := e.svc.SetRole(ctx, name, store.RoleAdmin); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

func TestSessionsAndRevoke(t *testing.T) { eachBackend(t, testSessionsAndRevoke) }

func testSessionsAndRevoke(t *testing.T, e *env) {
	ctx := context.Background()
	st, c, s := e.st, e.c, e.svc
	addUser(t, st, c, "alice", store.RoleUser, true)
	addUser(t, st, c, "bob", store.RoleUser, false)
	first := c.Now()
	older := store.Session{
		IDHash: strings.Repeat("ab", 32), User: "alice", Stage: store.StageFull, TwoFactor: true,
		CreatedAt: first, LastSeenAt: first.Add(5 * time.Minute), ExpiresAt: first.Add(time.Hour),
		IP: "192.0.2.10", UserAgent: "Firefox/140",
	}
	newer := store.Session{
		IDHash: strings.Repeat("cd", 32), User: "alice", Stage: store.StageFull,
		CreatedAt: first.Add(time.Minute), LastSeenAt: first.Add(time.Minute), ExpiresAt: first.Add(time.Hour),
		IP: "192.0.2.11", UserAgent: "curl/8",
	}
	for _, se := range []store.Session{newer, older} {
		if err := st.PutSession(ctx, se, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	putSession(t, st, c, "bob-session", "bob")

	got, err := s.Sessions(ctx, "alice")
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	want := []SessionInfo{
		{ID: "abababababab", CreatedAt: older.CreatedAt, LastSeenAt: older.LastSeenAt, IP: "192.0.2.10", UserAgent: "Firefox/140", TwoFactor: true},
		{ID: "cdcdcdcdcdcd", CreatedAt: newer.CreatedAt, LastSeenAt: newer.LastSeenAt, IP: "192.0.2.11", UserAgent: "curl/8"},
	}
	if len(got) != len(want) {
		t.Fatalf("Sessions = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || !g.CreatedAt.Equal(w.CreatedAt) || !g.LastSeenAt.Equal(w.LastSeenAt) ||
			g.IP != w.IP || g.UserAgent != w.UserAgent || g.TwoFactor != w.TwoFactor {
			t.Errorf("session %d = %+v, want %+v", i, g, w)
		}
	}
	if none, err := s.Sessions(ctx, "carol"); !errors.Is(err, store.ErrNotFound) || none != nil {
		t.Errorf("Sessions unknown = %v, %v; want store.ErrNotFound", none, err)
	}
	if _, err := s.Sessions(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Sessions empty name = %v, want ErrInvalid", err)
	}

	if _, err := s.RevokeSessions(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeSessions unknown = %v, want store.ErrNotFound", err)
	}
	n, err := s.RevokeSessions(ctx, "alice")
	if err != nil || n != 2 {
		t.Fatalf("RevokeSessions = %d, %v; want 2", n, err)
	}
	if left, err := s.Sessions(ctx, "alice"); err != nil || len(left) != 0 || left == nil {
		t.Errorf("Sessions after revoke = %#v, %v; want empty", left, err)
	}
	if sessionCount(t, st, "bob") != 1 {
		t.Error("bob's session was revoked too")
	}
	if n, err := s.RevokeSessions(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("second RevokeSessions = %d, %v", n, err)
	}
	wantEv := []ev{
		{"cli", audit.SessionsRevoked, "alice", "2 session(s) revoked"},
		{"cli", audit.SessionsRevoked, "alice", "0 session(s) revoked"},
	}
	if got := auditSummary(t, st); !reflect.DeepEqual(got, wantEv) {
		t.Errorf("audit = %+v, want %+v", got, wantEv)
	}
}

func TestSettings(t *testing.T) { eachBackend(t, testSettings) }

func testSettings(t *testing.T, e *env) {
	ctx := audit.WithActor(context.Background(), "root", "")
	s := e.svc
	check := func(mode, issuer string) {
		t.Helper()
		got, err := s.Settings(ctx)
		if err != nil {
			t.Fatalf("Settings: %v", err)
		}
		// Every check follows a SetMode: the mode comes from the store.
		if want := (SettingsInfo{Mode: mode, ModeSource: ModeFromSettings, Issuer: issuer, DefaultIssuer: testDefaultIssuer}); got != want {
			t.Errorf("Settings = %+v, want %+v", got, want)
		}
		// Stored for every instance: a fresh source on the store agrees.
		v, err := settings.New(e.st, settings.Values{Mode: settings.ModeOff}, 0, e.c.Now).Current(context.Background())
		if err != nil || v.Mode != mode || v.Issuer != issuer {
			t.Errorf("another instance sees %+v, %v; want mode %q issuer %q", v, err, mode, issuer)
		}
	}
	got, err := s.Settings(ctx)
	if err != nil || got != (SettingsInfo{Mode: settings.ModeOn, ModeSource: ModeFromFile, DefaultIssuer: testDefaultIssuer}) {
		t.Fatalf("initial Settings = %+v, %v", got, err)
	}

	if err := s.SetMode(ctx, settings.ModeRequired); err != nil {
		t.Fatalf("SetMode: %v", err)
	}
	check(settings.ModeRequired, "")
	for _, bad := range []string{"", "Required", "sometimes"} {
		if err := s.SetMode(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetMode(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := s.SetIssuer(ctx, "Acme Panel"); err != nil {
		t.Fatalf("SetIssuer: %v", err)
	}
	check(settings.ModeRequired, "Acme Panel")
	for _, bad := range []string{"a:b", "tab\there", strings.Repeat("x", 65)} {
		err := s.SetIssuer(ctx, bad)
		// The settings package's refusal, told as this package's own.
		ie, ok := errors.AsType[*InvalidError](err)
		if !ok || !errors.Is(err, ErrInvalid) || ie.Field != "issuer" || !strings.HasPrefix(ie.Message, "issuer ") {
			t.Errorf("SetIssuer(%q) = %#v, want an InvalidError about the issuer", bad, err)
		}
	}
	check(settings.ModeRequired, "Acme Panel")
	if err := s.SetIssuer(ctx, ""); err != nil {
		t.Fatalf("SetIssuer reset: %v", err)
	}
	if err := s.SetMode(ctx, settings.ModeOff); err != nil {
		t.Fatal(err)
	}
	check(settings.ModeOff, "")

	want := []ev{
		{"root", audit.SettingChanged, settings.KeyMode, `two_factor.mode=required (was "on")`},
		{"root", audit.SettingChanged, settings.KeyIssuer, `two_factor.issuer=Acme Panel (was "")`},
		{"root", audit.SettingChanged, settings.KeyIssuer, `two_factor.issuer=(default: gw.example) (was "Acme Panel")`},
		{"root", audit.SettingChanged, settings.KeyMode, `two_factor.mode=off (was "required")`},
	}
	if got := auditSummary(t, e.st); !reflect.DeepEqual(got, want) {
		t.Errorf("audit = %+v\nwant %+v", got, want)
	}
}

func TestAudit(t *testing.T) { eachBackend(t, testAudit) }

func testAudit(t *testing.T, e *env) {
	ctx := context.Background()
	start := e.c.Now()
	for _, name := range []string{"u1", "u2", "u3", "u4"} {
		if err := e.svc.Add(ctx, name, argonHash, store.RoleUser, nil); err != nil {
			t.Fatal(err)
		}
		e.c.Advance(time.Minute)
	}
	targets := func(evs []store.AuditEvent) []string {
		out := []string{}
		for _, ev := range evs {
			out = append(out, ev.Target)
		}
		return out
	}
	tests := []struct {
		name  string
		since time.Time
		limit int
		want  []string
	}{
		{"all", time.Time{}, 0, []string{"u4", "u3", "u2", "u1"}},
		{"limit", time.Time{}, 2, []string{"u4", "u3"}},
		{"limit above keep", time.Time{}, 100000, []string{"u4", "u3", "u2", "u1"}},
		{"since is exclusive", start.Add(time.Minute), 0, []string{"u4", "u3"}},
		{"since and limit", start.Add(30 * time.Second), 1, []string{"u4"}},
		{"since before all", start.Add(-time.Hour), 0, []string{"u4", "u3", "u2", "u1"}},
		{"since after all", start.Add(time.Hour), 0, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := e.svc.Audit(ctx, AuditChanges, tt.since, tt.limit)
			if err != nil {
				t.Fatalf("Audit: %v", err)
			}
			if got := targets(evs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Audit targets = %v, want %v", got, tt.want)
			}
		})
	}
	evs, _ := e.svc.Audit(ctx, "", time.Time{}, 1)
	if len(evs) != 1 || evs[0].Action != audit.UserAdded || evs[0].Actor != audit.ActorCLI || !evs[0].Time.Equal(start.Add(3*time.Minute)) {
		t.Errorf("newest event = %+v", evs)
	}
}

func TestAuditViews(t *testing.T) { eachBackend(t, testAuditViews) }

// testAuditViews: changes by default, failures apart, both merged by
// time; the since and limit rules hold across both trails.
func testAuditViews(t *testing.T, e *env) {
	ctx := context.Background()
	rec := audit.New(e.st, zerolog.Nop(), e.c.Now)
	start := e.c.Now()
	for i, a := range []string{audit.UserAdded, audit.LoginFailed, audit.Login, audit.BanStarted, audit.LoginFailed, audit.RoleChanged} {
		rec.Record(ctx, store.AuditEvent{Action: a, Target: fmt.Sprintf("%s%d", a, i)})
		e.c.Advance(time.Minute)
	}
	targets := func(evs []store.AuditEvent) string {
		var out []string
		for _, ev := range evs {
			out = append(out, ev.Target)
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		view  AuditView
		since time.Time
		limit int
		want  string
	}{
		{"", time.Time{}, 0, "role_changed5 login2 user_added0"},
		{AuditChanges, time.Time{}, 2, "role_changed5 login2"},
		{AuditFailures, time.Time{}, 0, "login_failed4 ban_started3 login_failed1"},
		{AuditAll, time.Time{}, 0, "role_changed5 login_failed4 ban_started3 login2 login_failed1 user_added0"},
		{AuditAll, time.Time{}, 4, "role_changed5 login_failed4 ban_started3 login2"},
		{AuditAll, start.Add(90 * time.Second), 0, "role_changed5 login_failed4 ban_started3 login2"},
		{AuditAll, start.Add(90 * time.Second), 3, "role_changed5 login_failed4 ban_started3"},
		{AuditFailures, start.Add(3 * time.Minute), 0, "login_failed4"},
	}
	for _, tt := range tests {
		evs, err := e.svc.Audit(ctx, tt.view, tt.since, tt.limit)
		if err != nil {
			t.Fatalf("Audit(%q, %v, %d): %v", tt.view, tt.since, tt.limit, err)
		}
		if got := targets(evs); got != tt.want {
			t.Errorf("Audit(%q, since %v, limit %d) = %s, want %s", tt.view, tt.since.Sub(start), tt.limit, got, tt.want)
		}
	}
	if _, err := e.svc.Audit(ctx, "bogus", time.Time{}, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown view: err = %v, want ErrInvalid", err)
	}
}
