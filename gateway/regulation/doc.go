// Package regulation is authgate's brute-force protection. It counts
// failed sign-in attempts (wrong password, unknown user, wrong TOTP,
// enrolment or recovery code) per user name and per client address in the
// shared store, so every instance sees the same counts, and bans a
// subject for a while once it reaches the limit; repeat offenders get
// longer bans.
//
// Unknown user names are counted exactly like known ones, so a ban says
// nothing about whether an account exists. Bookkeeping is bounded: user
// names are hashed into fixed-length keys, IPv6 clients are counted per
// /64 (one customer's network), and every counter and ban expires.
package regulation
