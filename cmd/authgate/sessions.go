package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/authgate/authgate/gateway/users"
)

// sessionsCommands are "authgate sessions ...".
var sessionsCommands = []adminCmd{
	{
		name: "list", usage: "authgate sessions list USER [--config PATH]", minArgs: 1, maxArgs: 1,
		check: checkNames, run: sessionsList,
	},
	{
		name: "revoke", usage: "authgate sessions revoke USER [--config PATH]", minArgs: 1, maxArgs: 1,
		check: checkNames, run: sessionsRevoke,
	},
}

func cmdSessions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runAdminGroup(ctx, "sessions", sessionsCommands, args, stdout, stderr)
}

func sessionsList(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error {
	ss, err := a.Sessions(ctx, pos[0])
	if err != nil {
		return userError(err, pos[0])
	}
	if len(ss) == 0 {
		fmt.Fprintf(stdout, "%s has no active sessions\n", pos[0])
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tLAST SEEN\tIP\t2FA\tUSER AGENT")
	for _, s := range ss {
		tfa := "no"
		if s.TwoFactor {
			tfa = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, when(s.CreatedAt), when(s.LastSeenAt), cell(s.IP), tfa, cell(s.UserAgent))
	}
	return tw.Flush()
}

func sessionsRevoke(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error {
	n, err := a.RevokeSessions(ctx, pos[0])
	if err != nil {
		return userError(err, pos[0])
	}
	fmt.Fprintf(stdout, "ended %d session(s) of %s\n", n, pos[0])
	return nil
}
