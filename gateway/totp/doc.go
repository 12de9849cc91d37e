// Package totp implements RFC 6238 time-based one-time passwords for the
// second factor: secrets, otpauth:// enrolment URLs and QR codes, code
// generation, and constant-time code checks at an explicit time.
//
// Every check takes the time as an argument (no hidden clock) and returns the
// time step it matched, so the caller can refuse a step it has already
// accepted (replay protection) and can store a per-user clock drift and
// check around it with CheckAt (gateway/factor also uses CheckAt to search
// a wide window for drift evidence, never to accept a code there).
//
// Codes are computed by github.com/pquerna/otp (HOTP per time step, on
// crypto/hmac) and compared in constant time; the tests check them against
// the RFC 6238 Appendix B vectors and an HMAC reference written out with
// crypto/hmac. Enrolment keys and their QR codes are pquerna/otp's too.
package totp
