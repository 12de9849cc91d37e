package totp

import (
	"crypto/sha1" //nolint:gosec // RFC 6238's default HMAC-SHA1, not a signature
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp"
	ptotp "github.com/pquerna/otp/totp"
)

// MaxScanSteps caps the window Scan searches either side (one day at 30 s).
const MaxScanSteps = 2880

// maxCodeInput bounds the raw input a check looks at, spaces included.
const maxCodeInput = 32

// ErrBeforeEpoch is returned by Code for times before the Unix epoch.
var ErrBeforeEpoch = errors.New("totp: time before the Unix epoch")

// Step returns the RFC 6238 time step of t: floor(unix seconds / period).
// A period of 0 means DefaultPeriod.
func Step(t time.Time, period uint) int64 {
	if period == 0 {
		period = DefaultPeriod
	}
	p := int64(period)
	s := t.Unix()
	q := s / p
	if s%p != 0 && s < 0 {
		q--
	}
	return q
}

// Code returns the code for secret at time t.
func Code(secret []byte, t time.Time, o Options) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	if len(secret) < MinSecretSize {
		return "", ErrSecretTooShort
	}
	if t.Unix() < 0 {
		return "", ErrBeforeEpoch
	}
	alg, _ := parseAlgorithm(o.Algorithm)
	code, err := ptotp.GenerateCodeCustom(EncodeSecret(secret), t, ptotp.ValidateOpts{
		Period:    o.Period,
		Digits:    otp.Digits(o.Digits),
		Algorithm: alg,
	})
	if err != nil {
		return "", fmt.Errorf("totp: generating code: %w", err)
	}
	return code, nil
}

// Check reports whether code is valid for secret at time t, accepting the
// steps Step(t)-Skew..Step(t)+Skew, and returns the matched step for replay
// protection (the caller must refuse a step at or below the last one it
// accepted for this user). It is CheckAt with no drift offset.
func Check(secret []byte, code string, t time.Time, o Options) (step int64, ok bool) {
	return CheckAt(secret, code, t, o, 0)
}

// CheckAt is Check around a centre shifted by offsetSteps (a stored
// per-user clock drift): it accepts Step(t)+offsetSteps ± Skew.
//
// The code is normalised first: ASCII spaces anywhere ("123 456", as apps
// display it) and surrounding tabs/newlines are dropped; what remains must
// be exactly o.Digits ASCII digits, otherwise the check fails without
// computing anything. Every candidate step is then computed and compared in
// constant time, whichever matches; if several match, the one nearest the
// centre wins (earlier first on a tie). Invalid options, a secret shorter
// than MinSecretSize and steps before the epoch never match.
func CheckAt(secret []byte, code string, t time.Time, o Options, offsetSteps int) (step int64, ok bool) {
	alg, valid := o.valid()
	if !valid || len(secret) < MinSecretSize {
		return 0, false
	}
	want, parsed := parseCode(code, o.Digits)
	if !parsed {
		return 0, false
	}
	g := newGenerator(alg, secret, o.Digits)
	defer g.clear()
	centre := Step(t, o.Period) + int64(offsetSteps)

	var found int32
	var matched int64
	for i := 0; i <= 2*int(o.Skew); i++ {
		cand := centre + delta(i)
		got := g.code(uint64(cand))
		// cand >= 0 depends only on public values.
		eq := int32(subtle.ConstantTimeEq(int32(got), int32(want)))
		if cand < 0 {
			eq = 0
		}
		take := eq &^ found
		mask := -int64(take) // all ones when taking this candidate
		matched = matched&^mask | cand&mask
		found |= take
	}
	return matched, found == 1
}

// Scan searches Step(t) ± maxSteps (capped at MaxScanSteps) for the step
// that produced code and returns its offset from Step(t), nearest first
// (negative first on a tie). It is for diagnosing clock drift, never for
// accepting a code: it is neither constant-time nor replay-aware.
func Scan(secret []byte, code string, t time.Time, o Options, maxSteps int) (offset int, found bool) {
	alg, valid := o.valid()
	if !valid || len(secret) < MinSecretSize {
		return 0, false
	}
	want, parsed := parseCode(code, o.Digits)
	if !parsed {
		return 0, false
	}
	maxSteps = max(0, min(maxSteps, MaxScanSteps))
	g := newGenerator(alg, secret, o.Digits)
	defer g.clear()
	centre := Step(t, o.Period)
	for i := 0; i <= 2*maxSteps; i++ {
		d := delta(i)
		cand := centre + d
		if cand < 0 {
			continue
		}
		if g.code(uint64(cand)) == want {
			return int(d), true
		}
	}
	return 0, false
}

