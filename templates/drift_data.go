package templates

// PageAccountResync is the page where two consecutive codes resynchronise
// a device's clock: the user's own (account) or any user's (admin).
const PageAccountResync = "account_resync"

// DriftSummary is the "Clock drift evidence" block of the admin Settings
// page (template "drift" in _drift.html): what failed codes say about the
// server's and the phones' clocks.
type DriftSummary struct {
	// Unavailable: the evidence could not be read (store down).
	Unavailable bool
	// Window is how far back evidence counts ("24 hours").
	Window string
	// Users is how many users have evidence in the window.
	Users int
	// ServerLikely: several users' codes are off by the same amount.
	ServerLikely bool
	// ServerOffset is the server clock's estimated error ("~90 s behind").
	ServerOffset string
	// Agreeing is how many users support the estimate.
	Agreeing int
	// Phones are users whose own phone is the likely culprit.
	Phones []DriftPhone
}

// DriftPhone is one user whose phone clock seems off.
type DriftPhone struct {
	User   string
	Advice string // "phone clock ~90 s ahead: enable automatic time on the phone"
}

// DriftNote is the clock part of a Manage Users row. The zero value shows
// nothing.
type DriftNote struct {
	// Offsets are the user's recent failed-code offsets, oldest first
	// ("+3 steps (90 s)").
	Offsets []string
	// Advice is the verdict for the admin.
	Advice string
	// Server: the server clock, not the phone, explains the offsets.
	Server bool
	// Applied is the correction applied to the user's checks ("" = none).
	Applied string
}

// AccountResyncPage is the data for "account_resync".
type AccountResyncPage struct {
	Common
	Nav Nav
	// User is whose authenticator is resynchronised.
	User string
	// Action is where the form posts.
	Action string
	// Admin: an administrator enters the codes the user reads out (no
	// password field; the user name and Back go along as hidden fields).
	Admin bool
	Back  string
	// CancelURL leads back without changing anything.
	CancelURL string
	// Period is the code period in seconds; MaxOffset the largest offset
	// that can be corrected ("10 minutes").
	Period    int
	MaxOffset string
	// Applied is the correction in force now ("" = none).
	Applied string
}
