// Package factor is the second factor as every handler uses it: TOTP codes
// checked against a sealed secret and consumed once across all instances,
// new secrets sealed for a user, and single-use recovery codes stored as
// keyed hashes. The login flow, the account page and the admin area share
// it so each rule lives in one place.
//
// Clock drift (RFC 6238 §6): each check is centred on the user's stored
// drift, a code one step off-centre suggests a nudge (Result.Drift), and
// a failed code is searched in the wide drift-scan window (WithDriftScan)
// and reported to an Observer as evidence, never accepted. Resync
// measures a device's offset from two consecutive codes.
package factor
