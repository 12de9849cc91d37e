package users

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/regulation"
	"github.com/authgate/authgate/gateway/store"
)

func (e *env) regulator(max int) *regulation.Regulator {
	return regulation.New(e.st, nil, regulation.Options{MaxFailures: max}, e.c.Now)
}
func failFrom(t *testing.T, r *regulation.Regulator, user string, ip string) {
	t.Helper()
	failN(t, r, user, ip, 1)
}

func failN(t *testing.T, r *regulation.Regulator, user, ip string, n int) {
	t.Helper()
	addr := netip.Addr{}
	if ip != "" {
		addr = netip.MustParseAddr(ip)
	}
	for range n {
		if _, err := r.Fail(context.Background(), user, addr); err != nil {
			t.Fatal(err)
		}
	}
}

func banSubjects(bs []BanInfo) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Kind+":"+b.Subject)
	}
	return out
}

// testBansAndLift drives a ban list and lifts through a (local or remote)
// Admin over e's store.
func testBansAndLift(t *testing.T, e *env, a Admin) {
	ctx := context.Background()
	r := e.regulator(2)
	failN(t, r, "alice", "", 2)               // user ban
	failN(t, r, "nobody-by-this-name", "", 2) // unknown names are banned alike
	failN(t, r, "", "203.0.113.7", 2)         // address ban
	bs, err := a.Bans(ctx)
	if err != nil {
		t.Fatalf("Bans: %v", err)
	}
	got := banSubjects(bs)
	slices.Sort(got)
	want := []string{"ip:203.0.113.7", "user:alice", "user:nobody-by-this-name"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Bans = %v, want %v", got, want)
	}
	for _, b := range bs {
		if b.Failures != 2 || b.Level != 1 || !b.Until.After(b.Since) || b.Key == "" {
			t.Errorf("ban %+v lacks its details", b)
		}
	}
	// Lift by user name, by address and by key (what the admin page posts).
	lifted, err := a.LiftBan(ctx, "alice")
	if err != nil || !reflect.DeepEqual(banSubjects(lifted), []string{"user:alice"}) {
		t.Fatalf("LiftBan(alice) = %v, %v", banSubjects(lifted), err)
	}
	if lifted, err = a.LiftBan(ctx, " 203.0.113.7 "); err != nil || len(lifted) != 1 {
		t.Fatalf("LiftBan(ip) = %v, %v", banSubjects(lifted), err)
	}
	if lifted, err = a.LiftBan(ctx, regulation.UserKey("nobody-by-this-name")); err != nil || len(lifted) != 1 {
		t.Fatalf("LiftBan(key) = %v, %v", banSubjects(lifted), err)
	}
	if bs, err := a.Bans(ctx); err != nil || len(bs) != 0 {
		t.Fatalf("Bans after lifting = %v, %v", banSubjects(bs), err)
	}
	// Nothing to lift is not found; an empty target is invalid.
	if _, err := a.LiftBan(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LiftBan of nothing err = %v, want store.ErrNotFound", err)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 300)} {
		if _, err := a.LiftBan(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("LiftBan(%d bytes) err = %v, want ErrInvalid", len(bad), err)
		}
	}
	// Every lift is audited, by the CLI (no actor in the context).
	var lifts []ev
	for _, x := range auditSummary(t, e.st) {
		if x.Action == audit.BanLifted {
			x.Detail = x.Detail[:strings.Index(x.Detail, " (")]
			lifts = append(lifts, x)
		}
	}
	wantLifts := []ev{
		{audit.ActorCLI, audit.BanLifted, "alice", "user ban lifted"},
		{audit.ActorCLI, audit.BanLifted, "203.0.113.7", "ip ban lifted"},
		{audit.ActorCLI, audit.BanLifted, "nobody-by-this-name", "user ban lifted"},
	}
	if !reflect.DeepEqual(lifts, wantLifts) {
		t.Errorf("audit = %+v, want %+v", lifts, wantLifts)
	}
	// A lifted subject starts afresh: one failure does not ban again.
	failFrom(t, r, "alice", "")
	if _, banned, _ := r.Banned(ctx, "alice", netip.Addr{}); banned {
		t.Error("alice banned again by her first failure after the lift")
	}
}

func TestServiceBans(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) { testBansAndLift(t, e, e.svc) })
}

// The web admin's actor is recorded, not the CLI.
func TestLiftBanRecordsActor(t *testing.T) {
	c := newClock()
	e := newEnv(openStore(t, c), c)
	failN(t, e.regulator(1), "bob", "", 1)
	ctx := audit.WithActor(context.Background(), "root-admin", "192.0.2.50")
	if _, err := e.svc.LiftBan(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	evs := auditEvents(t, e.st)
	last := evs[len(evs)-1]
	if last.Action != audit.BanLifted || last.Actor != "root-admin" || last.IP != "192.0.2.50" || last.Target != "bob" {
		t.Errorf("audit event = %+v", last)
	}
}
