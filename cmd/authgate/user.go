package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/control"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/users"
)

// multiFlag collects repeated --group values.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// openAdmin gives the user commands the store the server uses: Redis
// directly; the embedded file directly when no server holds it, else
// through the running server's control socket.
func openAdmin(ctx context.Context, cfg *config.Config) (users.Admin, func(), error) {
	if cfg.Store.Driver == "embedded" {
		if _, err := os.Stat(server.ControlSocketPath(cfg)); err == nil {
			c := control.NewClient(server.ControlSocketPath(cfg))
			_, err := c.List(ctx)
			if err == nil {
				return c, func() {}, nil
			}
			if !errors.Is(err, control.ErrUnavailable) {
				// A server answered but failed: say so rather than wait
				// for the file lock it holds.
				return nil, nil, err
			}
			// Nobody answers: a socket left by a crash; use the file.
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
	src := settings.New(s, settings.Values{Mode: cfg.TwoFactor.Mode, Issuer: cfg.TwoFactor.Issuer}, 0, time.Now)
	// The events go to the store's audit list; the command's own output
	// is what the operator reads, so the recorder does not log.
	rec := audit.New(s, zerolog.Nop(), time.Now)
	return users.NewService(s, src, rec, server.DefaultIssuer(cfg), time.Now), func() { _ = s.Close() }, nil
}

// cmdUser runs "authgate user SUB ...": the admin command group whose
// commands read a password or a file before the store is opened.
func cmdUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runAdminGroup(ctx, "user", userCommands(stdin, stderr), args, stdout, stderr)
}

// userCommands are the user subcommands; stdin and stderr are where a
// new password is read and an import's rejected lines reported.
func userCommands(stdin io.Reader, stderr io.Writer) []adminCmd {
	var (
		admin, pwStdin bool
		groups         multiFlag
		hash           string // the new password's hash (add, passwd)
		entries        []users.ImportEntry
		rejected       int // import lines not imported
	)
	passwordFlag := func(fs *flag.FlagSet) {
		fs.BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")
	}
	// readHash reads the new password and hashes it with the config's
	// parameters, before the store is opened.
	readHash := func(cfg *config.Config, _ []string) error {
		pw, err := readPassword(stdin, stderr, pwStdin)
		if err != nil {
			return err
		}
		hash, err = password.NewHasher(password.Params{
			MemoryKiB: cfg.Password.Argon2.MemoryKiB, Iterations: cfg.Password.Argon2.Iterations, Parallelism: cfg.Password.Argon2.Parallelism,
		}, rand.Reader).Hash(pw)
		return err
	}
	return []adminCmd{
		{
			name: "add", usage: "authgate user add NAME [--admin] [--group G]... [--password-stdin] [--config PATH]", minArgs: 1, maxArgs: 1,
			flags: func(fs *flag.FlagSet) {
				fs.BoolVar(&admin, "admin", false, "give the admin role")
				fs.Var(&groups, "group", "add to group G (repeatable)")
				passwordFlag(fs)
			},
			check: checkNames, prepare: readHash,
			run: func(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error {
				role := store.RoleUser
				if admin {
					role = store.RoleAdmin
				}
				if err := a.Add(ctx, pos[0], hash, role, groups); err != nil {
					if errors.Is(err, store.ErrExists) {
						return fmt.Errorf("user %q already exists (use `authgate user passwd %s` to change the password)", pos[0], pos[0])
					}
					return err
				}
				fmt.Fprintf(stdout, "user %s added (role %s)\n", pos[0], role)
				return nil
			},
		},
		{
			name: "list", usage: "authgate user list [--config PATH]", minArgs: 0, maxArgs: 0,
			run: func(ctx context.Context, a users.Admin, _ []string, stdout io.Writer) error {
				list, err := a.List(ctx)
				if err != nil {
					return err
				}
				return printUsers(stdout, list)
			},
		},
		{
			name: "passwd", usage: "authgate user passwd NAME [--password-stdin] [--config PATH]", minArgs: 1, maxArgs: 1,
			flags: passwordFlag, check: checkNames, prepare: readHash,
			run: func(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error {
				if err := a.SetPassword(ctx, pos[0], hash); err != nil {
					return notFound(err, pos[0])
				}
				fmt.Fprintf(stdout, "password of %s changed; their sessions were ended\n", pos[0])
				return nil
			},
		},
		{
			name: "delete", usage: "authgate user delete NAME [--config PATH]", minArgs: 1, maxArgs: 1,
			check: checkNames,
			run: func(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error {
				if err := a.Delete(ctx, pos[0]); err != nil {
					return notFound(err, pos[0])
				}
				fmt.Fprintf(stdout, "user %s deleted; their sessions were ended\n", pos[0])
				return nil
			},
		},
		{
			name: "import-htpasswd", usage: "authgate user import-htpasswd FILE [--config PATH]", minArgs: 1, maxArgs: 1,
			prepare: func(_ *config.Config, pos []string) (err error) {
				entries, rejected, err = readHtpasswd(pos[0], stderr)
				return err
			},
			run: func(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error {
				res, err := a.Import(ctx, entries)
				fmt.Fprintf(stdout, "imported %d user(s)", len(res.Added))
				if len(res.Skipped) > 0 {
					fmt.Fprintf(stdout, "; skipped %d existing: %s", len(res.Skipped), strings.Join(res.Skipped, ", "))
				}
				fmt.Fprintln(stdout)
				if err != nil {
					return err
				}
				if rejected > 0 {
					return fmt.Errorf("%d line(s) of %s were not imported (see above)", rejected, pos[0])
				}
				return nil
			},
		},
	}
}

// notFound turns the store's not-found error into a message naming the user.
func notFound(err error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", name)
	}
	return err
}

// readHtpasswd parses an htpasswd file. Lines that cannot be imported
// (other hash schemes, names authgate does not accept) are reported to
// stderr and counted; the rest are returned.
func readHtpasswd(path string, stderr io.Writer) ([]users.ImportEntry, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	parsed, problems := password.ParseHtpasswd(f)
	type rejection struct {
		line int // 0: not about one line (a read error), reported last
		msg  string
	}
	var rejects []rejection
	for _, p := range problems {
		r := rejection{msg: p.Error()}
		var le *password.LineError
		if errors.As(p, &le) {
			r.line = le.Line
		}
		rejects = append(rejects, r)
	}
	var entries []users.ImportEntry
	for _, e := range parsed {
		// htpasswd allows names authgate does not (e.g. "a/b"); one such
		// name must not block the whole import.
		if err := users.ValidateName(e.User); err != nil {
			rejects = append(rejects, rejection{e.Line, fmt.Sprintf("htpasswd line %d: %v", e.Line, userError(err, ""))})
			continue
		}
		entries = append(entries, users.ImportEntry{Name: e.User, PasswordHash: e.Hash})
	}
	slices.SortStableFunc(rejects, func(a, b rejection) int {
		switch {
		case a.line == b.line:
			return 0
		case a.line == 0:
			return 1
		case b.line == 0:
			return -1
		}
		return a.line - b.line
	})
	for _, r := range rejects {
		fmt.Fprintf(stderr, "%s: %s (not imported)\n", path, r.msg)
	}
	rejected := len(rejects)
	return entries, rejected, nil
}

func printUsers(w io.Writer, list []users.UserInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tGROUPS\t2FA\tSESSIONS\tCREATED")
	for _, u := range list {
		tfa := "not set up"
		if u.TwoFactor {
			tfa = factorsText(u) // "app", "2 keys", "app+1 key"
		}
		groups := strings.Join(u.Groups, ",")
		if groups == "" {
			groups = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", u.Name, u.Role, groups, tfa, u.Sessions, u.CreatedAt.Local().Format(time.DateTime))
	}
	return tw.Flush()
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
	case utf8.RuneCountInString(pw) < 8:
		return errors.New("the password must have at least 8 characters")
	case len(pw) > 1024:
		return errors.New("the password must have at most 1024 bytes")
	}
	return nil
}
