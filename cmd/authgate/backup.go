package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/authgate/authgate/gateway/backup"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/store/redisstore"
)

// parseFileArgs parses "FILE [--force] [--config PATH]" in any order.
func parseFileArgs(name, use, forceHelp string, args []string, stderr io.Writer) (file, cfgPath string, force bool, err error) {
	fs := newFlags(name, stderr)
	cfgFlag := fs.String("config", "", configFlagHelp)
	forceFlag := fs.Bool("force", false, forceHelp)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n", use)
		fs.PrintDefaults()
	}
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", "", false, exitCode(0)
			}
			return "", "", false, exitCode(2)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", "", false, fmt.Errorf("%w: %s", errUsage, use)
	}
	return pos[0], configPath(*cfgFlag), *forceFlag, nil
}

func embeddedOf(cfg *config.Config) backup.Embedded {
	return backup.Embedded{Path: cfg.Store.Path, Socket: server.ControlSocketPath(cfg)}
}

// openRedis opens the configured Redis store.
func openRedis(ctx context.Context, cfg *config.Config) (*redisstore.Store, error) {
	st, err := server.OpenStore(ctx, cfg, time.Now)
	if err != nil {
		return nil, err
	}
	rs, ok := st.(*redisstore.Store)
	if !ok {
		_ = st.Close()
		return nil, fmt.Errorf("store.driver is %q, not redis", cfg.Store.Driver)
	}
	return rs, nil
}

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	file, path, force, err := parseFileArgs("backup", "authgate backup FILE [--force] [--config PATH]",
		"replace FILE if it exists", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path, stderr)
	if err != nil {
		return err
	}
	if cfg.Store.Driver == "redis" {
		st, err := openRedis(ctx, cfg)
		if err != nil {
			return err
		}
		defer st.Close()
		res, err := backup.BackupRedis(ctx, st, file, force, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "backup of Redis prefix %q written to %s: %d user(s), %d key(s), %d bytes\n", cfg.Store.Redis.KeyPrefix+":", file, res.Users, res.Keys, res.Bytes)
		fmt.Fprintln(stdout, "sessions, sign-in failure counts and bans are not in it; keep it as safe as the secret key (it holds password hashes and sealed TOTP secrets)")
		return nil
	}
	res, err := backup.BackupEmbedded(ctx, embeddedOf(cfg), file, force)
	if err != nil {
		return err
	}
	via := "from " + cfg.Store.Path
	if res.ViaServer {
		via = "by the running server"
	}
	fmt.Fprintf(stdout, "backup written to %s (%s): %d user(s), %d bytes\n", file, via, res.Users, res.Bytes)
	fmt.Fprintln(stdout, "keep it as safe as the secret key (it holds password hashes and sealed TOTP secrets); restoring it also needs that key")
	return nil
}

func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	file, path, force, err := parseFileArgs("restore", "authgate restore FILE [--force] [--config PATH]",
		"Redis: replace every key under key_prefix even when it holds users", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path, stderr)
	if err != nil {
		return err
	}
	if cfg.Store.Driver == "redis" {
		// Read the file before connecting: a wrong file is the likelier
		// mistake, and it changes nothing.
		b, err := backup.ReadRedis(file)
		if err != nil {
			return err
		}
		st, err := openRedis(ctx, cfg)
		if err != nil {
			return err
		}
		defer st.Close()
		info, err := st.Restore(ctx, b, redisstore.RestoreOptions{
			Force: force,
			Check: func(settings map[string]string) error { return server.CheckBackupKey(cfg, settings) },
		})
		if errors.Is(err, redisstore.ErrHasUsers) {
			return fmt.Errorf("%w: nothing was changed; add --force to replace every key under it with the backup", err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restored %s (made %s under prefix %q) into Redis prefix %q: %d user(s), %d key(s); %d key(s) that were there were removed\n",
			file, b.CreatedAt.Local().Format(time.DateTime), b.Prefix+":", cfg.Store.Redis.KeyPrefix+":", info.Users, info.Keys, info.Deleted)
		fmt.Fprintln(stdout, "no session was restored: everyone signs in again; running gateways were told to drop their caches")
		return nil
	}
	if force {
		return fmt.Errorf("%w: --force is for Redis; an embedded restore always keeps the replaced file", errUsage)
	}
	res, err := backup.RestoreEmbedded(ctx, file, embeddedOf(cfg), time.Now(), func(info embedded.Info) error {
		return server.CheckBackupKey(cfg, info.Settings)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s: %d user(s)\n", file, cfg.Store.Path, res.Info.Users)
	if res.Previous != "" {
		fmt.Fprintf(stdout, "the replaced store was kept as %s\n", res.Previous)
	}
	fmt.Fprintf(stdout, "all sessions (%d in the backup), sign-in failure counts and bans were dropped: everyone signs in again\n", res.DroppedSessions)
	return nil
}
