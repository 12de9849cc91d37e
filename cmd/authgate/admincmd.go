package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
)

// adminCmd is one subcommand of an admin command group ("authgate user",
// "2fa", "sessions", "bans"): positional arguments, --config and the
// command's own flags.
type adminCmd struct {
	name    string
	usage   string // the synopsis after "Usage: "
	minArgs int
	maxArgs int // -1: no limit
	// flags declares the command's own flags (nil: --config only).
	flags func(fs *flag.FlagSet)
	// check validates the arguments before the config is read.
	check func(pos []string) error
	// prepare runs with the config before the store is opened (reading
	// a password or a file); nil: nothing to prepare.
	prepare func(cfg *config.Config, pos []string) error
	run     func(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error
}

// runAdminGroup dispatches "authgate GROUP SUB ARGS...".
func runAdminGroup(ctx context.Context, group string, cmds []adminCmd, args []string, stdout, stderr io.Writer) error {
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.name
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		synopsis := fmt.Sprintf("authgate %s %s", group, strings.Join(names, "|"))
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintf(stderr, "Usage: %s ... [--config PATH]\n", synopsis)
			return exitCode(0)
		}
		return fmt.Errorf("%w: %s", errUsage, synopsis)
	}
	var spec *adminCmd
	for i := range cmds {
		if cmds[i].name == args[0] {
			spec = &cmds[i]
		}
	}
	if spec == nil {
		return fmt.Errorf("%w: unknown %s command %q (%s)", errUsage, group, args[0], strings.Join(names, ", "))
	}
	fs := newFlags(group+" "+spec.name, stderr)
	cfgFlag := fs.String("config", "", configFlagHelp)
	if spec.flags != nil {
		spec.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n", spec.usage)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) < spec.minArgs || spec.maxArgs >= 0 && len(pos) > spec.maxArgs {
		return fmt.Errorf("%w: %s", errUsage, spec.usage)
	}
	if spec.check != nil {
		if err := spec.check(pos); err != nil {
			return err
		}
	}
	cfg, err := loadConfig(configPath(*cfgFlag), stderr)
	if err != nil {
		return err
	}
	if spec.prepare != nil {
		if err := spec.prepare(cfg, pos); err != nil {
			return err
		}
	}
	a, closeFn, err := openAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeFn()
	return spec.run(ctx, a, pos, stdout)
}

// parseInterleaved parses flags that may come before, between or after
// the positional arguments, and returns the positional ones. -h/--help
// prints the usage and succeeds; a bad flag is a usage error (exit 2,
// already explained by the flag package).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitCode(0)
			}
			return nil, exitCode(2)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// checkNames validates user names given on the command line.
func checkNames(names []string) error {
	for _, n := range names {
		if err := users.ValidateName(n); err != nil {
			return userError(err, "")
		}
	}
	return nil
}

// userError names the user in a not-found error (unless name is "": the
// error names them) and tells a rejected argument without the package
// prefix.
func userError(err error, name string) error {
	if ie, ok := errors.AsType[*users.InvalidError](err); ok {
		return errors.New(ie.Message)
	}
	if errors.Is(err, store.ErrNotFound) && name != "" {
		return fmt.Errorf("no user %q", name)
	}
	return err
}

// when formats a time for a table cell: local time, "-" if unset.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// cell makes untrusted text (user agents, names typed at the login form,
// audit details) safe for one table cell on a terminal: control
// characters, which could drive the terminal or break the columns, and
// invalid UTF-8 become '?'; empty becomes "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		if r == utf8.RuneError && size == 1 || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
			unicode.Is(unicode.Bidi_Control, r) {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
