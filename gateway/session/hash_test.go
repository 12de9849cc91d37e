package session_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/session"
)

// HashID is the lowercase hex SHA-256 of the id, whatever its length:
// stored sessions are keyed by it, so it must never change.
func TestHashIDIsHexSHA256(t *testing.T) {
	for _, id := range []string{"", "a", strings.Repeat("x", 43), strings.Repeat("y", 64), strings.Repeat("z", 65), strings.Repeat("é", 100)} {
		sum := sha256.Sum256([]byte(id))
		if got, want := session.HashID(id), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("HashID(%d bytes) = %s, want %s", len(id), got, want)
		}
	}
	id := strings.Repeat("x", 43)
	if n := testing.AllocsPerRun(100, func() { _ = session.HashID(id) }); n > 1 {
		t.Errorf("HashID of a cookie id allocates %v times, want 1", n)
	}
}
