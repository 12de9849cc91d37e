// Package secretbox seals small secrets at rest (TOTP secrets) with
// AES-256-GCM, and loads or creates the 32-byte key file that holds the key.
//
// Sealed format, version 1:
//
//	0x01 | nonce (12 random bytes) | ciphertext | GCM tag (16 bytes)
//
// The version byte is authenticated along with the caller's additional data
// (the user name, so a sealed secret cannot be moved to another user).
// Random 96-bit nonces are safe for far more than the number of secrets a
// gateway will ever seal under one key (NIST's bound is 2^32 messages).
package secretbox
