// Package signin serves the sign-in pages under /.authgate/: login,
// verify (the TOTP code, also as a step-up), enroll (an authenticator
// set up at sign-in), recovery (a single-use recovery code instead of the
// code) and logout. They create, complete and end sessions; whether a
// session may reach anything is decided by gateway/auth, whose session
// loader (SignedIn) the second-factor pages read through and whose page
// paths and redirect check (SafeRedirect) they use.
//
// Every proof attempt is reserved with the regulator before it is
// checked (regulate.go), and every failure is answered with one public
// message per step ("The username or password is incorrect.", "The
// security code is invalid."); the reason goes to the log only. A logout
// is a POST (behind the gateway's CSRF middleware): a GET only asks.
package signin
