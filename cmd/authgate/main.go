// Command authgate is a reverse-proxy authentication gateway: password
// plus TOTP in front of a legacy web panel. Run "authgate help" for the
// commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `authgate: password + TOTP gateway in front of a legacy web panel

Usage:
  authgate serve [--config PATH]          run the gateway
  authgate demo [--listen ADDR]           try it out: demo panel behind the gateway on ADDR
                                          (default 127.0.0.1:8080), a throw-away store and a
                                          generated admin password; Ctrl-C ends it
  authgate demo-panel [--listen ADDR]     run only the demo "legacy panel" (default 127.0.0.1:9000)
  authgate config check [--config PATH]   validate a config file; prints every problem, exit 1 if any
  authgate doctor [--config PATH]         diagnose: config warnings, server clock vs NTP, store
                                          reachability and latency, clock drift seen in failed
                                          codes; each problem with its fix, exit 1 if any
  authgate user add NAME [--admin] [--group G]... [--password-stdin]
  authgate user list
  authgate user passwd NAME [--password-stdin]
  authgate user delete NAME
  authgate user import-htpasswd FILE      add the bcrypt users of an htpasswd file; existing users
                                          are kept, other lines reported (exit 1 if any)
  authgate 2fa status [USER]              2FA mode and issuer, and every user's second factors
                                          (or one user's: app, each passkey, recovery codes left)
  authgate 2fa disable USER...            remove the users' authenticator app, passkeys and recovery
                                          codes and end their sessions (lost phone); unknown names
                                          change nothing
  authgate 2fa mode off|on|required       set the 2FA mode for every instance
  authgate 2fa issuer NAME                set the Issuer shown in authenticator apps ("" = default)
  authgate sessions list USER             show the user's active sessions
  authgate sessions revoke USER           end all of the user's sessions
  authgate bans list                      active sign-in bans (user names and client addresses)
  authgate bans lift USER|IP|KEY...       lift bans early and clear their failure counts
  authgate audit [--failures|--all] [--since DURATION|RFC3339] [--limit N]
                                          sign-ins and changes, newest first (--failures: failed
                                          sign-ins and bans, kept apart; --all: both, by time)
  authgate backup FILE [--force]          write a backup of the store to FILE, also while the server
                                          runs (embedded: a copy of the file; Redis: a dump of the
                                          keys under key_prefix, without sessions); an existing FILE
                                          is refused unless --force
  authgate restore FILE [--force]         restore a backup made with the same secret key; sessions
                                          are never restored: everyone signs in again. Embedded:
                                          stop the server first; the replaced file is kept as
                                          PATH.before-restore-TIME. Redis: refused while key_prefix
                                          holds users unless --force (then every key under it is
                                          replaced); running gateways drop their caches
  authgate version
  authgate help

The config file is --config PATH, else $AUTHGATE_CONFIG, else
/etc/authgate/authgate.yaml. The user, 2fa, sessions, bans, audit, backup
and restore commands take --config too (flags may come before or after
NAME or FILE) and work on the store the server uses, also while it runs
(restore of the embedded store excepted): the embedded store through the
server's control socket in data_dir, Redis directly. Their changes are
recorded in the audit trail with actor "cli". Without --password-stdin,
add and passwd ask for the password twice on the terminal.

Environment: AUTHGATE_CONFIG; AUTHGATE_SECRET_KEY (64 hex characters,
overrides secret_key_file); AUTHGATE_REDIS_PASSWORD;
AUTHGATE_REDIS_SENTINEL_PASSWORD.

Exit status: 0 success, 1 failure, 2 command-line mistake.

Reference (in the source tree): docs/cli.md (every command),
docs/configuration.md (every config key), configs/authgate.example.yaml.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal starts a graceful shutdown; restoring the
		// default lets a second Ctrl-C end a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// versionString is the -ldflags version, else the module version of a
// "go install"ed binary, else "dev".
func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// buildInfo describes the build: commit and time when built from a git
// checkout (go build records them), the Go version and platform.
func buildInfo() string {
	parts := []string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, at, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+changes"
				}
			}
		}
		if rev != "" {
			parts = append(parts, "commit "+rev[:min(len(rev), 12)]+dirty)
		}
		if at != "" {
			parts = append(parts, "built from a "+at+" checkout")
		}
	}
	parts = append(parts, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return "(" + strings.Join(parts, ", ") + ")"
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
	case "doctor":
		err = cmdDoctor(ctx, args[1:], time.Now, stdout, stderr)
	case "user":
		err = cmdUser(ctx, args[1:], stdin, stdout, stderr)
	case "2fa":
		err = cmd2FA(ctx, args[1:], stdout, stderr)
	case "sessions":
		err = cmdSessions(ctx, args[1:], stdout, stderr)
	case "bans":
		err = cmdBans(ctx, args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(ctx, args[1:], time.Now, stdout, stderr)
	case "backup":
		err = cmdBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		err = cmdRestore(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "authgate", versionString(), buildInfo())
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
