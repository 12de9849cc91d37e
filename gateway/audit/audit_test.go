package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
)

func backends(t *testing.T, fn func(t *testing.T, st store.Store, clk *testkit.Clock)) {
	t.Run("embedded", func(t *testing.T) {
		clk := testkit.NewClock(time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC))
		dir := t.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			// tmpfs keeps thousands of appends' fsyncs (seconds on a
			// disk) out of the test's time.
			if d, err := os.MkdirTemp("/dev/shm", "audit-test-"); err == nil {
				dir = d
				t.Cleanup(func() { _ = os.RemoveAll(d) })
			}
		}
		st, err := embedded.Open(filepath.Join(dir, "authgate.db"), embedded.Options{Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		fn(t, st, clk)
	})
	t.Run("redis", func(t *testing.T) {
		clk := testkit.NewClock(time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC))
		srv := redistest.Start(t, redistest.Options{})
		st := redisstore.New(redisstore.NewClient(redisstore.ClientOptions{Addrs: []string{srv.Addr()}}), redisstore.Options{})
		t.Cleanup(func() { _ = st.Close() })
		fn(t, st, clk)
	})
}

// Regression: every failed sign-in used to go to the one list of 500
// events that also held admin changes, so a guessing run pushed those out
// of `authgate audit` and the Audit tab within minutes.
func TestFailedSignInsDoNotPushOutChanges(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store, clk *testkit.Clock) {
		rec := audit.New(st, zerolog.Nop(), clk.Now)
		admin := audit.WithActor(context.Background(), "root", "192.0.2.1")
		rec.Record(admin, store.AuditEvent{Action: audit.RoleChanged, Target: "mallory", Detail: "role=admin (was user)"})
		clk.Advance(time.Second)
		const guesses = 2000
		for i := range guesses {
			anon := audit.WithActor(context.Background(), "", fmt.Sprintf("198.51.100.%d", i%250))
			rec.Record(anon, store.AuditEvent{Action: audit.LoginFailed, Target: "root", Detail: "bad password"})
			if i%100 == 99 {
				rec.Record(anon, store.AuditEvent{Action: audit.BanStarted, Target: "root", Detail: "user banned"})
			}
			clk.Advance(10 * time.Millisecond)
		}

		changes, err := st.ListAudit(context.Background(), store.AuditChanges, audit.KeepChanges)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != 1 || changes[0].Action != audit.RoleChanged || changes[0].Actor != "root" || changes[0].Target != "mallory" {
			t.Fatalf("changes after %d failed sign-ins = %+v, want the one role change", guesses, changes)
		}
		failures, err := st.ListAudit(context.Background(), store.AuditFailures, audit.KeepFailures+10)
		if err != nil {
			t.Fatal(err)
		}
		if len(failures) != audit.KeepFailures {
			t.Fatalf("failures kept: %d, want the newest %d", len(failures), audit.KeepFailures)
		}
		bans := 0
		for _, ev := range failures {
			switch ev.Action {
			case audit.LoginFailed:
			case audit.BanStarted:
				bans++
			default:
				t.Fatalf("a %s event among the failures", ev.Action)
			}
		}
		if bans == 0 {
			t.Error("no ban_started among the failures")
		}
	})
}

func TestTrailOf(t *testing.T) {
	failures := map[string]bool{audit.LoginFailed: true, audit.BanStarted: true}
	for _, action := range []string{
		audit.Login, audit.LoginFailed, audit.LoginRecoveryCode, audit.Logout, audit.StepUp,
		audit.TOTPEnrolled, audit.TOTPReconfigured, audit.TOTPRemoved, audit.TOTPDisabled, audit.TOTPResynced,
		audit.RecoveryGenerated, audit.PasswordChanged, audit.PasswordReset, audit.RoleChanged,
		audit.SessionRevoked, audit.SessionsRevoked, audit.SettingChanged, audit.UserAdded, audit.UserDeleted,
		audit.UsersImported, audit.BanStarted, audit.BanLifted, "some_future_action",
	} {
		want := store.AuditChanges
		if failures[action] {
			want = store.AuditFailures
		}
		if got := audit.TrailOf(action); got != want {
			t.Errorf("TrailOf(%s) = %s, want %s", action, got, want)
		}
		if audit.KeepOf(want) <= 0 {
			t.Errorf("KeepOf(%s) = %d", want, audit.KeepOf(want))
		}
	}
	if audit.KeepChanges <= audit.KeepFailures {
		t.Errorf("changes are kept (%d) no longer than failures (%d)", audit.KeepChanges, audit.KeepFailures)
	}
}
