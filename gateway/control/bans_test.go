package control

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/authgate/authgate/gateway/regulation"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
)

func (s *scripted) Bans(context.Context) ([]users.BanInfo, error)            { return nil, s.err }
func (s *scripted) LiftBan(context.Context, string) ([]users.BanInfo, error) { return nil, s.err }

// The ban operations through the socket, as `authgate bans` uses them,
// answer what the Service answers.
func TestClientBans(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	e := newEnv(openStore(t, c), c)
	cl, _, _ := serveSocket(t, e.svc)
	r := regulation.New(e.st, nil, regulation.Options{MaxFailures: 1}, c.Now)
	for _, f := range []struct{ user, ip string }{{"alice", ""}, {"", "203.0.113.7"}} {
		addr := netip.Addr{}
		if f.ip != "" {
			addr = netip.MustParseAddr(f.ip)
		}
		if _, err := r.Fail(ctx, f.user, addr); err != nil {
			t.Fatal(err)
		}
	}
	got, err := cl.Bans(ctx)
	if err != nil {
		t.Fatalf("Bans: %v", err)
	}
	want, err := e.svc.Bans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("Bans = %+v, want 2 like the Service's %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Kind != w.Kind || g.Subject != w.Subject || g.Failures != w.Failures ||
			g.Level != w.Level || !g.Since.Equal(w.Since) || !g.Until.Equal(w.Until) {
			t.Errorf("ban %d = %+v, want %+v", i, g, w)
		}
	}
	lifted, err := cl.LiftBan(ctx, "alice")
	if err != nil || len(lifted) != 1 || lifted[0].Subject != "alice" || lifted[0].Kind != "user" {
		t.Fatalf("LiftBan(alice) = %+v, %v", lifted, err)
	}
	if _, err := cl.LiftBan(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LiftBan of nothing err = %v, want store.ErrNotFound", err)
	}
	if _, err := cl.LiftBan(ctx, " "); !errors.Is(err, users.ErrInvalid) {
		t.Errorf("LiftBan(blank) err = %v, want users.ErrInvalid", err)
	}
	if bs, err := cl.Bans(ctx); err != nil || len(bs) != 1 {
		t.Errorf("Bans after a lift = %+v, %v", bs, err)
	}
}
