package totp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 6238's default HMAC-SHA1
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// RFC 6238 Appendix B seeds: the ASCII digits repeated to the hash size.
var rfcSeeds = map[string][]byte{
	"SHA1":   []byte("12345678901234567890"),
	"SHA256": []byte("12345678901234567890123456789012"),
	"SHA512": []byte("1234567890123456789012345678901234567890123456789012345678901234"),
}

var rfcVectors = []struct {
	unix int64
	alg  string
	code string
}{
	{59, "SHA1", "94287082"},
	{59, "SHA256", "46119246"},
	{59, "SHA512", "90693936"},
	{1111111109, "SHA1", "07081804"},
	{1111111109, "SHA256", "68084774"},
	{1111111109, "SHA512", "25091201"},
	{1111111111, "SHA1", "14050471"},
	{1111111111, "SHA256", "67062674"},
	{1111111111, "SHA512", "99943326"},
	{1234567890, "SHA1", "89005924"},
	{1234567890, "SHA256", "91819424"},
	{1234567890, "SHA512", "93441116"},
	{2000000000, "SHA1", "69279037"},
	{2000000000, "SHA256", "90698825"},
	{2000000000, "SHA512", "38618901"},
	{20000000000, "SHA1", "65353130"},
	{20000000000, "SHA256", "77737706"},
	{20000000000, "SHA512", "47863826"},
}

func TestRFC6238Vectors(t *testing.T) {
	for _, v := range rfcVectors {
		t.Run(fmt.Sprintf("%s/%d", v.alg, v.unix), func(t *testing.T) {
			o := Options{Period: 30, Digits: 8, Algorithm: v.alg, Skew: 0}
			at := time.Unix(v.unix, 0)
			got, err := Code(rfcSeeds[v.alg], at, o)
			if err != nil {
				t.Fatal(err)
			}
			if got != v.code {
				t.Errorf("Code = %s, want %s", got, v.code)
			}
			step, ok := Check(rfcSeeds[v.alg], v.code, at, o)
			if !ok || step != v.unix/30 {
				t.Errorf("Check = (%d, %v), want (%d, true)", step, ok, v.unix/30)
			}
			// Lower-case algorithm names are accepted too.
			o.Algorithm = strings.ToLower(v.alg)
			if _, ok := Check(rfcSeeds[v.alg], v.code, at, o); !ok {
				t.Error("Check with lower-case algorithm failed")
			}
		})
	}
}

// referenceCode is RFC 4226's HOTP written out with crypto/hmac, as an
// independent check of what Check computes through pquerna/otp.
func referenceCode(alg string, secret []byte, counter uint64, digits int) string {
	h := map[string]func() hash.Hash{"SHA1": sha1.New, "SHA256": sha256.New, "SHA512": sha512.New}[alg]
	mac := hmac.New(h, secret)
	_ = binary.Write(mac, binary.BigEndian, counter)
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// Check agrees with the reference everywhere: every algorithm and length,
// keys shorter and longer than every hash block (HMAC hashes long keys
// first), any period.
func TestCheckAgreesWithReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 600 {
		alg := []string{"SHA1", "SHA256", "SHA512"}[i%3]
		digits := 6 + i%3
		secret := make([]byte, MinSecretSize+r.IntN(200))
		for j := range secret {
			secret[j] = byte(r.Uint32())
		}
		at := time.Unix(r.Int64N(1<<34), 0)
		o := Options{Period: uint(1 + r.IntN(120)), Digits: digits, Algorithm: alg}
		want := referenceCode(alg, secret, uint64(Step(at, o.Period)), digits)
		if got, err := Code(secret, at, o); err != nil || got != want {
			t.Fatalf("case %d: Code = %s, %v; reference %s", i, got, err, want)
		}
		if step, ok := Check(secret, want, at, o); !ok || step != Step(at, o.Period) {
			t.Fatalf("case %d: Check(%s) = (%d, %v)", i, want, step, ok)
		}
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		unix   int64
		period uint
		want   int64
	}{
		{0, 30, 0},
		{29, 30, 0},
		{30, 30, 1},
		{59, 30, 1},
		{1111111109, 30, 37037036},
		{20000000000, 30, 666666666},
		{-1, 30, -1},
		{-30, 30, -1},
		{-31, 30, -2},
		{45, 0, 1}, // 0 means DefaultPeriod
		{119, 60, 1},
	}
	for _, tc := range tests {
		if got := Step(time.Unix(tc.unix, 0), tc.period); got != tc.want {
			t.Errorf("Step(%d, %d) = %d, want %d", tc.unix, tc.period, got, tc.want)
		}
	}
}

