package secretbox

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
)

func newBox(t *testing.T, fill byte) *Box {
	t.Helper()
	var k Key
	for i := range k {
		k[i] = fill + byte(i)
	}
	b, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	b := newBox(t, 1)
	for _, pt := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte{0xAA}, 20), bytes.Repeat([]byte("secret"), 1000)} {
		for _, aad := range [][]byte{nil, []byte("alice")} {
			sealed, err := b.Seal(pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != len(pt)+Overhead || sealed[0] != 1 {
				t.Fatalf("sealed len %d (pt %d), version %d", len(sealed), len(pt), sealed[0])
			}
			got, err := b.Open(sealed, aad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, pt) || got == nil {
				t.Fatalf("Open = %x, want %x", got, pt)
			}
		}
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	b := newBox(t, 1)
	pt := []byte("same plaintext")
	seen := map[string]bool{}
	for range 100 {
		s, err := b.Seal(pt, []byte("alice"))
		if err != nil {
			t.Fatal(err)
		}
		nonce := string(s[1 : 1+nonceSize])
		if seen[nonce] {
			t.Fatal("nonce repeated")
		}
		seen[nonce] = true
	}
}

func TestOpenRejects(t *testing.T) {
	b := newBox(t, 1)
	pt := bytes.Repeat([]byte{0x42}, 20)
	sealed, err := b.Seal(pt, []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("tamper each byte", func(t *testing.T) {
		for i := range sealed {
			for _, bit := range []byte{0x01, 0x80} {
				c := bytes.Clone(sealed)
				c[i] ^= bit
				if _, err := b.Open(c, []byte("alice")); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("byte %d bit %#x flipped: err = %v", i, bit, err)
				}
			}
		}
	})
	t.Run("wrong aad", func(t *testing.T) {
		for _, aad := range [][]byte{nil, []byte("bob"), []byte("alicE"), []byte("alice\x00"), []byte("\x01alice")} {
			if _, err := b.Open(sealed, aad); !errors.Is(err, ErrDecrypt) {
				t.Errorf("aad %q: err = %v", aad, err)
			}
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		if _, err := newBox(t, 2).Open(sealed, []byte("alice")); !errors.Is(err, ErrDecrypt) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := 0; n < len(sealed); n++ {
			if _, err := b.Open(sealed[:n], []byte("alice")); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("len %d: err = %v", n, err)
			}
		}
	})
	t.Run("extended", func(t *testing.T) {
		if _, err := b.Open(append(bytes.Clone(sealed), 0), []byte("alice")); !errors.Is(err, ErrDecrypt) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		c := bytes.Clone(sealed)
		c[0] = 2
		_, err := b.Open(c, []byte("alice"))
		if !errors.Is(err, ErrDecrypt) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSealRandomFailure(t *testing.T) {
	b := newBox(t, 1)
	b.rand = bytes.NewReader(nil)
	if _, err := b.Seal([]byte("x"), nil); err == nil {
		t.Fatal("Seal succeeded without randomness")
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if bytes.Contains([]byte(s), []byte(k.Hex()[:8])) || !bytes.Contains([]byte(s), []byte("redacted")) {
			t.Errorf("formatted key: %q", s)
		}
	}
}

func FuzzOpen(f *testing.F) {
	b, err := New(Key{})
	if err != nil {
		f.Fatal(err)
	}
	s, _ := b.Seal([]byte("seed"), []byte("u"))
	f.Add(s, []byte("u"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte("u"))
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		pt, err := b.Open(sealed, aad)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || pt != nil {
				t.Fatalf("Open error %v with plaintext %x", err, pt)
			}
		}
	})
}
