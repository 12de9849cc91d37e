package server_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/store"
)

func TestImportedBcryptHashUpgradedAtLogin(t *testing.T) {
	g := startGateway(t, gwOpts{mode: "off"})
	h, err := bcrypt.GenerateFromPassword([]byte("legacy password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	hash := "$2y$" + strings.TrimPrefix(string(h), "$2a$") // as htpasswd writes it
	if err := g.srv.Store().CreateUser(ctx, store.User{Name: "carol", PasswordHash: hash, Role: store.RoleUser, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	b := g.browser(t)
	login(t, b, "carol", "legacy password")
	u, err := g.srv.Store().GetUser(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Fatalf("hash after login = %.30s…, want argon2id with the configured parameters", u.PasswordHash)
	}
	// And the new hash works.
	login(t, g.browser(t), "carol", "legacy password")
}

func TestSecretEncryptedAtRest(t *testing.T) {
	g := startGateway(t, gwOpts{mode: "required"})
	g.addUser(t, "alice", "correct horse")
	secret := enroll(t, g, g.browser(t))
	u, err := g.srv.Store().GetUser(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if !u.HasTOTP() || bytes.Contains(u.TOTPSecret, raw) || bytes.Contains(u.TOTPSecret, []byte(secret)) {
		t.Fatalf("stored secret is not encrypted: %x", u.TOTPSecret)
	}
	if u.TOTPEnrolledAt.IsZero() || u.TOTPLastUsedAt.IsZero() {
		t.Fatalf("enrolment times not recorded: %+v", u)
	}
}

func TestOpenRedirectAfterLoginGoesHome(t *testing.T) {
	g := startGateway(t, gwOpts{mode: "off"})
	g.addUser(t, "alice", "correct horse")
	for _, rd := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "https://127.0.0.1.evil.example/"} {
		b := g.browser(t)
		r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "rd": {rd}})
		mustStatus(t, r, http.StatusSeeOther, "login")
		if location(r) != "/" {
			t.Errorf("rd %q: redirected to %q, want /", rd, location(r))
		}
	}
	// The gateway's own absolute origin is fine.
	b := g.browser(t)
	r := b.post("/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "rd": {g.URL + "/x?y=1"}})
	if location(r) != g.URL+"/x?y=1" {
		t.Errorf("same-origin rd became %q", location(r))
	}
}

func TestBadInputFailsClosed(t *testing.T) {
	g := startGateway(t, gwOpts{mode: "off"})
	g.addUser(t, "alice", "correct horse")
	b := g.browser(t)

	// Malformed or oversized session cookies are no session.
	for _, v := range []string{"garbage", strings.Repeat("A", 43), strings.Repeat("x", 3000), "%00%ff", `"quoted"`} {
		r := b.do("GET", "/", nil, http.Header{"Cookie": {"authgate_session=" + v}})
		if r.status != http.StatusFound {
			t.Errorf("cookie %.20q: status %d, want 302 to login", v, r.status)
		}
	}
	// An oversized login body is refused without reaching the handler's
	// password check, and the server stays up.
	page := b.get("/.authgate/login")
	m := csrfRE.FindStringSubmatch(page.body)
	big := url.Values{"username": {"alice"}, "password": {strings.Repeat("p", 200<<10)}, "csrf_token": {m[1] + m[2]}}
	r := b.do("POST", "/.authgate/login", big, nil)
	if r.status < 400 || r.status >= 500 {
		t.Fatalf("oversized body: status %d", r.status)
	}
	if strings.Contains(r.body, "correct horse") {
		t.Fatal("response echoes the password")
	}
	login(t, b, "alice", "correct horse")
	// A path that cannot be canonicalised never reaches the upstream.
	if r := b.get("/a%2fb"); r.status != http.StatusBadRequest {
		t.Fatalf("encoded slash: status %d", r.status)
	}
	if r := b.get("/.AUTHGATE/login"); r.status != http.StatusNotFound && r.status != http.StatusOK {
		t.Fatalf("case variant of the gateway prefix: status %d", r.status)
	}
}

func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	up := newUpstream(t)
	for _, tc := range []struct {
		name    string
		trusted []string
		wantXFF string
		wantXFH string
	}{
		{"untrusted peer: chain replaced", nil, "127.0.0.1", ""},
		{"trusted peer: chain kept", []string{"127.0.0.1/32"}, "203.0.113.7, 127.0.0.1", "panel.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGatewayWith(t, gwOpts{mode: "off", routes: []config.Route{{Name: "p", PathPrefix: "/", Upstream: up.URL, Policy: config.PolicyPassword}}}, func(c *config.Config) {
				c.TrustedProxies = tc.trusted
			})
			g.addUser(t, "alice", "correct horse")
			b := g.browser(t)
			login(t, b, "alice", "correct horse")
			r := b.do("GET", "/", nil, http.Header{"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Host": {"panel.example"}, "X-Forwarded-Proto": {"http"}})
			mustStatus(t, r, http.StatusOK, "proxied")
			var s seen
			if err := json.Unmarshal([]byte(r.body), &s); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(s.Headers["X-Forwarded-For"], ", "); got != tc.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", got, tc.wantXFF)
			}
			if tc.wantXFH != "" {
				if got := strings.Join(s.Headers["X-Forwarded-Host"], ","); got != tc.wantXFH {
					t.Errorf("X-Forwarded-Host = %q, want %q", got, tc.wantXFH)
				}
			} else if got := strings.Join(s.Headers["X-Forwarded-Host"], ","); got == "panel.example" {
				t.Errorf("spoofed X-Forwarded-Host from an untrusted peer passed: %q", got)
			}
		})
	}
}

