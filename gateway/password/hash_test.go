package password

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// testParams keep argon2 cheap on a 2-core machine.
var testParams = Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

func TestHashFormatAndVerify(t *testing.T) {
	salt := bytes.Repeat([]byte{0x01}, 64)
	h := NewHasher(testParams, bytes.NewReader(salt))
	enc, err := h.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := "$argon2id$v=19$m=64,t=1,p=1$AQEBAQEBAQEBAQEBAQEBAQ$"
	if !strings.HasPrefix(enc, wantPrefix) {
		t.Fatalf("hash %q, want prefix %q", enc, wantPrefix)
	}
	if fields := strings.Split(enc, "$"); len(fields) != 6 || strings.ContainsAny(fields[4]+fields[5], "=") {
		t.Errorf("want 6 fields and unpadded base64: %q", enc)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{"correct horse", true},
		{"correct horsE", false},
		{"correct horse ", false},
		{"", false},
	} {
		ok, err := Verify(enc, tc.pw)
		if err != nil || ok != tc.want {
			t.Errorf("Verify(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
		if ok2, _ := h.Verify(enc, tc.pw); ok2 != ok {
			t.Errorf("Hasher.Verify differs from Verify")
		}
	}
	// Fresh salt each time.
	h2 := NewHasher(testParams, nil)
	a, _ := h2.Hash("pw")
	b, _ := h2.Hash("pw")
	if a == b {
		t.Error("two hashes of one password are equal")
	}
}

// Vectors from the argon2 reference implementation's CLI (Debian package
// argon2): echo -n PW | argon2 SALT -id -t T -m LOG2M -p P -l LEN -e
func TestVerifyReferenceVectors(t *testing.T) {
	tests := []struct{ encoded, pw string }{
		{"$argon2id$v=19$m=1024,t=2,p=2$c2FsdHNhbHRzYWx0MTZi$SKykaD65MxT+pEvOzvp4/phvEAfXcAx4vVx0JVQvpHs", "correct horse battery staple"},
		{"$argon2id$v=19$m=256,t=1,p=1$YW5vdGhlcnNhbHQxMjM0$WqIosEUwMadB80E1AJOk4A", "pässwörd"},
	}
	for _, tc := range tests {
		ok, err := Verify(tc.encoded, tc.pw)
		if err != nil || !ok {
			t.Errorf("Verify(%s) = %v, %v", tc.encoded, ok, err)
		}
		if ok, _ := Verify(tc.encoded, tc.pw+"x"); ok {
			t.Errorf("wrong password accepted for %s", tc.encoded)
		}
	}
	// Our encoder produces byte-identical output for the same inputs.
	h := NewHasher(Params{MemoryKiB: 1024, Iterations: 2, Parallelism: 2, SaltLen: 15, KeyLen: 32}, strings.NewReader("saltsaltsalt16b"))
	if _, err := h.Hash("x"); err != nil {
		t.Fatal(err)
	}
	h = NewHasher(Params{MemoryKiB: 1024, Iterations: 2, Parallelism: 2, SaltLen: 15, KeyLen: 32}, strings.NewReader("saltsaltsalt16b"))
	got, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if got != tests[0].encoded {
		t.Errorf("Hash = %s\nwant   %s", got, tests[0].encoded)
	}
}

func TestVerifyBcrypt(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "$2a$") {
		t.Fatalf("unexpected prefix %.4s", b)
	}
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		enc := prefix + string(b[4:])
		ok, err := Verify(enc, "hunter2")
		if err != nil || !ok {
			t.Errorf("%s: Verify = %v, %v", prefix, ok, err)
		}
		if ok, err := Verify(enc, "hunter3"); ok || err != nil {
			t.Errorf("%s: wrong password = %v, %v", prefix, ok, err)
		}
	}
	// Apache htpasswd 2.4 output (htpasswd -nbB -C 5).
	ok, err := Verify("$2y$05$SHEOviBSkaNWDFZkxBArzeq12JJEbcXHZbj5fX5B23PyMyUTgWgCy", "correct horse battery staple")
	if err != nil || !ok {
		t.Errorf("htpasswd $2y$ hash: %v, %v", ok, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	good := "$argon2id$v=19$m=1024,t=2,p=2$c2FsdHNhbHRzYWx0MTZi$SKykaD65MxT+pEvOzvp4/phvEAfXcAx4vVx0JVQvpHs"
	bc := "$2y$05$SHEOviBSkaNWDFZkxBArzeq12JJEbcXHZbj5fX5B23PyMyUTgWgCy"
	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"plain text", "correct horse battery staple"},
		{"sha", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="},
		{"apr1", "$apr1$t.v85CVa$eCjk0MVSNabfsbmzuRJeO0"},
		{"argon2i", "$argon2i$v=19$m=1024,t=2,p=2$c2FsdHNhbHRzYWx0MTZi$hZ7HDJRW6d24i6OncS/o0GE+dD7VAk8f7iiuhFpPsuo"},
		{"argon2 v16", strings.Replace(good, "v=19", "v=16", 1)},
		{"no version", strings.Replace(good, "v=19$", "", 1)},
		{"params reordered", strings.Replace(good, "m=1024,t=2", "t=2,m=1024", 1)},
		{"param leading zero", strings.Replace(good, "t=2", "t=02", 1)},
		{"param sign", strings.Replace(good, "t=2", "t=+2", 1)},
		{"param overflow", strings.Replace(good, "m=1024", "m=4294967297", 1)},
		{"extra param", strings.Replace(good, "p=2", "p=2,k=1", 1)},
		{"memory too big", strings.Replace(good, "m=1024", "m=1048577", 1)},
		{"memory below 8p", strings.Replace(good, "m=1024", "m=15", 1)},
		{"iterations 0", strings.Replace(good, "t=2", "t=0", 1)},
		{"iterations too many", strings.Replace(good, "t=2", "t=65", 1)},
		{"parallelism 0", strings.Replace(good, "p=2", "p=0", 1)},
		{"parallelism too many", strings.Replace(good, "p=2", "p=65", 1)},
		{"parallelism overflow uint8", strings.Replace(good, "p=2", "p=258", 1)},
		{"padded salt", strings.Replace(good, "MTZi$", "MTZi==$", 1)},
		{"short salt", strings.Replace(good, "c2FsdHNhbHRzYWx0MTZi", "c2FsdA", 1)},
		{"short hash", good[:strings.LastIndex(good, "$")+1] + "AAAAAAAAAAAAAAAAAAAA"},
		{"huge hash", good[:strings.LastIndex(good, "$")+1] + strings.Repeat("A", 200)},
		{"bad base64", good + "!"},
		{"trailing field", good + "$"},
		{"bcrypt 2x", "$2x$" + bc[4:]},
		{"bcrypt short", bc[:59]},
		{"bcrypt long", bc + "a"},
		{"bcrypt cost 3", "$2y$03$" + bc[7:]},
		{"bcrypt cost 18", "$2y$18$" + bc[7:]},
		{"bcrypt cost 31", "$2y$31$" + bc[7:]},
		{"bcrypt cost letters", "$2y$1a$" + bc[7:]},
		{"bcrypt bad char", bc[:58] + "!" + bc[59:]},
		{"bcrypt no sep", "$2y$05" + bc[7:] + "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := Verify(tc.encoded, "correct horse battery staple")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("Verify = %v, %v; want false, ErrMalformedHash", ok, err)
			}
			if len(tc.encoded) > 12 && strings.Contains(err.Error(), tc.encoded[len(tc.encoded)-12:]) {
				t.Errorf("error echoes the hash: %v", err)
			}
		})
	}
}

func TestParamsValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := testParams.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Params{
		{},
		{MemoryKiB: MaxMemoryKiB + 1, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{MemoryKiB: 64, Iterations: MaxIterations + 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		{MemoryKiB: 64, Iterations: 1, Parallelism: 9, SaltLen: 16, KeyLen: 32}, // m < 8p
		{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 4, KeyLen: 32},
		{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 8},
		{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: MaxKeyLen + 1},
	} {
		if err := p.Validate(); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%+v: err = %v", p, err)
		}
		h := &Hasher{p: p}
		if _, err := h.Hash("x"); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%+v: Hash err = %v", p, err)
		}
	}
	if got := NewHasher(Params{}, nil).Params(); got != DefaultParams() {
		t.Errorf("zero params not defaulted: %+v", got)
	}
	if got := NewHasher(Params{Iterations: 5}, nil).Params(); got.Iterations != 5 || got.MemoryKiB != DefaultMemoryKiB {
		t.Errorf("partial defaults: %+v", got)
	}
	if _, err := NewHasher(testParams, bytes.NewReader(nil)).Hash("x"); err == nil {
		t.Error("Hash succeeded without randomness")
	}
}

func TestNeedsRehash(t *testing.T) {
	h := NewHasher(testParams, nil)
	enc, err := h.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	if h.NeedsRehash(enc) {
		t.Error("own hash needs rehash")
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for name, p := range map[string]Params{
		"memory":      {MemoryKiB: 128, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		"iterations":  {MemoryKiB: 64, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		"parallelism": {MemoryKiB: 64, Iterations: 1, Parallelism: 2, SaltLen: 16, KeyLen: 32},
		"salt":        {MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 32, KeyLen: 32},
		"key":         {MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 64},
	} {
		if !NewHasher(p, nil).NeedsRehash(enc) {
			t.Errorf("different %s: no rehash", name)
		}
	}
	for _, s := range []string{string(bc), "", "garbage", "$argon2id$v=19$m=64"} {
		if !h.NeedsRehash(s) {
			t.Errorf("NeedsRehash(%.10q) = false", s)
		}
	}
}

func TestVerifyDummy(t *testing.T) {
	h := NewHasher(Params{MemoryKiB: 256, Iterations: 2, Parallelism: 2, SaltLen: 24, KeyLen: 48}, nil)
	enc, err := h.Hash("real")
	if err != nil {
		t.Fatal(err)
	}
	h.VerifyDummy("warm up") // builds the dummy once
	if h.dummy == "" || h.NeedsRehash(h.dummy) {
		t.Fatalf("dummy hash %q does not use the hasher's params", h.dummy)
	}
	if ok, err := Verify(h.dummy, "warm up"); ok || err != nil {
		t.Fatalf("dummy verify = %v, %v", ok, err)
	}
	// Same work as a real check: argon2id's cost is fixed by m, t, p and
	// the key length, which all match the real hash (wall-clock ratios are
	// too noisy on a shared 2-core machine to assert).
	d, err := parseArgon2(h.dummy)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseArgon2(enc)
	if err != nil {
		t.Fatal(err)
	}
	if d.memory != r.memory || d.iterations != r.iterations || d.parallelism != r.parallelism ||
		len(d.salt) != len(r.salt) || len(d.key) != len(r.key) {
		t.Errorf("dummy %+v differs in cost from real %+v", d, r)
	}
	dummy := h.dummy
	h.VerifyDummy("again")
	if h.dummy != dummy {
		t.Error("dummy hash rebuilt on second use")
	}
	// Concurrent first use is safe and builds one dummy.
	h2 := NewHasher(testParams, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { h2.VerifyDummy("x") })
	}
	wg.Wait()
	if h2.dummy == "" {
		t.Fatal("no dummy")
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("$argon2id$v=19$m=256,t=1,p=1$YW5vdGhlcnNhbHQxMjM0$WqIosEUwMadB80E1AJOk4A", "pässwörd")
	f.Add("$2y$04$NGQxF2KoqOK0o7BPZ4cHP.JQyujwndYxHE.SMkiHNqjIq1S4llzou", "hunter2")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "")
	f.Add("{SHA}x", "x")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		// Keep each run cheap: skip (valid) hashes asking for real work.
		if a, err := parseArgon2(encoded); err == nil && (a.memory > 1024 || a.iterations > 2) {
			t.Skip()
		}
		if isBcryptPrefix(encoded) && checkBcrypt(encoded) == nil && encoded[4:6] > "05" {
			t.Skip()
		}
		ok, err := Verify(encoded, pw)
		if err != nil && (ok || !errors.Is(err, ErrMalformedHash)) {
			t.Fatalf("Verify = %v, %v", ok, err)
		}
		if ok {
			// Only a hash of pw verifies: it must also parse cleanly.
			if _, perr := parseArgon2(encoded); perr != nil && checkBcrypt(encoded) != nil {
				t.Fatalf("accepted an unparsable hash %q", encoded)
			}
		}
	})
}
