package session_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
)

// FuzzFromRequest feeds arbitrary Cookie headers to the session lookup:
// nothing but the exact id of the real session, under the exact cookie
// name for the scheme, ever yields a session.
func FuzzFromRequest(f *testing.F) {
	clk := testkit.NewClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	st, err := embedded.Open(filepath.Join(f.TempDir(), "s.db"), embedded.Options{Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	m := session.New(st, session.Options{CookieName: "authgate_session", IdleTimeout: time.Hour, MaxLifetime: 12 * time.Hour}, clk.Now, nil)
	id, _, err := m.Create(context.Background(), store.Session{User: "alice", Stage: store.StageFull})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("authgate_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false)
	f.Add("authgate_session=garbage; other=1", true)
	f.Add(`authgate_session="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`, false)
	f.Add("__Host-authgate_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", true)
	f.Add("authgate_session=REAL", false)
	f.Add("authgate_session= REAL", false)
	f.Add("__Host-authgate_session=REAL", true)
	f.Add("x=1; authgate_session=REALx; authgate_session=REAL", false)
	f.Fuzz(func(t *testing.T, header string, secure bool) {
		header = strings.ReplaceAll(header, "REAL", id)
		r, _ := http.NewRequest("GET", "http://gw.example/", nil)
		r.Header.Set("Cookie", header)
		got, s, err := m.FromRequest(r, secure)
		if err != nil {
			if !errors.Is(err, session.ErrNoSession) {
				t.Fatalf("%q: error %v is not ErrNoSession", header, err)
			}
			return
		}
		if got != id || s.User != "alice" {
			t.Fatalf("%q gave session %q of %q; only the real id may", header, got, s.User)
		}
		// One of the first few cookies of the exact name holds the id.
		exact := false
		for i, c := range r.CookiesNamed(m.CookieName(secure)) {
			exact = exact || (i < 4 && c.Value == id)
		}
		if !exact {
			t.Fatalf("%q: a session without the exact cookie %s=<id>", header, m.CookieName(secure))
		}
	})
}
