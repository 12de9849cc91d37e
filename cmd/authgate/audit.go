package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/users"
)

const auditUsage = "authgate audit [--failures|--all] [--since DURATION|RFC3339] [--limit N] [--config PATH]"

// cmdAudit prints the audit trail, newest first: sign-ins and changes, or
// with --failures the failed sign-ins and bans, or with --all both.
func cmdAudit(ctx context.Context, args []string, now func() time.Time, stdout, stderr io.Writer) error {
	fs := newFlags("audit", stderr)
	cfgFlag := fs.String("config", "", configFlagHelp)
	failures := fs.Bool("failures", false, fmt.Sprintf("failed sign-ins and the bans they started (kept apart: the last %d) instead of sign-ins and changes (the last %d)", audit.KeepFailures, audit.KeepChanges))
	all := fs.Bool("all", false, "both lists, merged by time")
	sinceFlag := fs.String("since", "", "only events newer than this: a duration back from now (30m, 24h) or an RFC 3339 time")
	limit := fs.Int("limit", 0, "at most N events (default: all the store keeps)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n", auditUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: authgate audit takes no argument %q", errUsage, pos[0])
	}
	if *limit < 0 {
		return fmt.Errorf("%w: --limit must be 0 or more", errUsage)
	}
	view := users.AuditChanges
	switch {
	case *failures && *all:
		return fmt.Errorf("%w: --failures and --all exclude each other", errUsage)
	case *failures:
		view = users.AuditFailures
	case *all:
		view = users.AuditAll
	}
	since, err := parseSince(*sinceFlag, now)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(configPath(*cfgFlag), stderr)
	if err != nil {
		return err
	}
	a, closeFn, err := openAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeFn()
	events, err := a.Audit(ctx, view, since, *limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tIP\tDETAIL")
	for _, ev := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", when(ev.Time), cell(ev.Actor), cell(ev.Action),
			cell(ev.Target), cell(ev.IP), cell(ev.Detail))
	}
	return tw.Flush()
}

// parseSince reads --since: "" (everything), a positive duration back
// from now, or an RFC 3339 time.
func parseSince(s string, now func() time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%w: --since %q: the duration must be positive", errUsage, s)
		}
		return now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: --since %q: want a duration (30m, 24h) or an RFC 3339 time (2026-03-14T09:00:00Z)", errUsage, s)
	}
	return t, nil
}
