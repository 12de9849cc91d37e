package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/users"
)

// twoFACommands are "authgate 2fa ...".
var twoFACommands = []adminCmd{
	{
		name: "status", usage: "authgate 2fa status [USER] [--config PATH]", minArgs: 0, maxArgs: 1,
		check: checkNames, run: twoFAStatus,
	},
	{
		name: "disable", usage: "authgate 2fa disable USER... [--config PATH]", minArgs: 1, maxArgs: -1,
		check: checkNames, run: twoFADisable,
	},
	{
		name: "mode", usage: "authgate 2fa mode off|on|required [--config PATH]", minArgs: 1, maxArgs: 1,
		check: func(pos []string) error {
			if !settings.ValidMode(pos[0]) {
				return fmt.Errorf("%w: unknown 2FA mode %q (off, on or required)", errUsage, pos[0])
			}
			return nil
		},
		run: twoFAMode,
	},
	{
		name: "issuer", usage: `authgate 2fa issuer NAME [--config PATH]   (NAME "" = the default)`, minArgs: 1, maxArgs: 1,
		run: twoFAIssuer,
	},
}

func cmd2FA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runAdminGroup(ctx, "2fa", twoFACommands, args, stdout, stderr)
}

func twoFAStatus(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error {
	if len(pos) == 1 {
		return twoFAUser(ctx, a, pos[0], stdout)
	}
	set, err := a.Settings(ctx)
	if err != nil {
		return err
	}
	list, err := a.List(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "2FA mode: %s (%s); issuer: %s\n\n", set.Mode, set.ModeSource, issuerText(set))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\t2FA\tFACTORS\tENROLLED\tLAST CODE\tRECOVERY\tSESSIONS")
	enabled := 0
	for _, u := range list {
		recovery := "-"
		if u.TwoFactor {
			enabled++
			recovery = fmt.Sprintf("%d left", u.RecoveryLeft)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", u.Name, u.Role, twoFAText(u.TwoFactor), factorsText(u),
			when(u.TOTPEnrolledAt), when(u.TOTPLastUsedAt), recovery, u.Sessions)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d user(s), %d with 2FA enabled\n", len(list), enabled)
	return nil
}

// twoFAUser prints one user's details.
func twoFAUser(ctx context.Context, a users.Admin, name string, stdout io.Writer) error {
	u, err := findUser(ctx, a, name)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "user:\t%s\n", u.Name)
	fmt.Fprintf(tw, "role:\t%s\n", u.Role)
	fmt.Fprintf(tw, "2FA:\t%s\n", twoFAText(u.TwoFactor))
	if u.TwoFactor {
		if u.TOTP || len(u.Passkeys) == 0 { // (a server before passkeys says TwoFactor only)
			fmt.Fprintf(tw, "enrolled:\t%s\n", when(u.TOTPEnrolledAt))
			fmt.Fprintf(tw, "last code used:\t%s\n", when(u.TOTPLastUsedAt))
		} else {
			fmt.Fprintf(tw, "authenticator app:\tnot set up\n")
		}
		if len(u.Passkeys) == 0 {
			fmt.Fprintf(tw, "passkeys:\tnone\n")
		}
		for i, p := range u.Passkeys {
			fmt.Fprintf(tw, "passkey %d:\t%s\tadded %s\tlast used %s\t%s\n", i+1, cell(p.Name),
				p.CreatedAt.Local().Format(time.DateOnly), lastUsed(p.LastUsedAt), passkeyKind(p))
		}
		fmt.Fprintf(tw, "recovery codes left:\t%d\n", u.RecoveryLeft)
	}
	if u.MustChangePassword {
		fmt.Fprintf(tw, "password:\tmust be changed at next login\n")
	}
	fmt.Fprintf(tw, "active sessions:\t%d\n", u.Sessions)
	return tw.Flush()
}

// findUser looks one user up by exact name through Page (which counts
// sessions for the returned rows only).
func findUser(ctx context.Context, a users.Admin, name string) (users.UserInfo, error) {
	for page := 1; ; page++ {
		p, err := a.Page(ctx, users.Filter{Query: name, Page: page, PageSize: users.MaxPageSize})
		if err != nil {
			return users.UserInfo{}, err
		}
		for _, u := range p.Users {
			if u.Name == name {
				return u, nil
			}
		}
		if len(p.Users) == 0 || page*p.PageSize >= p.Total {
			return users.UserInfo{}, fmt.Errorf("no user %q", name)
		}
	}
}

func twoFADisable(ctx context.Context, a users.Admin, names []string, stdout io.Writer) error {
	had, err := a.DisableTwoFactor(ctx, names)
	if err != nil {
		// The error names every unknown user.
		return userError(err, "")
	}
	hadSet := make(map[string]bool, len(had))
	for _, n := range had {
		hadSet[n] = true
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if hadSet[n] {
			fmt.Fprintf(stdout, "2FA of %s disabled (authenticator app, passkeys and recovery codes removed); their sessions were ended\n", n)
		} else {
			fmt.Fprintf(stdout, "%s had no 2FA set up; their sessions were ended\n", n)
		}
	}
	return nil
}

func twoFAMode(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error {
	if err := a.SetMode(ctx, pos[0]); err != nil {
		return userError(err, "")
	}
	fmt.Fprintf(stdout, "2FA mode set to %s (every instance uses it within seconds)\n", pos[0])
	return nil
}

func twoFAIssuer(ctx context.Context, a users.Admin, pos []string, stdout io.Writer) error {
	if err := a.SetIssuer(ctx, pos[0]); err != nil {
		return userError(err, "")
	}
	set, err := a.Settings(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "issuer set to %s; it applies to new enrolments, existing codes keep working\n", issuerText(set))
	return nil
}

func issuerText(s users.SettingsInfo) string {
	if s.Issuer == "" {
		return fmt.Sprintf("%q (the default)", s.DefaultIssuer)
	}
	return fmt.Sprintf("%q", s.Issuer)
}

func twoFAText(on bool) string {
	if on {
		return "enabled"
	}
	return "not set up"
}

// factorsText is the short form of a user's second factors: "app" (an
// authenticator app), "2 keys" (passkeys and security keys), "app+1 key";
// "-" when none.
func factorsText(u users.UserInfo) string {
	var parts []string
	if u.TOTP || u.TwoFactor && len(u.Passkeys) == 0 { // a server before passkeys says TwoFactor only
		parts = append(parts, "app")
	}
	switch n := len(u.Passkeys); {
	case n == 1:
		parts = append(parts, "1 key")
	case n > 1:
		parts = append(parts, fmt.Sprintf("%d keys", n))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "+")
}

// passkeyKind says whether a key is a passkey (signs in without a user
// name) or a security key (a second factor only).
func passkeyKind(p users.PasskeyInfo) string {
	if p.Discoverable {
		return "passkey"
	}
	return "security key"
}

func lastUsed(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return when(t)
}
