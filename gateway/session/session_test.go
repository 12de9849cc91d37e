package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
)

// newManager uses the real embedded store with the same fake clock.
func newManager(t *testing.T) (*session.Manager, *embedded.Store, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	st, err := embedded.Open(filepath.Join(t.TempDir(), "s.db"), embedded.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	m := session.New(st, session.Options{CookieName: "authgate_session", IdleTimeout: time.Hour, MaxLifetime: 12 * time.Hour}, clk.Now, nil)
	return m, st, clk
}

func TestCreateGetAndHashing(t *testing.T) {
	m, st, _ := newManager(t)
	ctx := context.Background()
	id, s, err := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull})
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 43 {
		t.Fatalf("id length %d, want 43 (256 bits base64url)", len(id))
	}
	if s.IDHash == id || s.IDHash != session.HashID(id) || len(s.IDHash) != 64 {
		t.Fatalf("store key %q is not the SHA-256 of the id", s.IDHash)
	}
	// The store holds no session under the raw id.
	if _, err := st.GetSession(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("raw id found in store: %v", err)
	}
	got, err := m.Get(ctx, id)
	if err != nil || got.User != "alice" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	id2, _, _ := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull})
	if id2 == id {
		t.Fatal("two sessions share an id")
	}
}

func TestMalformedIDsAreNoSession(t *testing.T) {
	m, _, _ := newManager(t)
	for _, id := range []string{"", "x", strings.Repeat("a", 42), strings.Repeat("a", 44), strings.Repeat("a", 42) + "=", strings.Repeat("a", 42) + "/", strings.Repeat("é", 22), strings.Repeat("a", 4096)} {
		if _, err := m.Get(context.Background(), id); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("Get(%q) = %v, want ErrNoSession", id, err)
		}
	}
}

func TestIdleTimeoutAndLifetime(t *testing.T) {
	m, _, clk := newManager(t)
	ctx := context.Background()
	id, _, err := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull})
	if err != nil {
		t.Fatal(err)
	}
	// Activity every 50 minutes keeps it alive past one idle timeout...
	for i := 0; i < 5; i++ {
		clk.Advance(50 * time.Minute)
		if _, err := m.Get(ctx, id); err != nil {
			t.Fatalf("after %d×50m: %v", i+1, err)
		}
	}
	// ...but 61 idle minutes end it.
	clk.Advance(61 * time.Minute)
	if _, err := m.Get(ctx, id); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("idle session alive: %v", err)
	}

	// Absolute lifetime ends even an active session.
	id, _, _ = m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull})
	for elapsed := time.Duration(0); elapsed < 12*time.Hour-30*time.Minute; elapsed += 30 * time.Minute {
		clk.Advance(30 * time.Minute)
		if _, err := m.Get(ctx, id); err != nil {
			t.Fatalf("active session died at %v: %v", elapsed, err)
		}
	}
	clk.Advance(31 * time.Minute)
	if _, err := m.Get(ctx, id); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("session alive past max lifetime: %v", err)
	}
}

func TestPendingSessionsAreShortLived(t *testing.T) {
	m, _, clk := newManager(t)
	id, _, _ := m.Create(context.Background(), store.Session{User: "alice", Stage: store.StagePending})
	clk.Advance(9 * time.Minute)
	if _, err := m.Get(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := m.Get(context.Background(), id); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("pending session alive after 11 minutes: %v", err)
	}
}

func TestRotateInvalidatesOldID(t *testing.T) {
	m, _, _ := newManager(t)
	ctx := context.Background()
	id, s, _ := m.Create(ctx, store.Session{User: "alice", Stage: store.StagePending})
	nid, ns, err := m.Rotate(ctx, s, func(x *store.Session) { x.Stage = store.StageFull; x.TwoFactor = true })
	if err != nil {
		t.Fatal(err)
	}
	if nid == id || ns.IDHash == s.IDHash {
		t.Fatal("rotation kept the id")
	}
	if _, err := m.Get(ctx, id); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("old id still valid: %v", err)
	}
	got, err := m.Get(ctx, nid)
	if err != nil || !got.TwoFactor || got.Stage != store.StageFull || got.TwoFactorAt.IsZero() {
		t.Fatalf("rotated session = %+v, %v", got, err)
	}
}

