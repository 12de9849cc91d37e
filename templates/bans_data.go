package templates

// PageAdminBans is the admin "Bans" tab (admin_bans.html).
const PageAdminBans = "admin_bans"

// AdminBansPage is the data for "admin_bans": the active sign-in bans.
type AdminBansPage struct {
	Common
	Nav  Nav
	Bans []AdminBanRow
	// Max is the most bans the page lists.
	Max int
}

// AdminBanRow is one active ban. Times are preformatted (UTC).
type AdminBanRow struct {
	// Key is posted back by the Lift button.
	Key string
	// IsUser: a user name (as typed at the login form; it may name no
	// account), else a client address or IPv6 /64.
	IsUser   bool
	Subject  string
	Failures int64
	// Level is the number of bans in a row (1 = first); repeat offenders'
	// bans last longer.
	Level   int
	Since   string
	Until   string
	ISOTime string // Until, RFC 3339
	// Left is the time the ban still runs, e.g. "14 min".
	Left string
}
