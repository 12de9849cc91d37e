package factor_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/secretbox"
	"github.com/authgate/authgate/gateway/store/embedded"
	"github.com/authgate/authgate/gateway/totp"
)

func newTOTP(t *testing.T, now func() time.Time) *factor.TOTP {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "f.db"), embedded.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	box, err := secretbox.New(secretbox.Key{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	return factor.NewTOTP(box, st, totp.DefaultOptions(), now, nil)
}

func TestTOTPCheckConsumesTheStep(t *testing.T) {
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f := newTOTP(t, func() time.Time { return at })
	ctx := context.Background()
	sealed, err := f.NewSecret("alice")
	if err != nil {
		t.Fatal(err)
	}
	en, err := f.Describe("alice", "Panel", sealed)
	if err != nil || !strings.HasPrefix(en.KeyURL, "otpauth://totp/") || !strings.HasPrefix(en.QRDataURI, "data:image/png;base64,") {
		t.Fatalf("Describe = %+v, %v", en, err)
	}
	raw, _ := totp.DecodeSecret(en.KeyGrouped)
	code, _ := totp.Code(raw, at, totp.DefaultOptions())
	if _, err := f.Check(ctx, "alice", sealed, 0, code); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := f.Check(ctx, "alice", sealed, 0, code); !errors.Is(err, factor.ErrReplayed) {
		t.Fatalf("second use: %v, want ErrReplayed", err)
	}
	if _, err := f.Check(ctx, "alice", sealed, 0, "000000"); !errors.Is(err, factor.ErrInvalid) && !errors.Is(err, factor.ErrReplayed) {
		t.Fatalf("wrong code: %v", err)
	}
	// A secret sealed for alice does not open for bob.
	if _, err := f.Check(ctx, "bob", sealed, 0, code); err == nil || errors.Is(err, factor.ErrInvalid) {
		t.Fatalf("secret used under another user: %v", err)
	}
}

func TestRecoveryCodes(t *testing.T) {
	r := factor.NewRecovery([]byte("k"), nil)
	codes, hashes, err := r.Generate("alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != factor.RecoveryCount || len(hashes) != factor.RecoveryCount {
		t.Fatalf("%d codes, %d hashes", len(codes), len(hashes))
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if len(c) != 11 || c[5] != '-' || seen[c] {
			t.Fatalf("bad or duplicate code %q", c)
		}
		seen[c] = true
		for _, h := range hashes {
			if strings.Contains(h, c) || strings.Contains(h, strings.ReplaceAll(c, "-", "")) {
				t.Fatal("hash contains the code")
			}
		}
		if got := r.Match("alice", hashes, c); got != i {
			t.Fatalf("Match(%q) = %d, want %d", c, got, i)
		}
	}
	c := codes[3]
	for _, typed := range []string{strings.ToLower(c), strings.ReplaceAll(c, "-", ""), " " + c[:5] + " " + c[6:] + " "} {
		if r.Match("alice", hashes, typed) != 3 {
			t.Errorf("Match(%q) failed", typed)
		}
	}
	for _, bad := range []string{"", "AAAAA-AAAAA", c + "2", c[:10], "ÄÄÄÄÄ-ÄÄÄÄÄ", c[:5] + "_" + c[6:]} {
		if r.Match("alice", hashes, bad) != -1 {
			t.Errorf("Match(%q) matched", bad)
		}
	}
	// Bound to the user and to the key.
	if r.Match("bob", hashes, c) != -1 {
		t.Error("alice's code matched for bob")
	}
	if factor.NewRecovery([]byte("other"), nil).Match("alice", hashes, c) != -1 {
		t.Error("code matched under another key")
	}
}
