// Package admin serves the admin area under /.authgate/admin: the 2FA
// settings, Manage Users (filter, pages, bulk disable of 2FA, and per row
// a menu to disable 2FA, revoke sessions, resync the clock or reset the
// password, plus the role), the read-only list of protected upstreams with
// their health, and the audit trail (pages, filter by user and event).
//
// The handler expects to run behind auth's RequireUser (the signed-in
// user comes from auth.CurrentFrom) and the CSRF middleware (every form
// carries middleware.CSRFToken). It checks the admin role on every request
// and asks admins with 2FA for a fresh code (step-up) when their last
// second factor is older than Options.StepUpWindow. Destructive actions
// go through a confirmation page first; every change is made through the
// user-management service, which records it in the audit trail with the
// signed-in admin as actor. Every POST that changes something answers
// 303 See Other to a GET page that shows the result, so a reload never
// repeats it; a reset's temporary password waits for that page sealed in
// the admin's own session (never in a URL or cookie) and is shown once.
// The pages use no JavaScript.
package admin