func TestCookies(t *testing.T) {
	for _, tc := range []struct {
		secure bool
		domain string
		name   string
	}{
		{false, "", "authgate_session"},
		{true, "", "__Host-authgate_session"},
		{true, "example.com", "__Secure-authgate_session"},
	} {
		m := session.New(nil, session.Options{CookieName: "authgate_session", Domain: tc.domain, IdleTimeout: time.Hour, MaxLifetime: time.Hour}, nil, nil)
		rec := httptest.NewRecorder()
		m.SetCookie(rec, "v", store.Session{ExpiresAt: time.Now().Add(time.Hour)}, tc.secure)
		res := rec.Result()
		cs := res.Cookies()
		if len(cs) != 1 {
			t.Fatalf("%d cookies", len(cs))
		}
		c := cs[0]
		if c.Name != tc.name || !c.HttpOnly || c.Secure != tc.secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Errorf("cookie %+v for %+v", c, tc)
		}
		if tc.name == "__Host-authgate_session" && c.Domain != "" {
			t.Errorf("__Host- cookie with domain %q", c.Domain)
		}
	}
}

func TestFromRequestReadsOnlySchemeCookie(t *testing.T) {
	m, _, _ := newManager(t)
	id, _, _ := m.Create(context.Background(), store.Session{User: "alice", Stage: store.StageFull})
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: "authgate_session", Value: id})
	if _, _, err := m.FromRequest(r, false); err != nil {
		t.Fatalf("plain cookie over http: %v", err)
	}
	// Over HTTPS only the __Host- cookie counts: a cookie planted by a
	// plain-HTTP response or a sibling domain is ignored.
	if _, _, err := m.FromRequest(r, true); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("plain cookie accepted over https: %v", err)
	}
}

// Regression: rotating a complete session (password change, step-up) used
// to restart its absolute lifetime, so a login could be kept alive forever.
func TestRotateKeepsAbsoluteLifetime(t *testing.T) {
	m, _, clk := newManager(t)
	ctx := context.Background()
	id, s, _ := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull})
	for range 11 { // used every 50 minutes: never idle
		clk.Advance(50 * time.Minute)
		if _, err := m.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	_, ns, err := m.Rotate(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ns.ExpiresAt.Equal(s.ExpiresAt) || !ns.CreatedAt.Equal(s.CreatedAt) {
		t.Fatalf("rotation moved the lifetime: %v → %v", s.ExpiresAt, ns.ExpiresAt)
	}
	// A pending session that completes starts its full lifetime.
	_, p, _ := m.Create(ctx, store.Session{User: "bob", Stage: store.StagePending})
	_, full, _ := m.Rotate(ctx, p, func(x *store.Session) { x.Stage, x.TwoFactor = store.StageFull, true })
	if got := full.ExpiresAt.Sub(clk.Now()); got != 12*time.Hour {
		t.Fatalf("completed login lives %v, want 12h", got)
	}
}

// Regression: two gateways under one parent domain with the same cookie
// name made the browser send two session cookies; only the first was
// read, so a stale one sent the user round the sign-in forever. Each is
// tried (a bounded number), the live one wins.
func TestFromRequestTriesEverySameNamedCookie(t *testing.T) {
	m, _, _ := newManager(t)
	ctx := context.Background()
	id, _, err := m.Create(ctx, store.Session{User: "alice", Stage: store.StageFull})
	if err != nil {
		t.Fatal(err)
	}
	stale := strings.Repeat("A", 43)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Cookie", "authgate_session="+stale+"; authgate_session="+id)
	got, s, err := m.FromRequest(r, false)
	if err != nil || got != id || s.User != "alice" {
		t.Fatalf("FromRequest with a stale cookie first = %q, %+v, %v; want the live session", got, s, err)
	}
	// Only the first few are looked up: a request stuffed with cookies
	// costs a bounded number of store reads.
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Cookie", strings.Repeat("authgate_session="+stale+"; ", 10)+"authgate_session="+id)
	if _, _, err := m.FromRequest(r, false); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the 11th cookie was looked up: %v", err)
	}
}
