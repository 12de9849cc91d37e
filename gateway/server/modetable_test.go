package server_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/account"
	"github.com/authgate/authgate/gateway/admin"
)

// modeTableHeader introduces README's table of what a user without an
// authenticator needs, for every 2FA mode and kind of page.
const modeTableHeader = "| mode | `password` route | `two_factor` route | account pages | admin area (admins) |"

// readModeTable returns README's table rows: mode -> the four cells.
func readModeTable(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), modeTableHeader+"\n")
	if !ok {
		t.Fatalf("README has no table starting %q", modeTableHeader)
	}
	rows := map[string][]string{}
	for i, line := range strings.Split(after, "\n") {
		if i == 0 { // the |---| line
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if len(cells) != 5 {
			t.Fatalf("README mode table row %q has %d cells, want 5", line, len(cells))
		}
		rows[strings.Trim(cells[0], "`")] = cells[1:]
	}
	return rows
}

// TestModeTableInReadme walks README's table of modes and pages: a user
// and an admin, neither with an authenticator, sign in under each mode and
// get what the table says, page by page. A change of either the table or
// the behaviour fails here until both agree.
func TestModeTableInReadme(t *testing.T) {
	rows := readModeTable(t)
	for _, mode := range []string{"off", "on", "required"} {
		cells, ok := rows[mode]
		if !ok {
			t.Fatalf("README mode table has no row for %q (rows: %v)", mode, rows)
		}
		t.Run(mode, func(t *testing.T) {
			g := attackGateway(t, "embedded", mode, nil)
			g.addUser(t, "carol", attackPW)
			g.addAdmin(t, "root", attackPW)
			pages := []struct {
				column, user string
				paths        []string
			}{
				{"`password` route", "carol", []string{passwordPath}},
				{"`two_factor` route", "carol", []string{twoFactorPath}},
				{"account pages", "carol", []string{account.PathOverview, account.PathSetup}},
				{"admin area (admins)", "root", []string{admin.SettingsPath, "/.authgate/admin/users"}},
			}
			for i, p := range pages {
				cell := cells[i]
				b := g.browserFrom(t, "10.250.0.1")
				login := loginAs(b, p.user, attackPW)
				mustStatus(t, login, http.StatusSeeOther, "password of "+p.user)
				atSignIn := strings.HasPrefix(location(login), "/.authgate/enroll")
				switch {
				case cell == "set up at sign-in":
					if !atSignIn {
						t.Errorf("mode %s, %s: README says %q, but the password led to %q", mode, p.column, cell, location(login))
					}
				case cell == "sent to set up an authenticator first":
					if atSignIn {
						t.Fatalf("mode %s, %s: README says %q, but set-up was asked at sign-in", mode, p.column, cell)
					}
					for _, path := range p.paths {
						if r := b.get(path); !toEnrol(r) {
							t.Errorf("mode %s, %s: README says %q, but %s answered %s", mode, p.column, cell, path, describe(r))
						}
					}
				case strings.HasPrefix(cell, "password"):
					if atSignIn {
						t.Fatalf("mode %s, %s: README says %q, but set-up was asked at sign-in", mode, p.column, cell)
					}
					for _, path := range p.paths {
						if r := b.get(path); r.status != http.StatusOK {
							t.Errorf("mode %s, %s: README says %q, but %s answered %s", mode, p.column, cell, path, describe(r))
						}
					}
				default:
					t.Fatalf("mode %s, %s: README cell %q has no meaning this test knows; teach it", mode, p.column, cell)
				}
			}
		})
	}
}
