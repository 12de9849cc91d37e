// Package totp implements RFC 6238 time-based one-time passwords for the
// second factor: secrets, otpauth:// enrolment URLs and QR codes, code
// generation, and constant-time code checks at an explicit time.
//
// Every check takes the time as an argument (no hidden clock) and returns the
// time step it matched, so the caller can refuse a step it has already
// accepted (replay protection) and can store a per-user clock drift and
// check around it with CheckAt. Scan searches a wide window for diagnosing
// drift; it is never used to accept a code.
//
// Code generation is delegated to github.com/pquerna/otp; the checks use an
// equivalent HMAC loop that allocates nothing (cross-checked in the tests against
// pquerna/otp and the RFC 6238 Appendix B vectors).
package totp
