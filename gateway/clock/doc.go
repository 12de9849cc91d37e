// Package clock checks the server's clock against NTP servers with SNTP
// (RFC 4330): a Monitor measures the offset at start and every few
// minutes, logs a warning with the concrete fix when the clock is off by
// more than a threshold, and reports the last measurement for the admin
// Settings page and "authgate doctor".
//
// A server clock that is off makes every user's TOTP codes fail with
// "The security code is invalid.": the codes are right, the server's idea
// of "now" is wrong. The Monitor never corrects the clock itself; it says
// how far off it is and how to fix it.
//
// Package sntptest runs a fake SNTP server on loopback for tests.
package clock
