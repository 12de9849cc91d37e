package templates

// RecoveryLoginPage is the data for "recovery": signing in with a
// recovery code instead of a TOTP code.
type RecoveryLoginPage struct {
	Common
	User string
	RD   string
}
