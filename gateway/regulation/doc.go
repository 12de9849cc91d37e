// Package regulation is authgate's brute-force protection: the one place
// that limits how many proofs of a factor (a password, a TOTP code, a
// recovery code: at sign-in, step-up and on the account pages) can be
// checked.
//
// Every attempt first reserves itself (Regulator.Reserve): one atomic
// increment in the shared store of the counters of its user name, its
// client address and, after the password, its session. Only an attempt
// within every limit is checked; so any number of attempts arriving at
// once are checked at most up to the limits, on every instance. A wrong
// proof keeps its reservation (Attempt.Failed), a right one gives it back
// (Attempt.Passed). A user name or address whose count passes the limit
// is refused from the count itself, and banned for a while (repeat
// offenders longer); a session that used up its tries is spent.
//
// Unknown user names are counted exactly like known ones, so a ban says
// nothing about whether an account exists. Bookkeeping is bounded: user
// names are hashed into fixed-length keys, IPv6 clients are counted per
// /64 (one customer's network), and every counter and ban expires.
package regulation
