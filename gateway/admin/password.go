package admin

import (
	"fmt"
	"io"
)

// tempAlphabet has no look-alike characters (0/O, 1/l/I) so a temporary
// password can be read out or copied by hand.
const tempAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// TempPasswordLen is the length of a temporary password (≈93 bits).
const TempPasswordLen = 16

// tempPassword returns TempPasswordLen characters drawn uniformly from
// tempAlphabet (rejection sampling, so no character is more likely).
func tempPassword(rnd io.Reader) (string, error) {
	const n = len(tempAlphabet)
	limit := byte(256 - 256%n)
	out := make([]byte, 0, TempPasswordLen)
	buf := make([]byte, 32)
	for len(out) < TempPasswordLen {
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return "", fmt.Errorf("admin: read random bytes: %w", err)
		}
		for _, b := range buf {
			if b >= limit {
				continue
			}
			out = append(out, tempAlphabet[int(b)%n])
			if len(out) == TempPasswordLen {
				break
			}
		}
	}
	return string(out), nil
}
