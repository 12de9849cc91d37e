package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
)

// serveSocket serves a on a real unix socket and returns a Client for it.
func serveSocket(t *testing.T, a users.Admin) (*Client, *testkit.SyncBuffer, string) {
	t.Helper()
	path := filepath.Join(shortDir(t), "control.sock")
	l, err := ListenSocket(path)
	if err != nil {
		t.Fatalf("ListenSocket: %v", err)
	}
	logs := &testkit.SyncBuffer{}
	srv := &http.Server{Handler: NewSocketHandler(a, zerolog.New(logs)), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return NewClient(path), logs, path
}

func sameUsers(t *testing.T, got, want []users.UserInfo) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d users %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Role != w.Role || !reflect.DeepEqual(g.Groups, w.Groups) ||
			g.TwoFactor != w.TwoFactor || g.TOTP != w.TOTP || !samePasskeys(g.Passkeys, w.Passkeys) ||
			g.Sessions != w.Sessions || !g.CreatedAt.Equal(w.CreatedAt) {
			t.Errorf("user %d = %+v, want %+v", i, g, w)
		}
	}
}

func samePasskeys(got, want []users.PasskeyInfo) bool {
	return slices.EqualFunc(got, want, func(g, w users.PasskeyInfo) bool {
		return g.Name == w.Name && g.CreatedAt.Equal(w.CreatedAt) && g.LastUsedAt.Equal(w.LastUsedAt) && g.Discoverable == w.Discoverable
	})
}

