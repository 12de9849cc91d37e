package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/useradmin"
)

// multiFlag collects repeated --group values.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// openAdmin gives the user commands the store the server uses: Redis
// directly; the embedded file directly when no server holds it, else
// through the running server's control socket.
func openAdmin(ctx context.Context, cfg *config.Config) (useradmin.Admin, func(), error) {
	if cfg.Store.Driver == "embedded" {
		if _, err := os.Stat(server.ControlSocketPath(cfg)); err == nil {
			c := useradmin.NewClient(server.ControlSocketPath(cfg))
			if _, err := c.List(ctx); err == nil {
				return c, func() {}, nil
			}
		}
	}
	st, err := server.OpenStore(ctx, cfg, time.Now)
	if errors.Is(err, embedded.ErrLocked) {
		return nil, nil, fmt.Errorf("%s is in use by another process and its control socket %s does not answer: %w",
			cfg.Store.Path, server.ControlSocketPath(cfg), err)
	}
	if err != nil {
		return nil, nil, err
	}
	var s store.Store = st
	return useradmin.NewService(s, time.Now), func() { _ = s.Close() }, nil
}

func cmdUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: authgate user add|list|passwd|delete|import-htpasswd", errUsage)
	}
	sub, rest := args[0], args[1:]
	fs := newFlags("user "+sub, stderr)
	cfgFlag := fs.String("config", "", "config file (default $AUTHGATE_CONFIG or /etc/authgate/authgate.yaml)")
	admin := fs.Bool("admin", false, "user add: give the admin role")
	var groups multiFlag
	fs.Var(&groups, "group", "user add: add to group (repeatable)")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	// Flags may follow the positional NAME: parse around it.
	var pos []string
	for {
		if err := fs.Parse(rest); err != nil {
			return exitCode(2)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	want := map[string]int{"add": 1, "list": 0, "passwd": 1, "delete": 1, "import-htpasswd": 1}
	n, ok := want[sub]
	if !ok {
		return fmt.Errorf("%w: unknown user command %q (add, list, passwd, delete, import-htpasswd)", errUsage, sub)
	}
	if len(pos) != n {
		return fmt.Errorf("%w: authgate user %s takes %d argument(s), got %d", errUsage, sub, n, len(pos))
	}
	cfg, err := loadConfig(configPath(*cfgFlag), stderr)
	if err != nil {
		return err
	}
	hasher := password.NewHasher(password.Params{
		MemoryKiB: cfg.Password.Argon2.MemoryKiB, Iterations: cfg.Password.Argon2.Iterations, Parallelism: cfg.Password.Argon2.Parallelism,
	}, rand.Reader)

	// Read secrets and files before touching the store.
	var hash string
	var entries []useradmin.ImportEntry
	switch sub {
	case "add", "passwd":
		pw, err := readPassword(stdin, stderr, *pwStdin)
		if err != nil {
			return err
		}
		if hash, err = hasher.Hash(pw); err != nil {
			return err
		}
	case "import-htpasswd":
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		parsed, problems := password.ParseHtpasswd(f)
		f.Close()
		for _, p := range problems {
			fmt.Fprintf(stderr, "%s: %v\n", pos[0], p)
		}
		for _, e := range parsed {
			entries = append(entries, useradmin.ImportEntry{Name: e.User, PasswordHash: e.Hash})
		}
	}

	a, closeFn, err := openAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeFn()
	switch sub {
	case "add":
		role := store.RoleUser
		if *admin {
			role = store.RoleAdmin
		}
		if err := a.Add(ctx, pos[0], hash, role, groups); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s added (role %s)\n", pos[0], role)
	case "passwd":
		if err := a.SetPassword(ctx, pos[0], hash); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s changed; their sessions were ended\n", pos[0])
	case "delete":
		if err := a.Delete(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s deleted; their sessions were ended\n", pos[0])
	case "list":
		users, err := a.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tGROUPS\t2FA\tSESSIONS\tCREATED")
		for _, u := range users {
			tfa := "not set up"
			if u.TwoFactor {
				tfa = "enabled"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", u.Name, u.Role, strings.Join(u.Groups, ","), tfa, u.Sessions, u.CreatedAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "import-htpasswd":
		res, err := a.Import(ctx, entries)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "imported %d user(s)", len(res.Added))
		if len(res.Skipped) > 0 {
			fmt.Fprintf(stdout, "; skipped %d existing: %s", len(res.Skipped), strings.Join(res.Skipped, ", "))
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

// readPassword reads a new password: one line from stdin with
// --password-stdin, else twice from the terminal without echo.
func readPassword(stdin io.Reader, stderr io.Writer, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		return pw, checkNewPassword(pw)
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", fmt.Errorf("%w: standard input is not a terminal; use --password-stdin", errUsage)
	}
	fmt.Fprint(stderr, "New password: ")
	a, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(stderr, "Repeat password: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords do not match")
	}
	return string(a), checkNewPassword(string(a))
}

func checkNewPassword(pw string) error {
	switch {
	case len(pw) < 8:
		return errors.New("the password must have at least 8 characters")
	case len(pw) > 1024:
		return errors.New("the password must have at most 1024 characters")
	}
	return nil
}
