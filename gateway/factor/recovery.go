package factor

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// RecoveryCount is how many recovery codes a user gets.
const RecoveryCount = 10

// recoveryAlphabet avoids look-alikes (no 0/O, 1/I/L, U).
const recoveryAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"

// recoveryLen is the number of symbols in a code: 10 symbols of a
// 30-letter alphabet is about 49 bits, plenty for a single-use code behind
// a password and rate limits; shown as XXXXX-XXXXX.
const recoveryLen = 10

// Recovery makes and checks single-use recovery codes. Codes are stored as
// HMAC-SHA256 under a key derived from the gateway's secret key and bound
// to the user, so a stolen store alone cannot be used to test guesses.
type Recovery struct {
	key  []byte
	rand io.Reader
}

// NewRecovery derives the hashing key from the gateway's secret key.
func NewRecovery(secretKey []byte, rnd io.Reader) *Recovery {
	if rnd == nil {
		rnd = rand.Reader
	}
	m := hmac.New(sha256.New, secretKey)
	m.Write([]byte("authgate recovery codes v1"))
	return &Recovery{key: m.Sum(nil), rand: rnd}
}

// Generate returns RecoveryCount new codes (to show once) and their
// hashes for user (to store).
func (r *Recovery) Generate(user string) (codes, hashes []string, err error) {
	for len(codes) < RecoveryCount {
		b := make([]byte, recoveryLen)
		if _, err := io.ReadFull(r.rand, b); err != nil {
			return nil, nil, fmt.Errorf("factor: random recovery code: %w", err)
		}
		var sb strings.Builder
		for i, c := range b {
			if i == recoveryLen/2 {
				sb.WriteByte('-')
			}
			// 256 % 30 != 0: reject the biased tail to keep symbols uniform.
			if int(c) >= 240 {
				sb.Reset()
				break
			}
			sb.WriteByte(recoveryAlphabet[int(c)%len(recoveryAlphabet)])
		}
		if sb.Len() != recoveryLen+1 {
			continue
		}
		codes = append(codes, sb.String())
		hashes = append(hashes, r.hash(user, sb.String()))
	}
	return codes, hashes, nil
}

// normalize accepts codes typed in lower case, with or without the dash,
// with spaces.
func normalize(code string) string {
	var sb strings.Builder
	for _, c := range strings.ToUpper(code) {
		switch {
		case c == '-' || c == ' ':
		case strings.ContainsRune(recoveryAlphabet, c):
			sb.WriteRune(c)
		default:
			return ""
		}
	}
	if sb.Len() != recoveryLen {
		return ""
	}
	s := sb.String()
	return s[:recoveryLen/2] + "-" + s[recoveryLen/2:]
}

func (r *Recovery) hash(user, code string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return hex.EncodeToString(m.Sum(nil))
}

// Match returns the index in hashes of the code, comparing every entry in
// constant time; -1 if it matches none (or is malformed).
func (r *Recovery) Match(user string, hashes []string, code string) int {
	n := normalize(code)
	if n == "" {
		return -1
	}
	h := []byte(r.hash(user, n))
	found := -1
	for i, s := range hashes {
		if subtle.ConstantTimeCompare(h, []byte(s)) == 1 && found < 0 {
			found = i
		}
	}
	return found
}