// Every operation through the socket does what the Service does directly.
func TestSocketRoundTrip(t *testing.T) {
	// The client must not be routed through a proxy from the environment.
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")

	ctx := context.Background()
	c := newClock()
	e := newEnv(openStore(t, c), c)
	st, svc := e.st, e.svc
	cl, logs, _ := serveSocket(t, svc)
	bc, bc2 := bcryptHashes(t)

	if err := cl.Add(ctx, "alice", argonHash, store.RoleAdmin, []string{"ops"}); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := cl.Add(ctx, "bob", bc, store.RoleUser, nil); err != nil {
		t.Fatalf("Add: %v", err)
	}
	u, err := st.GetUser(ctx, "alice")
	if err != nil || u.PasswordHash != argonHash || u.Role != store.RoleAdmin || !reflect.DeepEqual(u.Groups, []string{"ops"}) {
		t.Fatalf("alice in store = %+v, %v", u, err)
	}
	putSession(t, st, c, "s1", "alice")
	putSession(t, st, c, "s2", "alice")
	addPasskeys(t, st, c, "bob", 2)

	got, err := cl.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want, err := svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameUsers(t, got, want)
	if got[0].Sessions != 2 {
		t.Errorf("alice sessions = %d, want 2", got[0].Sessions)
	}
	if b := got[1]; !b.TwoFactor || b.TOTP || len(b.Passkeys) != 2 || b.Passkeys[0].Name != "Passkey 1" || !b.Passkeys[0].Discoverable {
		t.Errorf("bob through the socket: two_factor=%v totp=%v passkeys=%+v, want two passkeys", b.TwoFactor, b.TOTP, b.Passkeys)
	}

	if _, err := st.UpdateUser(ctx, "alice", func(u *store.User) error { u.MustChangePassword = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetPassword(ctx, "alice", bc2); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	u, _ = st.GetUser(ctx, "alice")
	if u.PasswordHash != bc2 || u.MustChangePassword {
		t.Errorf("after SetPassword: hash replaced=%v must_change=%v", u.PasswordHash == bc2, u.MustChangePassword)
	}
	if n := sessionCount(t, st, "alice"); n != 0 {
		t.Errorf("alice has %d sessions after SetPassword", n)
	}

	res, err := cl.Import(ctx, []users.ImportEntry{{Name: "bob", PasswordHash: bc2}, {Name: "carol", PasswordHash: bc}})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if wantRes := (users.ImportResult{Added: []string{"carol"}, Skipped: []string{"bob"}}); !reflect.DeepEqual(res, wantRes) {
		t.Errorf("Import = %+v, want %+v", res, wantRes)
	}

	if err := cl.Delete(ctx, "bob"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := st.GetUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("bob after Delete: %v", err)
	}

	got, err = cl.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "alice" || got[1].Name != "carol" {
		t.Errorf("final List = %+v", got)
	}

	// Every change is audited in the store with the CLI as the actor,
	// and no hash reaches the log.
	out := logs.String()
	for _, h := range []string{argonHash, bc, bc2} {
		if strings.Contains(out, h) {
			t.Fatalf("log contains a password hash:\n%s", out)
		}
	}
	wantEvents := []ev{
		{"cli", "user_added", "alice", "role=admin groups=ops"},
		{"cli", "user_added", "bob", "role=user"},
		{"cli", "password_changed", "alice", "2 session(s) revoked"},
		{"cli", "users_imported", "", "added 1 (carol), skipped 1 existing"},
		{"cli", "user_deleted", "bob", "0 session(s) revoked"},
	}
	if got := auditSummary(t, st); !reflect.DeepEqual(got, wantEvents) {
		t.Errorf("audit events =\n%+v\nwant\n%+v", got, wantEvents)
	}
}

// Errors through the socket match the same sentinels and carry the same
// message as the Service's, so the CLI prints the same thing either way.
func TestSocketErrorsMatchService(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	svc := newEnv(openStore(t, c), c).svc
	cl, logs, _ := serveSocket(t, svc)
	bc, _ := bcryptHashes(t)
	if err := svc.Add(ctx, "alice", bc, store.RoleAdmin, nil); err != nil {
		t.Fatal(err)
	}
	if err := svc.Add(ctx, "bob", bc, store.RoleUser, nil); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		op       func(a users.Admin) error
		sentinel error
	}{
		{"add invalid name", func(a users.Admin) error { return a.Add(ctx, "bad name", bc, store.RoleUser, nil) }, users.ErrInvalid},
		{"add invalid role", func(a users.Admin) error { return a.Add(ctx, "zed", bc, "root", nil) }, users.ErrInvalid},
		{"add plaintext", func(a users.Admin) error { return a.Add(ctx, "zed", "secret", store.RoleUser, nil) }, users.ErrInvalid},
		{"add invalid group", func(a users.Admin) error { return a.Add(ctx, "zed", bc, store.RoleUser, []string{"-g"}) }, users.ErrInvalid},
		{"add existing", func(a users.Admin) error { return a.Add(ctx, "alice", bc, store.RoleUser, nil) }, store.ErrExists},
		{"passwd missing", func(a users.Admin) error { return a.SetPassword(ctx, "nobody", bc) }, store.ErrNotFound},
		{"passwd invalid", func(a users.Admin) error { return a.SetPassword(ctx, "alice", "") }, users.ErrInvalid},
		{"delete missing", func(a users.Admin) error { return a.Delete(ctx, "nobody") }, store.ErrNotFound},
		{"delete invalid", func(a users.Admin) error { return a.Delete(ctx, "") }, users.ErrInvalid},
		{"import invalid", func(a users.Admin) error {
			_, err := a.Import(ctx, []users.ImportEntry{{Name: "x", PasswordHash: argonHash}})
			return err
		}, users.ErrInvalid},
		{"delete last admin", func(a users.Admin) error { return a.Delete(ctx, "alice") }, users.ErrLastAdmin},
		{"page bad status", func(a users.Admin) error {
			_, err := a.Page(ctx, users.Filter{Status: "maybe"})
			return err
		}, users.ErrInvalid},
		{"disable 2fa unknown", func(a users.Admin) error {
			_, err := a.DisableTwoFactor(ctx, []string{"bob", "nobody"})
			return err
		}, store.ErrNotFound},
		{"disable 2fa none", func(a users.Admin) error {
			_, err := a.DisableTwoFactor(ctx, nil)
			return err
		}, users.ErrInvalid},
		{"disable 2fa bad name", func(a users.Admin) error {
			_, err := a.DisableTwoFactor(ctx, []string{"bob", "b c"})
			return err
		}, users.ErrInvalid},
		{"reset missing", func(a users.Admin) error { return a.ResetPassword(ctx, "nobody", bc) }, store.ErrNotFound},
		{"reset plaintext", func(a users.Admin) error { return a.ResetPassword(ctx, "bob", "secret") }, users.ErrInvalid},
		{"role invalid", func(a users.Admin) error { return a.SetRole(ctx, "bob", "root") }, users.ErrInvalid},
		{"role missing", func(a users.Admin) error { return a.SetRole(ctx, "nobody", store.RoleAdmin) }, store.ErrNotFound},
		{"role last admin", func(a users.Admin) error { return a.SetRole(ctx, "alice", store.RoleUser) }, users.ErrLastAdmin},
		{"sessions missing", func(a users.Admin) error {
			_, err := a.Sessions(ctx, "nobody")
			return err
		}, store.ErrNotFound},
		{"revoke missing", func(a users.Admin) error {
			_, err := a.RevokeSessions(ctx, "nobody")
			return err
		}, store.ErrNotFound},
		{"mode invalid", func(a users.Admin) error { return a.SetMode(ctx, "sometimes") }, users.ErrInvalid},
		{"issuer invalid", func(a users.Admin) error { return a.SetIssuer(ctx, "a:b") }, users.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			direct := tt.op(svc)
			remote := tt.op(cl)
			if !errors.Is(direct, tt.sentinel) {
				t.Fatalf("Service error = %v, want %v", direct, tt.sentinel)
			}
			if !errors.Is(remote, tt.sentinel) {
				t.Errorf("Client error = %v, want %v", remote, tt.sentinel)
			}
			if remote == nil || remote.Error() != direct.Error() {
				t.Errorf("Client message %q, Service message %q", remote, direct)
			}
			// errors.As finds the same typed error either way.
			if d, ok := errors.AsType[*users.InvalidError](direct); ok {
				if r, ok := errors.AsType[*users.InvalidError](remote); !ok || *r != *d {
					t.Errorf("Client InvalidError %+v, Service %+v", r, d)
				}
			}
			if d, ok := errors.AsType[*users.UnknownUsersError](direct); ok {
				if r, ok := errors.AsType[*users.UnknownUsersError](remote); !ok || !reflect.DeepEqual(r, d) {
					t.Errorf("Client UnknownUsersError %+v, Service %+v", r, d)
				}
			}
		})
	}
	if strings.Contains(logs.String(), bc) {
		t.Errorf("a hash reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "operation refused") {
		t.Error("refused operations are not logged")
	}
}

// scripted is an Admin whose answers the test sets, to reach error paths
// no real store produces on demand.
type scripted struct {
	err error
	res users.ImportResult
}

func (s *scripted) Add(context.Context, string, string, string, []string) error { return s.err }
func (s *scripted) SetPassword(context.Context, string, string) error           { return s.err }
func (s *scripted) Delete(context.Context, string) error                        { return s.err }
func (s *scripted) List(context.Context) ([]users.UserInfo, error)              { return nil, s.err }
func (s *scripted) Import(context.Context, []users.ImportEntry) (users.ImportResult, error) {
	return s.res, s.err
}
func (s *scripted) Page(context.Context, users.Filter) (users.UserPage, error) {
	return users.UserPage{}, s.err
}
func (s *scripted) DisableTwoFactor(context.Context, []string) ([]string, error) {
	return nil, s.err
}
func (s *scripted) ResetPassword(context.Context, string, string) error           { return s.err }
func (s *scripted) SetRole(context.Context, string, string) error                 { return s.err }
func (s *scripted) Sessions(context.Context, string) ([]users.SessionInfo, error) { return nil, s.err }
func (s *scripted) RevokeSessions(context.Context, string) (int, error)           { return 0, s.err }
func (s *scripted) Settings(context.Context) (users.SettingsInfo, error) {
	return users.SettingsInfo{}, s.err
}
func (s *scripted) SetMode(context.Context, string) error   { return s.err }
func (s *scripted) SetIssuer(context.Context, string) error { return s.err }
func (s *scripted) Audit(context.Context, users.AuditView, time.Time, int) ([]store.AuditEvent, error) {
	return nil, s.err
}

func TestSocketErrorCodes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		err      error
		sentinel error // nil: must match none of the sentinels
	}{
		{"conflict", fmt.Errorf("set password of user %q: %w", "a", store.ErrConflict), store.ErrConflict},
		{"exists", fmt.Errorf("x: %w", store.ErrExists), store.ErrExists},
		{"not found", fmt.Errorf("x: %w", store.ErrNotFound), store.ErrNotFound},
		{"invalid", fmt.Errorf("%w: because", users.ErrInvalid), users.ErrInvalid},
		// A corrupt stored setting is the server's problem, not the caller's
		// (the Service turns the settings' refusals into users.InvalidError).
		{"settings corrupt", fmt.Errorf("read settings: settings: stored mode %q: %w", "x", settings.ErrInvalid), nil},
		{"last admin", fmt.Errorf("set role: %w", users.ErrLastAdmin), users.ErrLastAdmin},
		{"internal", errors.New("list users: redis: connection refused"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, _, _ := serveSocket(t, &scripted{err: tt.err})
			_, err := cl.List(ctx)
			if err == nil || err.Error() != tt.err.Error() {
				t.Fatalf("List error = %v, want message %q", err, tt.err)
			}
			for _, s := range []error{users.ErrInvalid, users.ErrLastAdmin, store.ErrExists, store.ErrNotFound, store.ErrConflict, ErrUnavailable} {
				if got, want := errors.Is(err, s), s == tt.sentinel; got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", s, got, want)
				}
			}
		})
	}
}