func TestCheckSkewBoundaries(t *testing.T) {
	secret := rfcSeeds["SHA1"]
	base := time.Unix(1_700_000_010, 0) // step 56666667, 10 s into it
	for _, skew := range []uint{0, 1, 2} {
		o := Options{Period: 30, Digits: 6, Algorithm: "SHA1", Skew: skew}
		centre := Step(base, 30)
		for d := -int64(skew) - 2; d <= int64(skew)+2; d++ {
			code, err := Code(secret, time.Unix((centre+d)*30, 0), o)
			if err != nil {
				t.Fatal(err)
			}
			step, ok := Check(secret, code, base, o)
			inside := d >= -int64(skew) && d <= int64(skew)
			if inside && (!ok || step != centre+d) {
				t.Errorf("skew %d, offset %d: Check = (%d, %v), want (%d, true)", skew, d, step, ok, centre+d)
			}
			if !inside && ok && step != centre+d {
				// Only a coincidental collision with an in-window step may pass.
				t.Logf("skew %d, offset %d: collision matched step %d", skew, d, step)
			}
			if !inside && ok && step == centre+d {
				t.Errorf("skew %d, offset %d: accepted a step outside the window", skew, d)
			}
		}
	}
}

func TestCheckAtOffset(t *testing.T) {
	secret := rfcSeeds["SHA256"]
	o := Options{Period: 30, Digits: 6, Algorithm: "SHA256", Skew: 1}
	now := time.Unix(1_700_000_000, 0)
	// The user's phone runs 4 minutes (8 steps) fast.
	phone := now.Add(4 * time.Minute)
	code, err := Code(secret, phone, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Check(secret, code, now, o); ok {
		t.Fatal("Check accepted a code 8 steps ahead with skew 1")
	}
	step, ok := CheckAt(secret, code, now, o, 8)
	if !ok || step != Step(phone, 30) {
		t.Fatalf("CheckAt(+8) = (%d, %v), want (%d, true)", step, ok, Step(phone, 30))
	}
	if step, ok := CheckAt(secret, code, now, o, 7); !ok || step != Step(phone, 30) {
		t.Fatalf("CheckAt(+7) = (%d, %v), want match through skew", step, ok)
	}
	if _, ok := CheckAt(secret, code, now, o, 5); ok {
		t.Fatal("CheckAt(+5) accepted a code 3 steps from its centre")
	}
}

func TestCheckPrefersCentre(t *testing.T) {
	// Two window steps giving the same code is rare; find such a secret by
	// brute force over a small space, then check the centre is preferred.
	o := Options{Period: 30, Digits: 6, Algorithm: "SHA1", Skew: 1}
	now := time.Unix(1_700_000_000, 0)
	centre := Step(now, 30)
	secret := make([]byte, 16)
	for i := range uint32(5_000_000) {
		secret[0], secret[1], secret[2], secret[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		c0 := referenceCode("SHA1", secret, uint64(centre), 6)
		cm := referenceCode("SHA1", secret, uint64(centre-1), 6)
		cp := referenceCode("SHA1", secret, uint64(centre+1), 6)
		if c0 == cm || c0 == cp {
			step, ok := Check(secret, c0, now, o)
			if !ok || step != centre {
				t.Fatalf("collision: Check = (%d, %v), want centre %d", step, ok, centre)
			}
			return
		}
		if cm == cp {
			step, ok := Check(secret, cm, now, o)
			if !ok || step != centre-1 {
				t.Fatalf("collision: Check = (%d, %v), want earlier %d", step, ok, centre-1)
			}
			return
		}
		if i > 200_000 {
			t.Skip("no collision found quickly")
		}
	}
}

func TestCheckMalformedCodes(t *testing.T) {
	secret := rfcSeeds["SHA1"]
	o := Options{Period: 30, Digits: 6, Algorithm: "SHA1", Skew: 1}
	now := time.Unix(1_700_000_000, 0)
	good, err := Code(secret, now, o)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		code string
	}{
		{"empty", ""},
		{"only spaces", "      "},
		{"letters", "abcdef"},
		{"letter inside", good[:3] + "a" + good[4:]},
		{"five digits", good[:5]},
		{"seven digits", good + "0"},
		{"leading zero padding", "0" + good},
		{"sign", "+" + good[1:]},
		{"minus", "-" + good[1:]},
		{"arabic-indic digits", "٠١٢٣٤٥"},
		{"fullwidth digits", "０１２３４５"},
		{"tab inside", good[:3] + "\t" + good[3:]},
		{"nbsp inside", good[:3] + "\u00a0" + good[3:]},
		{"newline inside", good[:3] + "\n" + good[3:]},
		{"dash inside", good[:3] + "-" + good[3:]},
		{"nul inside", good[:3] + "\x00" + good[3:]},
		{"too long input", strings.Repeat(" ", 40) + good},
		{"hex", "0x" + good[2:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if step, ok := Check(secret, tc.code, now, o); ok {
				t.Errorf("Check(%q) = (%d, true), want rejection", tc.code, step)
			}
		})
	}
}

func TestCheckNormalisesSpaces(t *testing.T) {
	secret := rfcSeeds["SHA1"]
	o := Options{Period: 30, Digits: 6, Algorithm: "SHA1", Skew: 0}
	now := time.Unix(1_700_000_000, 0)
	good, err := Code(secret, now, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		good,
		good[:3] + " " + good[3:], // as apps display it
		" " + good + " ",
		"\t" + good + "\r\n",
		strings.Join(strings.Split(good, ""), " "),
	} {
		if step, ok := Check(secret, in, now, o); !ok || step != Step(now, 30) {
			t.Errorf("Check(%q) = (%d, %v), want match", in, step, ok)
		}
	}
}

func TestCheckWrongCodeAndBadInputs(t *testing.T) {
	secret := rfcSeeds["SHA1"]
	o := DefaultOptions()
	now := time.Unix(1_700_000_000, 0)
	good, _ := Code(secret, now, o)
	wrong := fmt.Sprintf("%06d", (atoi(good)+1)%1_000_000)
	if _, ok := Check(secret, wrong, now, o); ok {
		t.Error("accepted a wrong code") // fixed inputs: no collision in the window
	}
	if _, ok := Check(secret[:MinSecretSize-1], good, now, o); ok {
		t.Error("accepted a secret shorter than MinSecretSize")
	}
	if _, ok := Check(nil, good, now, o); ok {
		t.Error("accepted a nil secret")
	}
	bad := o
	bad.Algorithm = "MD5"
	if _, ok := Check(secret, good, now, bad); ok {
		t.Error("accepted with invalid options")
	}
	// A code for step 0 checked at step 0 with skew: step -1 is never valid.
	o.Skew = 1
	c0, _ := Code(secret, time.Unix(0, 0), o)
	if step, ok := Check(secret, c0, time.Unix(5, 0), o); !ok || step != 0 {
		t.Errorf("Check at epoch = (%d, %v), want (0, true)", step, ok)
	}
	if _, err := Code(secret, time.Unix(-1, 0), o); !errors.Is(err, ErrBeforeEpoch) {
		t.Errorf("Code before epoch: err = %v", err)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{"zero", Options{}, []string{"period 0", "digits 0", `algorithm ""`}},
		{"digits 5", Options{Period: 30, Digits: 5, Algorithm: "SHA1"}, []string{"digits 5"}},
		{"digits 9", Options{Period: 30, Digits: 9, Algorithm: "SHA1"}, []string{"digits 9"}},
		{"md5", Options{Period: 30, Digits: 6, Algorithm: "MD5"}, []string{`algorithm "MD5"`}},
		{"period", Options{Period: MaxPeriod + 1, Digits: 6, Algorithm: "SHA1"}, []string{"period 3601"}},
		{"skew", Options{Period: 30, Digits: 6, Algorithm: "SHA1", Skew: MaxSkew + 1}, []string{"skew 11"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("err = %v, want ErrInvalidOptions", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	for _, ok := range []Options{
		{Period: 30, Digits: 8, Algorithm: "sha512", Skew: 0},
		{Period: 60, Digits: 7, Algorithm: "SHA256", Skew: MaxSkew},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

func TestSecrets(t *testing.T) {
	s, err := NewSecret(bytes.NewReader(bytes.Repeat([]byte{0xAB}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != SecretSize {
		t.Fatalf("len = %d", len(s))
	}
	if _, err := NewSecret(bytes.NewReader(make([]byte, 5))); err == nil {
		t.Fatal("short random source accepted")
	}
	enc := EncodeSecret(rfcSeeds["SHA1"])
	if enc != "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" {
		t.Fatalf("EncodeSecret = %s", enc)
	}
	if got := EncodeSecret([]byte("abcdefghijk")); strings.Contains(got, "=") {
		t.Errorf("padding in %s", got)
	}
	if got := GroupKey(enc); got != "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ" {
		t.Errorf("GroupKey = %q", got)
	}
	if got := GroupKey("mfrgg-zdf mzt"); got != "MFRG GZDF MZT" {
		t.Errorf("GroupKey(lower, dashes) = %q", got)
	}
	if got := GroupKey(""); got != "" {
		t.Errorf("GroupKey(\"\") = %q", got)
	}
	for _, in := range []string{enc, strings.ToLower(enc), GroupKey(enc), enc + "======"} {
		b, err := DecodeSecret(in)
		if err != nil || !bytes.Equal(b, rfcSeeds["SHA1"]) {
			t.Errorf("DecodeSecret(%q) = %x, %v", in, b, err)
		}
	}
	for _, in := range []string{"", "1189", "GEZD!"} {
		if _, err := DecodeSecret(in); !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("DecodeSecret(%q) err = %v", in, err)
		}
	}
}

func FuzzCheck(f *testing.F) {
	f.Add([]byte("12345678901234567890"), "287082", int64(59), uint8(6), uint8(1))
	f.Add([]byte("12345678901234567890"), "9428 7082", int64(59), uint8(8), uint8(0))
	f.Add([]byte{}, "", int64(-1), uint8(0), uint8(255))
	f.Add([]byte("0123456789"), "٠١٢٣٤٥", int64(1<<40), uint8(7), uint8(10))
	f.Fuzz(func(t *testing.T, secret []byte, code string, unix int64, digits, skew uint8) {
		o := Options{Period: 30, Digits: int(digits), Algorithm: "SHA1", Skew: uint(skew)}
		at := time.Unix(unix, 0)
		step, ok := Check(secret, code, at, o)
		if !ok {
			return
		}
		want, err := Code(secret, time.Unix(step*30, 0), o)
		if err != nil {
			t.Fatalf("accepted but Code fails: %v", err)
		}
		if norm := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, code); norm != want {
			t.Fatalf("accepted %q for step %d whose code is %s", code, step, want)
		}
		if d := step - Step(at, 30); d < -int64(skew) || d > int64(skew) {
			t.Fatalf("matched step %d outside the window", step)
		}
	})
}
