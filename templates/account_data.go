package templates

import (
	"html/template"
	"time"
)

// Page names of the account area (Manage My Account).
const (
	PageAccount       = "account"
	PageAccountSetup  = "account_setup"
	PageRecoveryCodes = "recovery_codes"
	PagePassword      = "password"
)

// AccountPage is the data for "account": the signed-in user's overview.
type AccountPage struct {
	Common
	Nav  Nav
	User string
	// TwoFactor is true when the user has an active second factor.
	TwoFactor  bool
	EnrolledAt time.Time // zero: unknown
	LastUsedAt time.Time // zero: never
	// PendingSetup is true while a new secret waits for its first code.
	PendingSetup bool
	// Required: the gateway requires 2FA, so it cannot be removed.
	Required bool
	// ModeOff: the gateway does not ask for codes at sign-in right now.
	ModeOff bool
	// RecoveryLeft is how many unused recovery codes remain; RecoveryLow
	// is true when that is 2 or fewer.
	RecoveryLeft int
	RecoveryLow  bool
	RecoveryAt   time.Time // when the current codes were made; zero: never
	// CodesDownloadable is true while the codes just generated can still
	// be downloaded (DownloadURL).
	CodesDownloadable bool
	DownloadURL       string
	Sessions          []AccountSession
	// AnyFactor: the account has a second factor (an authenticator app
	// or a passkey), so recovery codes apply.
	AnyFactor bool
	// PasskeysAvailable: passkeys can be registered here; else
	// PasskeysReason says why not (shown instead of failing).
	PasskeysAvailable bool
	PasskeysReason    string
	Passkeys          []AccountPasskey
}

// AccountPasskey is one registered passkey or security key.
type AccountPasskey struct {
	// ID is the credential id (base64url), posted back to remove it.
	ID           string
	Name         string
	CreatedAt    time.Time
	LastUsedAt   time.Time // zero: never
	Discoverable bool      // a passkey (can sign in without a user name)
}

// AccountSession is one row of the sessions table.
type AccountSession struct {
	// ID is the short public id posted back to revoke the session.
	ID         string
	CreatedAt  time.Time
	LastSeenAt time.Time
	IP         string
	UserAgent  string
	// Current marks the session of this request ("this session").
	Current bool
	// Pending: the password was accepted but the second factor is owed.
	Pending bool
}

// AccountSetupPage is the data for "account_setup": set up or reconfigure
// the authenticator app from the account page.
type AccountSetupPage struct {
	Common
	Nav    Nav
	User   string
	Issuer string
	// QRDataURI and OTPAuthURL are template.URL for the reasons given on
	// EnrollPage; only pass URLs the gateway built itself.
	QRDataURI  template.URL
	KeyGrouped string
	OTPAuthURL template.URL
	Digits     int
	Period     int // seconds
	// Reconfigure: the user already has an authenticator, which keeps
	// working until the new one is confirmed.
	Reconfigure bool
	// ModeOff: codes are not asked for at sign-in right now.
	ModeOff bool
	// AfterRecovery: the user just signed in with a recovery code (the
	// phone is lost); RD is where to go once the new authenticator works.
	AfterRecovery bool
	RD            string
}

// RecoveryCodesPage is the data for "recovery_codes": new codes, shown
// once.
type RecoveryCodesPage struct {
	Common
	Nav   Nav
	User  string
	Codes []string
	// DownloadURL offers the same codes as a text file for
	// DownloadMinutes minutes.
	DownloadURL     string
	DownloadMinutes int
	// Replaced is true when these codes replace earlier ones.
	Replaced bool
	// ContinueURL, when set, is where the page leads on (after sign-in
	// enrolment: the page the user was going to); else the account page.
	ContinueURL string
}

// PasswordPage is the data for "password".
type PasswordPage struct {
	Common
	Nav  Nav
	User string
	// Forced: an administrator reset the password; it must be changed
	// before anything else.
	Forced    bool
	RD        string // where to continue afterwards (hidden field "rd")
	MinLength int
}