// Typed errors cross the socket: wrapped in context, with the message
// unchanged and the fields errors.As reads.
func TestSocketTypedErrors(t *testing.T) {
	ctx := context.Background()
	invalid := &users.InvalidError{Field: "role", Message: `role "root": must be "admin" or "user"`}
	unknown := &users.UnknownUsersError{Names: []string{"ghost", "nobody"}}
	for _, sent := range []error{fmt.Errorf("set role: %w", invalid), fmt.Errorf("disable 2FA: %w", unknown), invalid} {
		cl, _, _ := serveSocket(t, &scripted{err: sent})
		_, err := cl.List(ctx)
		if err == nil || err.Error() != sent.Error() {
			t.Fatalf("List error = %v, want message %q", err, sent)
		}
		if want, ok := errors.AsType[*users.InvalidError](sent); ok {
			got, ok := errors.AsType[*users.InvalidError](err)
			if !ok || *got != *want || !errors.Is(err, users.ErrInvalid) {
				t.Errorf("received %#v, want InvalidError %+v matching ErrInvalid", err, want)
			}
		}
		if want, ok := errors.AsType[*users.UnknownUsersError](sent); ok {
			got, ok := errors.AsType[*users.UnknownUsersError](err)
			if !ok || !reflect.DeepEqual(got, want) || !errors.Is(err, store.ErrNotFound) {
				t.Errorf("received %#v, want UnknownUsersError %+v matching store.ErrNotFound", err, want)
			}
		}
	}
}

