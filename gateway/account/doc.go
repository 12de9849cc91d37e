// Package account serves Manage My Account (/.authgate/account and
// below) for the signed-in user: the overview (2FA status, recovery codes
// left, sessions), setting up, reconfiguring and removing two-factor
// authentication, generating recovery codes (shown once, downloadable for
// a few minutes while held sealed in the session), changing the password
// and signing out other sessions.
//
// The handler runs behind auth's RequireUser, which puts the user and
// session in the request context (auth.CurrentFrom). Every action works
// on that user only: no form field names whose account is changed.
// Every change is audited; every POST is CSRF-protected by the
// middleware in front of it.
package account
