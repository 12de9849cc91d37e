package totp

import (
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
)

// SecretSize is the length in bytes of secrets made by NewSecret: 160 bits,
// the length RFC 4226 recommends. It is the same for every algorithm: RFC 6238
// pads shorter keys inside HMAC, 160 bits is far beyond brute force, and a
// 20-byte secret encodes to exactly 32 base32 characters that every
// authenticator app accepts (several ignore or mishandle longer keys).
const SecretSize = 20

// MinSecretSize is the shortest secret Code and the checks accept (80 bits,
// the historical Google Authenticator length).
const MinSecretSize = 10

// ErrSecretTooShort is returned for secrets shorter than MinSecretSize.
var ErrSecretTooShort = errors.New("totp: secret too short")

// ErrInvalidSecret is returned by DecodeSecret for text that is not base32.
var ErrInvalidSecret = errors.New("totp: secret is not valid base32")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret reads SecretSize random bytes from r (normally crypto/rand.Reader).
func NewSecret(r io.Reader) ([]byte, error) {
	s := make([]byte, SecretSize)
	if _, err := io.ReadFull(r, s); err != nil {
		return nil, fmt.Errorf("totp: reading random secret: %w", err)
	}
	return s, nil
}

// EncodeSecret returns the secret as upper-case base32 without padding, the
// form used in otpauth:// URLs and for manual entry.
func EncodeSecret(secret []byte) string {
	return b32.EncodeToString(secret)
}

// DecodeSecret parses base32 text as typed or pasted by a person: case,
// spaces, dashes and trailing '=' padding are ignored.
func DecodeSecret(s string) ([]byte, error) {
	n := normaliseBase32(s)
	if n == "" {
		return nil, ErrInvalidSecret
	}
	b, err := b32.DecodeString(n)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSecret, err)
	}
	return b, nil
}

// GroupKey formats base32 text for manual entry in groups of four
// characters separated by spaces: "ABCD EFGH IJKL ...". Existing spaces,
// dashes and padding are dropped and letters upper-cased first.
func GroupKey(b32text string) string {
	n := normaliseBase32(b32text)
	var sb strings.Builder
	sb.Grow(len(n) + len(n)/4)
	for i := 0; i < len(n); i += 4 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(n[i:min(i+4, len(n))])
	}
	return sb.String()
}

func normaliseBase32(s string) string {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}
