// Package password hashes passwords with argon2id (PHC string format, as the
// reference implementation writes it), verifies argon2id and bcrypt hashes
// in constant time, tells when a stored hash should be upgraded, and imports
// bcrypt users from Apache htpasswd files.
//
// Verification fails closed: a hash that cannot be parsed, uses an unknown
// scheme or asks for more work than the package's upper bounds returns
// false with an error wrapping ErrMalformedHash, never true.
package password
