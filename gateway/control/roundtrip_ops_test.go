package control

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
)

// The admin operations through the socket do what the Service does
// directly, and are audited with the CLI as the actor.
func TestSocketRoundTripAdminOps(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	e := newEnv(openStore(t, c), c)
	st := e.st
	cl, _, _ := serveSocket(t, e.svc)
	bc, _ := bcryptHashes(t)
	addUser(t, st, c, "root", store.RoleAdmin, true)
	addUser(t, st, c, "alice", store.RoleUser, true)
	addUser(t, st, c, "bob", store.RoleUser, false)
	addUser(t, st, c, "erin", store.RoleUser, false)
	addPasskeys(t, st, c, "erin", 2)
	putSession(t, st, c, strings.Repeat("0123456789", 6)+"abcd", "alice")
	putSession(t, st, c, "b1", "bob")

	// Page
	p, err := cl.Page(ctx, users.Filter{Query: "O", PageSize: 1, Page: 2})
	if err != nil {
		t.Fatalf("Page: %v", err)
	}
	direct, _ := e.svc.Page(ctx, users.Filter{Query: "O", PageSize: 1, Page: 2})
	if p.Total != 2 || p.Page != 2 || p.PageSize != 1 || len(p.Users) != 1 || p.Users[0].Name != "root" {
		t.Errorf("Page = %+v", p)
	}
	if !reflect.DeepEqual(p.Users[0].Groups, direct.Users[0].Groups) || p.Users[0].TwoFactor != direct.Users[0].TwoFactor ||
		p.Users[0].RecoveryLeft != 2 || !p.Users[0].TOTPEnrolledAt.Equal(direct.Users[0].TOTPEnrolledAt) ||
		!p.Users[0].TOTPLastUsedAt.Equal(direct.Users[0].TOTPLastUsedAt) {
		t.Errorf("Page row %+v, direct %+v", p.Users[0], direct.Users[0])
	}
	// A user's factors cross the socket: passkeys (never their ids or
	// keys) make 2FA without an authenticator app.
	pe, err := cl.Page(ctx, users.Filter{Query: "erin", Status: users.StatusEnabled})
	if err != nil || len(pe.Users) != 1 {
		t.Fatalf("Page of erin = %+v, %v", pe, err)
	}
	de, _ := e.svc.Page(ctx, users.Filter{Query: "erin"})
	if g, d := pe.Users[0], de.Users[0]; !g.TwoFactor || g.TOTP || len(g.Passkeys) != 2 || !samePasskeys(g.Passkeys, d.Passkeys) ||
		g.Passkeys[0].Name != "Passkey 1" || !g.Passkeys[0].Discoverable || g.Passkeys[0].LastUsedAt.IsZero() ||
		g.Passkeys[1].Name != "Key 2" || g.Passkeys[1].Discoverable || !g.Passkeys[1].LastUsedAt.IsZero() {
		t.Errorf("Page row of erin %+v, direct %+v", g, d)
	}
	if p.Users[0].TOTP != direct.Users[0].TOTP || !p.Users[0].TOTP || p.Users[0].Passkeys != nil {
		t.Errorf("Page row of root: totp=%v passkeys=%+v, direct totp=%v", p.Users[0].TOTP, p.Users[0].Passkeys, direct.Users[0].TOTP)
	}
	empty, err := cl.Page(ctx, users.Filter{Query: "zzz"})
	if err != nil || empty.Users == nil || len(empty.Users) != 0 || empty.Total != 0 {
		t.Errorf("empty Page = %#v, %v", empty, err)
	}

	// Sessions
	ss, err := cl.Sessions(ctx, "alice")
	if err != nil || len(ss) != 1 || ss[0].ID != "012345678901" {
		t.Fatalf("Sessions = %+v, %v", ss, err)
	}
	if none, err := cl.Sessions(ctx, "root"); err != nil || len(none) != 0 {
		t.Errorf("Sessions of root = %+v, %v", none, err)
	}

	// DisableTwoFactor
	had, err := cl.DisableTwoFactor(ctx, []string{"alice", "bob", "erin"})
	if err != nil || !reflect.DeepEqual(had, []string{"alice", "erin"}) {
		t.Fatalf("DisableTwoFactor = %v, %v", had, err)
	}
	if getUser(t, st, "alice").HasTOTP() || sessionCount(t, st, "alice") != 0 || sessionCount(t, st, "bob") != 0 {
		t.Error("DisableTwoFactor through the socket left 2FA or sessions")
	}
	if u := getUser(t, st, "erin"); u.Passkeys != nil || u.HasSecondFactor() {
		t.Errorf("DisableTwoFactor through the socket left erin's passkeys: %+v", u.Passkeys)
	}
	if had, err := cl.DisableTwoFactor(ctx, []string{"bob"}); err != nil || had == nil || len(had) != 0 {
		t.Errorf("DisableTwoFactor without 2FA = %#v, %v; want empty", had, err)
	}

	// ResetPassword
	putSession(t, st, c, "a2", "alice")
	if err := cl.ResetPassword(ctx, "alice", bc); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	if u := getUser(t, st, "alice"); u.PasswordHash != bc || !u.MustChangePassword || sessionCount(t, st, "alice") != 0 {
		t.Errorf("after ResetPassword: %+v", u)
	}

	// SetRole
	if err := cl.SetRole(ctx, "bob", store.RoleAdmin); err != nil {
		t.Fatalf("SetRole: %v", err)
	}
	if getUser(t, st, "bob").Role != store.RoleAdmin {
		t.Error("SetRole through the socket did not change the role")
	}

	// RevokeSessions
	putSession(t, st, c, "b2", "bob")
	putSession(t, st, c, "b3", "bob")
	if n, err := cl.RevokeSessions(ctx, "bob"); err != nil || n != 2 {
		t.Errorf("RevokeSessions = %d, %v; want 2", n, err)
	}

	// Settings
	if err := cl.SetMode(ctx, settings.ModeRequired); err != nil {
		t.Fatalf("SetMode: %v", err)
	}
	if err := cl.SetIssuer(ctx, "Acme"); err != nil {
		t.Fatalf("SetIssuer: %v", err)
	}
	si, err := cl.Settings(ctx)
	if want := (users.SettingsInfo{Mode: settings.ModeRequired, ModeSource: users.ModeFromSettings, Issuer: "Acme", DefaultIssuer: testDefaultIssuer}); err != nil || si != want {
		t.Errorf("Settings = %+v, %v; want %+v", si, err, want)
	}

	// Audit
	c.Advance(time.Minute)
	if err := cl.SetIssuer(ctx, ""); err != nil {
		t.Fatal(err)
	}
	all, err := cl.Audit(ctx, "", time.Time{}, 0)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	wantActions := []string{
		audit.SettingChanged, audit.SettingChanged, audit.SettingChanged, audit.SessionsRevoked, audit.RoleChanged,
		audit.PasswordReset, audit.TOTPDisabled, audit.TOTPDisabled, audit.TOTPDisabled, audit.TOTPDisabled,
	}
	var actions []string
	for _, ev := range all {
		actions = append(actions, ev.Action)
		if ev.Actor != audit.ActorCLI {
			t.Errorf("event %+v: actor %q, want cli", ev, ev.Actor)
		}
	}
	if !reflect.DeepEqual(actions, wantActions) {
		t.Errorf("Audit actions = %v, want %v", actions, wantActions)
	}
	recent, err := cl.Audit(ctx, users.AuditChanges, c.Now().Add(-time.Second), 5)
	if err != nil || len(recent) != 1 || recent[0].Target != settings.KeyIssuer || !recent[0].Time.Equal(c.Now()) {
		t.Errorf("Audit since = %+v, %v", recent, err)
	}
	if two, err := cl.Audit(ctx, users.AuditAll, time.Time{}, 2); err != nil || len(two) != 2 {
		t.Errorf("Audit limit 2 = %d events, %v", len(two), err)
	}
}

// actorProbe records the audit actor each call sees.
type actorProbe struct {
	scripted
	actors []string
}

func (a *actorProbe) SetMode(ctx context.Context, _ string) error {
	name, ip := audit.ActorFrom(ctx)
	a.actors = append(a.actors, name+"|"+ip)
	return nil
}

// Every socket request acts as the CLI, whatever the client sends.
func TestSocketActsAsCLI(t *testing.T) {
	probe := &actorProbe{}
	cl, _, _ := serveSocket(t, probe)
	ctx := audit.WithActor(context.Background(), "mallory", "10.0.0.1") // not sent over the wire
	if err := cl.SetMode(ctx, settings.ModeOff); err != nil {
		t.Fatal(err)
	}
	if want := []string{"cli|"}; !reflect.DeepEqual(probe.actors, want) {
		t.Errorf("actors = %v, want %v", probe.actors, want)
	}
}
