package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/server"
)

// newFlags returns a FlagSet that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
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

// loadConfig loads and validates; problems are printed one per line.
func loadConfig(path string, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "authgate: config %s is invalid:\n%v\n", path, err)
		return nil, exitCode(1)
	}
	return cfg, nil
}

// newLogger builds the root logger from the log section.
func newLogger(l config.Log, w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(l.Level)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("log.level: %w", err)
	}
	if l.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

func cmdServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	cfgFlag := fs.String("config", "", "config file (default $AUTHGATE_CONFIG or /etc/authgate/authgate.yaml)")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	cfg, err := loadConfig(configPath(*cfgFlag), stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, os.Stderr)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		log.Warn().Str("key", w.Key).Int("line", w.Line).Msg(w.Msg)
	}
	srv, err := server.New(ctx, cfg, log, server.Options{})
	if err != nil {
		return err
	}
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
	cfgFlag := fs.String("config", "", "config file (default $AUTHGATE_CONFIG or /etc/authgate/authgate.yaml)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitCode(2)
	}
	path := configPath(*cfgFlag)
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stdout, "%s: %v\n", path, err)
		return exitCode(1)
	}
	verr := cfg.Validate()
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "%s: warning: %s\n", path, w.String())
	}
	if verr != nil {
		var probs config.Problems
		if errors.As(verr, &probs) {
			for _, p := range probs {
				fmt.Fprintf(stdout, "%s: %s\n", path, p.String())
			}
		} else {
			fmt.Fprintf(stdout, "%s: %v\n", path, verr)
		}
		return exitCode(1)
	}
	fmt.Fprintf(stdout, "%s: OK (%d routes, store %s)\n", path, len(cfg.Routes), cfg.Store.Driver)
	return nil
}
