package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
)

// bansCommands are "authgate bans ...".
var bansCommands = []adminCmd{
	{
		name: "list", usage: "authgate bans list [--config PATH]", minArgs: 0, maxArgs: 0,
		run: bansList,
	},
	{
		name: "lift", usage: "authgate bans lift USER|IP|KEY... [--config PATH]", minArgs: 1, maxArgs: -1,
		check: checkBanTargets, run: bansLift,
	},
}

func cmdBans(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runAdminGroup(ctx, "bans", bansCommands, args, stdout, stderr)
}

func checkBanTargets(pos []string) error {
	for _, p := range pos {
		if strings.TrimSpace(p) == "" {
			return fmt.Errorf("%w: an empty ban target", errUsage)
		}
	}
	return nil
}

func bansList(ctx context.Context, a users.Admin, _ []string, stdout io.Writer) error {
	bs, err := a.Bans(ctx)
	if err != nil {
		return err
	}
	if len(bs) == 0 {
		fmt.Fprintln(stdout, "no active bans")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tBANNED\tFAILURES\tSINCE\tUNTIL\tIN A ROW\tKEY")
	for _, b := range bs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\n", cell(b.Kind), cell(b.Subject), b.Failures, when(b.Since), when(b.Until), b.Level, cell(b.Key))
	}
	return tw.Flush()
}

// bansLift lifts every target's bans; a target with none is reported and
// makes the exit status 1, the others are still lifted.
func bansLift(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error {
	var errs []error
	for _, target := range pos {
		lifted, err := a.LiftBan(ctx, target)
		for _, b := range lifted {
			fmt.Fprintf(stdout, "lifted the %s ban of %s (it ran until %s)\n", b.Kind, cell(b.Subject), when(b.Until))
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			errs = append(errs, fmt.Errorf("no active ban for %q", cell(target)))
		case errors.Is(err, users.ErrInvalid):
			errs = append(errs, userError(err, ""))
		case err != nil:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
