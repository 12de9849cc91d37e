package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/server"
)

const configFlagHelp = "config file (default $AUTHGATE_CONFIG, else /etc/authgate/authgate.yaml)"

// newFlags returns a FlagSet that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage of authgate %s:\n", name)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a command's flags; it accepts no positional
// arguments. -h/--help prints the flags and succeeds; a bad flag is a
// usage error (exit 2, already explained by the flag package).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitCode(0)
		}
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: authgate %s takes no argument %q", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

// configPath resolves --config, then AUTHGATE_CONFIG, then the default.
func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env := os.Getenv("AUTHGATE_CONFIG"); env != "" {
		return env
	}
	return "/etc/authgate/authgate.yaml"
}

// loadConfig loads and validates; every problem is printed, one per line.
func loadConfig(path string, stderr io.Writer) (*config.Config, error) {
	rep, err := checkConfigFile(path)
	if err != nil {
		return nil, err
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintf(stderr, "authgate: config %s is invalid:\n", path)
		for _, p := range rep.Problems {
			fmt.Fprintf(stderr, "  %s\n", p.String())
		}
		return nil, exitCode(1)
	}
	return rep.Config, nil
}

// newLogger builds the root logger from the log section.
func newLogger(l config.Log, w io.Writer) (zerolog.Logger, error) {
	log, _, err := newReloadableLogger(l, w)
	return log, err
}

// newReloadableLogger is newLogger with a level that can change while
// the logger is in use (config reload).
func newReloadableLogger(l config.Log, w io.Writer) (zerolog.Logger, *levelWriter, error) {
	level, err := zerolog.ParseLevel(l.Level)
	if err != nil {
		return zerolog.Logger{}, nil, fmt.Errorf("log.level: %w", err)
	}
	if l.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	lw := newLevelWriter(w, level)
	return zerolog.New(lw).Level(zerolog.TraceLevel).With().Timestamp().Logger(), lw, nil
}

// libraryLog is the standard logger's output while serving: each line
// becomes one structured warning.
type libraryLog struct{ log zerolog.Logger }

func (l libraryLog) Write(p []byte) (int, error) {
	l.log.Warn().Str("component", "library").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	cfgFlag := fs.String("config", "", configFlagHelp)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// SIGHUP reloads the config; caught from the start so an early one
	// does not end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	path := configPath(*cfgFlag)
	cfg, err := loadConfig(path, stderr)
	if err != nil {
		return err
	}
	logw := stderr
	if d := cfg.Log.FlushInterval; d > 0 {
		bl := newBufferedLog(stderr, d)
		defer bl.Close()
		logw = bl
	}
	log, levels, err := newReloadableLogger(cfg.Log, logw)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn().Str("key", w.Key).Int("line", w.Line).Msg(w.Msg)
	}
	// Libraries that write to the standard logger (net/http's transport:
	// "Unsolicited response received on idle HTTP channel", …) would put
	// plain text into the JSON log: route them through zerolog too.
	stdlog.SetFlags(0)
	stdlog.SetOutput(libraryLog{log})
	applyRuntime(cfg.Server, os.Getenv, log)
	srv, err := server.New(ctx, cfg, log, server.Options{SetLogLevel: levels.SetLevel})
	if err != nil {
		return err
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info().Str("path", path).Msg("SIGHUP: reloading the config")
				_ = srv.Reload(path) // logs every problem; the running config stays
			}
		}
	}()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return fmt.Errorf("%w: authgate config check [--config PATH]", errUsage)
	}
	fs := newFlags("config check", stderr)
	cfgFlag := fs.String("config", "", configFlagHelp)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	path := configPath(*cfgFlag)
	rep, err := checkConfigFile(path)
	if err != nil {
		fmt.Fprintf(stdout, "%s: %v\n", path, err)
		return exitCode(1)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(stdout, "%s: warning: %s\n", path, w.String())
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "%s: %s\n", path, p.String())
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintf(stdout, "%s: %d problem(s)\n", path, len(rep.Problems))
		return exitCode(1)
	}
	cfg := rep.Config
	fmt.Fprintf(stdout, "%s: OK (%d route(s), store %s)\n", path, len(cfg.Routes), cfg.Store.Driver)
	for _, r := range cfg.Routes {
		if d := describeRoutePaths(r); d != "" {
			fmt.Fprintf(stdout, "%s: route %s: %s\n", path, r.Name, d)
		}
	}
	fmt.Fprintf(stdout, "%s: 2fa mode: %s\n", path, effectiveMode(context.Background(), cfg))
	fmt.Fprintf(stdout, "%s: passkeys: %s\n", path, describePasskeys(cfg.Passkeys()))
	return nil
}

// describePasskeys says whether passkeys are offered and with which
// relying party, or why not.
func describePasskeys(p config.PasskeySettings) string {
	if !p.Available {
		return "unavailable: " + p.Reason
	}
	s := fmt.Sprintf("offered (RP ID %s, origins %s, user verification %s)", p.RPID, strings.Join(p.Origins, " "), p.UserVerification)
	if p.Passwordless {
		s += "; passwordless sign-in on"
	}
	return s
}
