package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

const (
	version1  = 0x01
	nonceSize = 12
	tagSize   = 16
	overhead  = 1 + nonceSize + tagSize
)

// ErrDecrypt is returned by Open for anything that does not authenticate:
// tampering, the wrong key, the wrong additional data, truncation or an
// unknown format version.
var ErrDecrypt = errors.New("secretbox: message authentication failed")

// Box seals and opens with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
	rand io.Reader
}

// New returns a Box for k. Nonces come from crypto/rand.
func New(k Key) (*Box, error) {
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return &Box{aead: aead, rand: rand.Reader}, nil
}

// Overhead is how many bytes Seal adds to the plaintext.
const Overhead = overhead

// Seal encrypts plaintext, authenticating aad (e.g. the user name) with it.
func (b *Box) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, overhead+len(plaintext))
	out[0] = version1
	if _, err := io.ReadFull(b.rand, out[1:1+nonceSize]); err != nil {
		return nil, fmt.Errorf("secretbox: reading nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:1+nonceSize], plaintext, additional(out[0], aad)), nil
}

// Open decrypts what Seal produced with the same key and aad, or returns
// an error wrapping ErrDecrypt.
func (b *Box) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < overhead {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte minimum", ErrDecrypt, len(sealed), overhead)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrDecrypt, sealed[0])
	}
	pt, err := b.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], additional(sealed[0], aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// additional binds the format version to the caller's data. The version is
// a fixed-length prefix, so no two (version, aad) pairs collide.
func additional(version byte, aad []byte) []byte {
	ad := make([]byte, 0, 1+len(aad))
	ad = append(ad, version)
	return append(ad, aad...)
}
