// Package factor is the second factor as every handler uses it: TOTP codes
// checked against a sealed secret and consumed once across all instances,
// new secrets sealed for a user, and single-use recovery codes stored as
// keyed hashes. The login flow, the account page and the admin area share
// it so each rule lives in one place.
package factor
