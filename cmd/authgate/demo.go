package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/demo"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/store"
)

// cmdDemoPanel serves only the demo "legacy panel" (used by docker-compose).
func cmdDemoPanel(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("demo-panel", stderr)
	listen := fs.String("listen", "127.0.0.1:9000", "address of the demo panel")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "demo panel listening on http://%s\n", ln.Addr())
	return serveUntil(ctx, &http.Server{Handler: demo.NewPanel(demo.PanelOptions{}), ReadHeaderTimeout: 10 * time.Second}, ln)
}

func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// cmdDemo starts the demo panel and a gateway in front of it, with a fresh
// embedded store in a temporary directory and a generated admin password.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the gateway")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "authgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	panelLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	panel := &http.Server{Handler: demo.NewPanel(demo.PanelOptions{}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = panel.Serve(panelLn) }()
	defer panel.Close()

	gwLn, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w (use --listen to pick another address)", *listen, err)
	}
	defer gwLn.Close() // Serve closes it too; this covers the early returns

	cfg := config.Defaults()
	cfg.Listen = gwLn.Addr().String()
	cfg.DataDir = dir
	cfg.SecretKeyFile = filepath.Join(dir, "secret.key")
	// A throw-away key: the demo forgets everything when it stops, so
	// there is nothing to back up (and no warning telling you to).
	cfg.SecretKey, err = randomKey()
	if err != nil {
		return err
	}
	cfg.Store.Driver = "embedded"
	cfg.Store.Path = filepath.Join(dir, "authgate.db")
	// On loopback the demo is reached as http://localhost:PORT: the one
	// plain-http origin browsers offer passkeys on (an IP address cannot
	// be a WebAuthn RP ID), so the demo shows them, passwordless too.
	url := "http://" + gwLn.Addr().String() + "/"
	if ap, err := netip.ParseAddrPort(gwLn.Addr().String()); err == nil && ap.Addr().IsLoopback() {
		cfg.PublicURL = fmt.Sprintf("http://localhost:%d", ap.Port())
		url = cfg.PublicURL + "/"
	}
	cfg.WebAuthn.Passwordless = true
	cfg.TwoFactor.Mode = config.ModeRequired
	cfg.TwoFactor.Issuer = "authgate demo"
	cfg.Log.Format = "console"
	cfg.Routes = []config.Route{{
		Name: "demo-panel", PathPrefix: "/", Upstream: "http://" + panelLn.Addr().String(),
		Policy:          config.PolicyTwoFactor,
		IdentityHeaders: config.IdentityHeaders{User: "Remote-User", Groups: "Remote-Groups"},
	}}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, &cfg, log, server.Options{})
	if err != nil {
		return err
	}
	pw, err := seedDemoAdmin(ctx, &cfg, srv.Store())
	if err != nil {
		_ = srv.Close()
		return err
	}
	cfgPath, err := writeDemoConfig(&cfg)
	if err != nil {
		_ = srv.Close()
		return err
	}
	fmt.Fprintf(stdout, `
authgate demo is running.

  Open:      %s   (your account: %saccount, admin area: %sadmin)
  Username:  admin
  Password:  %s   (shown once; the demo forgets everything when it stops)

  Data:      %s
  Command line against this demo, e.g.:
             authgate user add alice --config %s

A demo "legacy panel" listens on http://%s; the gateway lets nobody
through to it without signing in. (In production the panel's own port must be
firewalled or bound to loopback, so the gateway is the only way in.)
Two-factor mode is "required", so the
first sign-in walks you through setting up an authenticator app (Google
Authenticator, Aegis, 1Password, ...) with a QR code, then asks for a code.
Then add a passkey or security key on your account page: the next sign-in
offers it after the password, and "Sign in with a passkey" needs no password.

Try: the panel's pages, its settings form, "restart" (an absolute redirect the
gateway rewrites), the WebSocket console, and sign out at /.authgate/logout.
Press Ctrl-C to stop.

`, url, url+".authgate/", url+".authgate/", pw, dir, cfgPath, panelLn.Addr())
	err = srv.Serve(ctx, gwLn)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// writeDemoConfig writes a config file for the command line next to the
// demo's data (deleted with it): the same store, key and routes, so
// `authgate user add --config FILE` talks to the running demo through its
// control socket. It returns the file's path.
func writeDemoConfig(cfg *config.Config) (string, error) {
	if err := os.WriteFile(cfg.SecretKeyFile, []byte(cfg.SecretKey+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo: write key: %w", err)
	}
	r := cfg.Routes[0]
	text := fmt.Sprintf(`# Written by authgate demo for the command line; deleted when it stops.
listen: %q
data_dir: %q
secret_key_file: %q
store:
  driver: embedded
  path: %q
two_factor:
  mode: %q
  issuer: %q
routes:
  - name: %q
    path_prefix: %q
    upstream: %q
`, cfg.Listen, cfg.DataDir, cfg.SecretKeyFile, cfg.Store.Path, cfg.TwoFactor.Mode, cfg.TwoFactor.Issuer, r.Name, r.PathPrefix, r.Upstream)
	path := filepath.Join(cfg.DataDir, "authgate.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return "", fmt.Errorf("demo: write config: %w", err)
	}
	return path, nil
}

// seedDemoAdmin creates the demo's "admin" user with a random password,
// which it returns.
func seedDemoAdmin(ctx context.Context, cfg *config.Config, st store.Store) (string, error) {
	pw, err := randomPassword()
	if err != nil {
		return "", err
	}
	hash, err := password.NewHasher(password.Params{
		MemoryKiB: cfg.Password.Argon2.MemoryKiB, Iterations: cfg.Password.Argon2.Iterations, Parallelism: cfg.Password.Argon2.Parallelism,
	}, rand.Reader).Hash(pw)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	u := store.User{Name: "admin", PasswordHash: hash, Role: store.RoleAdmin, Groups: []string{"admins"}, CreatedAt: now, UpdatedAt: now}
	if err := st.CreateUser(ctx, u); err != nil {
		return "", err
	}
	return pw, nil
}

func randomKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func randomPassword() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