// delta maps 0,1,2,3,4,... to 0,-1,+1,-2,+2,...
func delta(i int) int64 {
	d := int64(i+1) / 2
	if i%2 == 1 {
		return -d
	}
	return d
}

// parseCode normalises code and returns its value if it is exactly digits
// ASCII digits. It does not allocate.
func parseCode(code string, digits int) (uint32, bool) {
	if len(code) > maxCodeInput {
		return 0, false
	}
	// Trim surrounding whitespace (copy-paste artefacts).
	start, end := 0, len(code)
	for start < end && isTrimSpace(code[start]) {
		start++
	}
	for end > start && isTrimSpace(code[end-1]) {
		end--
	}
	var v uint32
	n := 0
	for i := start; i < end; i++ {
		c := code[i]
		switch {
		case c == ' ':
			continue
		case c >= '0' && c <= '9':
			n++
			if n > digits {
				return 0, false
			}
			v = v*10 + uint32(c-'0')
		default:
			return 0, false
		}
	}
	return v, n == digits
}

func isTrimSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// generator computes HOTP values (RFC 4226) with an HMAC written out over
// fixed-size arrays (HMAC(K, m) = H(K^opad || H(K^ipad || m)), RFC 2104),
// so a check allocates nothing: crypto/hmac would allocate its two hash
// states and pads for every check. Cross-checked in the tests against
// pquerna/otp and the RFC 6238 vectors.
type generator struct {
	alg   otp.Algorithm
	mod   uint32
	block int       // the hash's block size
	ipad  [128]byte // key XOR 0x36, block bytes used
	opad  [128]byte // key XOR 0x5c
}

// maxHMACBlock is SHA-512's block size, the largest of the three.
const maxHMACBlock = 128

func newGenerator(alg otp.Algorithm, secret []byte, digits int) generator {
	g := generator{alg: alg, mod: 1, block: 64}
	for range digits {
		g.mod *= 10
	}
	var hashed [64]byte
	key := secret
	switch alg {
	case otp.AlgorithmSHA512:
		g.block = maxHMACBlock
		if len(key) > g.block {
			hashed = sha512.Sum512(key)
			key = hashed[:]
		}
	case otp.AlgorithmSHA256:
		if len(key) > g.block {
			h := sha256.Sum256(key)
			key = hashed[:copy(hashed[:], h[:])]
		}
	default:
		if len(key) > g.block {
			h := sha1.Sum(key)
			key = hashed[:copy(hashed[:], h[:])]
		}
	}
	copy(g.ipad[:], key)
	copy(g.opad[:], key)
	clear(hashed[:])
	for i := range g.block {
		g.ipad[i] ^= 0x36
		g.opad[i] ^= 0x5c
	}
	return g
}

// clear wipes the key material.
func (g *generator) clear() {
	clear(g.ipad[:])
	clear(g.opad[:])
}

func (g *generator) code(counter uint64) uint32 {
	var in [maxHMACBlock + 8]byte
	var out [maxHMACBlock + sha512.Size]byte
	b := g.block
	copy(in[:b], g.ipad[:b])
	binary.BigEndian.PutUint64(in[b:], counter)
	copy(out[:b], g.opad[:b])
	var sum []byte
	switch g.alg {
	case otp.AlgorithmSHA512:
		inner := sha512.Sum512(in[:b+8])
		n := copy(out[b:], inner[:])
		outer := sha512.Sum512(out[:b+n])
		sum = outer[:]
	case otp.AlgorithmSHA256:
		inner := sha256.Sum256(in[:b+8])
		n := copy(out[b:], inner[:])
		outer := sha256.Sum256(out[:b+n])
		sum = outer[:]
	default:
		inner := sha1.Sum(in[:b+8])
		n := copy(out[b:], inner[:])
		outer := sha1.Sum(out[:b+n])
		sum = outer[:]
	}
	clear(in[:b])
	clear(out[:b])
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return v % g.mod
}