// Regression: a gateway restarted with another secret key used to start
// and then fail every enrolled user's code with "The security code is
// invalid." and no hint; now it refuses to start and says why.
func TestWrongSecretKeyRefusesToStart(t *testing.T) {
	g := startGateway(t, gwOpts{mode: "on"})
	cfg := *g.cfg
	if err := g.srv.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.SecretKey = strings.Repeat("ab", 32)
	_, err := server.New(context.Background(), &cfg, zerolog.Nop(), server.Options{NoControlSocket: true})
	if !errors.Is(err, server.ErrWrongKey) {
		t.Fatalf("start with another key: %v, want ErrWrongKey", err)
	}
	// The original key still starts.
	cfg.SecretKey = ""
	srv, err := server.New(context.Background(), &cfg, zerolog.Nop(), server.Options{NoControlSocket: true})
	if err != nil {
		t.Fatalf("start with the original key: %v", err)
	}
	_ = srv.Close()
}

// Regression: a user whose password an admin reset could reach the panel
// with the temporary password; the change was only enforced on the
// gateway's own pages.
func TestTemporaryPasswordMustBeChangedBeforeThePanel(t *testing.T) {
	g := startGateway(t, gwOpts{mode: "off"})
	g.addUser(t, "alice", "temporary pass")
	if _, err := g.srv.Store().UpdateUser(context.Background(), "alice", func(u *store.User) error {
		u.MustChangePassword = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := g.browser(t)
	login(t, b, "alice", "temporary pass")
	r := b.get("/panel?x=1")
	mustStatus(t, r, http.StatusFound, "panel with a temporary password")
	if want := "/.authgate/account/password?rd=" + url.QueryEscape("/panel?x=1"); location(r) != want {
		t.Fatalf("sent to %q, want %q", location(r), want)
	}
	r = b.post("/.authgate/account/password", "/.authgate/account/password", url.Values{
		"current_password": {"temporary pass"}, "new_password": {"my own secret"}, "new_password_repeat": {"my own secret"}, "rd": {"/panel?x=1"}})
	mustStatus(t, r, http.StatusSeeOther, "password change")
	if location(r) != "/panel?x=1" {
		t.Fatalf("after the change went to %q", location(r))
	}
	mustStatus(t, b.get("/panel?x=1"), http.StatusOK, "panel after the change")
}
