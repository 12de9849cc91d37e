// Command authgate is a reverse-proxy authentication gateway: password
// plus TOTP in front of a legacy web panel. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `authgate: password + TOTP gateway in front of a legacy web panel

Usage:
  authgate serve [--config PATH]            run the gateway (config also from AUTHGATE_CONFIG)
  authgate demo [--listen ADDR]             try it out: demo panel + gateway on 127.0.0.1:8080
  authgate demo-panel [--listen ADDR]       run only the built-in demo "legacy panel" upstream
  authgate config check [--config PATH]     validate a config file; prints every problem, exit 1 if any
  authgate user add NAME [--admin] [--group G]... [--password-stdin]
  authgate user list
  authgate user passwd NAME [--password-stdin]
  authgate user delete NAME
  authgate user import-htpasswd FILE        import bcrypt entries of an htpasswd file
  authgate version

The user commands take --config PATH too and work on the store the server
uses, also while it runs (embedded store: through the server's control
socket in data_dir; Redis: directly).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks a command-line mistake (exit 2).
var errUsage = errors.New("usage")

// run dispatches a command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "demo-panel":
		err = cmdDemoPanel(ctx, args[1:], stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "user":
		err = cmdUser(ctx, args[1:], stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "authgate", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "authgate: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ec exitCode
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "authgate: %v\n", err)
		return 2
	case errors.As(err, &ec):
		return int(ec)
	default:
		fmt.Fprintf(stderr, "authgate: %v\n", err)
		return 1
	}
}

// exitCode is an error that only sets the exit status (the command already
// printed what went wrong).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