// A failed import still tells the caller what was done before the error.
func TestSocketImportPartial(t *testing.T) {
	partial := users.ImportResult{Added: []string{"x1"}, Skipped: []string{"x0"}}
	cl, _, _ := serveSocket(t, &scripted{err: errors.New(`import user "x2": backend down`), res: partial})
	res, err := cl.Import(context.Background(), []users.ImportEntry{{Name: "x0"}, {Name: "x1"}, {Name: "x2"}})
	if err == nil || !strings.Contains(err.Error(), "backend down") {
		t.Fatalf("Import error = %v", err)
	}
	if !reflect.DeepEqual(res, partial) {
		t.Errorf("partial result = %+v, want %+v", res, partial)
	}
}

func TestClientUnavailable(t *testing.T) {
	dir := shortDir(t)
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()

	for _, path := range []string{filepath.Join(dir, "missing.sock"), stale} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, err := NewClient(path).List(context.Background())
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("List = %v, want ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the socket", err)
			}
		})
	}
}

func TestClientContext(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	path := filepath.Join(shortDir(t), "c.sock")
	l, err := ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})}
	go srv.Serve(l)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = NewClient(path).Delete(ctx, "alice")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Delete with expiring context = %v, want DeadlineExceeded", err)
	}
}

// Malformed requests are refused without reaching the Admin.
func TestHandlerBadRequests(t *testing.T) {
	sc := &scripted{}
	cl, _, _ := serveSocket(t, sc)
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"unknown field", http.MethodPost, pathAdd, `{"name":"a","password":"x"}`, http.StatusBadRequest},
		{"not json", http.MethodPost, pathDelete, `name=a`, http.StatusBadRequest},
		{"trailing data", http.MethodPost, pathDelete, `{"name":"a"}{"name":"b"}`, http.StatusBadRequest},
		{"wrong type", http.MethodPost, pathImport, `{"entries":"all"}`, http.StatusBadRequest},
		{"too large", http.MethodPost, pathImport, `{"entries":[` + strings.Repeat(`{"name":"a","password_hash":"b"},`, maxRequestBody/30) + `{}]}`, http.StatusBadRequest},
		{"unknown path", http.MethodPost, "/v1/users/rename", `{}`, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc.err = errors.New("admin must not be called")
			req, _ := http.NewRequest(tt.method, "http://authgate"+tt.path, strings.NewReader(tt.body))
			resp, err := cl.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e errorResponse
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatalf("body is not a JSON error: %v", err)
			}
			if resp.StatusCode != tt.status || e.Error.Code != codeBadRequest {
				t.Errorf("status %d code %q, want %d %q", resp.StatusCode, e.Error.Code, tt.status, codeBadRequest)
			}
		})
	}
}

// The socket file of a running server is only reachable by its owner.
func TestServedSocketMode(t *testing.T) {
	_, _, path := serveSocket(t, &scripted{})
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", fi.Mode().Perm())
	}
}
