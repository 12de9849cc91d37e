package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Default argon2id parameters.
const (
	DefaultMemoryKiB   = 64 * 1024
	DefaultIterations  = 3
	DefaultParallelism = 2
	DefaultSaltLen     = 16
	DefaultKeyLen      = 32
)

// Bounds on argon2id parameters, for new hashes and for hashes being
// verified (so a planted hash cannot make a login attempt cost gigabytes
// or minutes).
const (
	MaxMemoryKiB   = 1 << 20 // 1 GiB
	MaxIterations  = 64
	MaxParallelism = 64
	MinSaltLen     = 8
	MaxSaltLen     = 64
	MinKeyLen      = 16
	MaxKeyLen      = 128
	// MaxBcryptCost is the highest bcrypt cost accepted (htpasswd -C allows
	// up to 17; each step doubles the work).
	MaxBcryptCost = 17
)

// maxEncodedLen bounds the encoded hash a verifier will parse.
const maxEncodedLen = 512

var (
	// ErrMalformedHash is wrapped by every error about a stored hash that
	// cannot be verified: unparsable, unsupported scheme or out of bounds.
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrInvalidParams is wrapped by Params.Validate errors.
	ErrInvalidParams = errors.New("password: invalid argon2id parameters")
)

// Params are argon2id parameters for new hashes.
type Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
	SaltLen     uint32
	KeyLen      uint32
}

// DefaultParams returns 64 MiB, 3 iterations, parallelism 2, a 16-byte salt
// and a 32-byte key.
func DefaultParams() Params {
	return Params{
		MemoryKiB:   DefaultMemoryKiB,
		Iterations:  DefaultIterations,
		Parallelism: DefaultParallelism,
		SaltLen:     DefaultSaltLen,
		KeyLen:      DefaultKeyLen,
	}
}

// Validate reports every parameter outside the package's bounds; each
// error wraps ErrInvalidParams.
func (p Params) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidParams}, args...)...))
	}
	if p.Parallelism < 1 || p.Parallelism > MaxParallelism {
		bad("parallelism %d must be between 1 and %d", p.Parallelism, MaxParallelism)
	}
	if p.MemoryKiB < 8*uint32(max(p.Parallelism, 1)) || p.MemoryKiB > MaxMemoryKiB {
		bad("memory %d KiB must be between 8×parallelism and %d", p.MemoryKiB, MaxMemoryKiB)
	}
	if p.Iterations < 1 || p.Iterations > MaxIterations {
		bad("iterations %d must be between 1 and %d", p.Iterations, MaxIterations)
	}
	if p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen {
		bad("salt length %d must be between %d and %d", p.SaltLen, MinSaltLen, MaxSaltLen)
	}
	if p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen {
		bad("key length %d must be between %d and %d", p.KeyLen, MinKeyLen, MaxKeyLen)
	}
	return errors.Join(errs...)
}

// Hasher makes argon2id hashes with fixed parameters. It is safe for
// concurrent use.
type Hasher struct {
	p    Params
	rand io.Reader

	dummyOnce sync.Once
	dummy     string
}

// NewHasher returns a Hasher using p, with zero fields taken from
// DefaultParams, and salts from r (crypto/rand.Reader when nil). Parameters
// outside the bounds make Hash fail; check them first with Params.Validate.
func NewHasher(p Params, r io.Reader) *Hasher {
	d := DefaultParams()
	if p.MemoryKiB == 0 {
		p.MemoryKiB = d.MemoryKiB
	}
	if p.Iterations == 0 {
		p.Iterations = d.Iterations
	}
	if p.Parallelism == 0 {
		p.Parallelism = d.Parallelism
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	if r == nil {
		r = rand.Reader
	}
	return &Hasher{p: p, rand: r}
}

// Params returns the parameters the Hasher uses (defaults filled in).
func (h *Hasher) Params() Params { return h.p }

// Hash returns pw hashed with argon2id as a PHC string:
//
//	$argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>
//
// with salt and hash in unpadded standard base64.
func (h *Hasher) Hash(pw string) (string, error) {
	if err := h.p.Validate(); err != nil {
		return "", err
	}
	salt := make([]byte, h.p.SaltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, h.p.Iterations, h.p.MemoryKiB, h.p.Parallelism, h.p.KeyLen)
	return encodeArgon2(argon2Hash{
		memory: h.p.MemoryKiB, iterations: h.p.Iterations, parallelism: h.p.Parallelism, salt: salt, key: key,
	}), nil
}

// Verify is the package-level Verify (for use through an interface).
func (h *Hasher) Verify(encoded, pw string) (bool, error) { return Verify(encoded, pw) }

// VerifyDummy does the work of verifying pw against a hash made with the
// Hasher's parameters and throws the result away, so that a login for an
// unknown user takes as long as one for a known user. The dummy hash is
// made once, on first use.
func (h *Hasher) VerifyDummy(pw string) {
	h.dummyOnce.Do(func() {
		salt := make([]byte, h.p.SaltLen)
		key := make([]byte, h.p.KeyLen)
		// Random bytes stand in for a real hash: nothing can match it and
		// the verification work is identical. On a read failure the zero
		// bytes serve as well.
		_, _ = io.ReadFull(h.rand, salt)
		_, _ = io.ReadFull(h.rand, key)
		h.dummy = encodeArgon2(argon2Hash{
			memory: h.p.MemoryKiB, iterations: h.p.Iterations, parallelism: h.p.Parallelism, salt: salt, key: key,
		})
	})
	_, _ = Verify(h.dummy, pw)
}

// NeedsRehash reports whether encoded should be replaced by a new Hash of
// the password (after a successful Verify): true for bcrypt, for argon2id
// with any parameter, salt or key length different from the Hasher's, and
// for anything unparsable.
func (h *Hasher) NeedsRehash(encoded string) bool {
	a, err := parseArgon2(encoded)
	if err != nil {
		return true
	}
	return a.memory != h.p.MemoryKiB || a.iterations != h.p.Iterations || a.parallelism != h.p.Parallelism ||
		uint32(len(a.salt)) != h.p.SaltLen || uint32(len(a.key)) != h.p.KeyLen
}

// Verify reports whether pw matches encoded, an argon2id PHC string (any
// parameters within the package bounds) or a bcrypt hash ($2a$, $2b$,
// $2y$; as everywhere, bcrypt uses only the first 72 bytes of a password).
// A mismatch is (false, nil); a hash that cannot be verified is (false, err)
// with err wrapping ErrMalformedHash. The comparison is constant-time.
func Verify(encoded, pw string) (bool, error) {
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		a, err := parseArgon2(encoded)
		if err != nil {
			return false, err
		}
		key := argon2.IDKey([]byte(pw), a.salt, a.iterations, a.memory, a.parallelism, uint32(len(a.key)))
		return subtle.ConstantTimeCompare(key, a.key) == 1, nil
	case isBcryptPrefix(encoded):
		if err := checkBcrypt(encoded); err != nil {
			return false, err
		}
		switch err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(pw)); {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		default:
			return false, fmt.Errorf("%w: bcrypt: %w", ErrMalformedHash, err)
		}
	}
	return false, fmt.Errorf("%w: unsupported scheme %s", ErrMalformedHash, schemeName(encoded))
}

type argon2Hash struct {
	memory, iterations uint32
	parallelism        uint8
	salt, key          []byte
}

func encodeArgon2(a argon2Hash) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, a.memory, a.iterations, a.parallelism,
		base64.RawStdEncoding.EncodeToString(a.salt), base64.RawStdEncoding.EncodeToString(a.key))
}

// parseArgon2 parses an argon2id PHC string strictly and checks its bounds.
func parseArgon2(encoded string) (argon2Hash, error) {
	var a argon2Hash
	malformed := func(why string) (argon2Hash, error) {
		return argon2Hash{}, fmt.Errorf("%w: argon2id: %s", ErrMalformedHash, why)
	}
	if len(encoded) > maxEncodedLen {
		return malformed("too long")
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return malformed("want $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	if v, ok := strings.CutPrefix(parts[2], "v="); !ok {
		return malformed("missing version")
	} else if n, ok := parseUint(v); !ok || n != argon2.Version {
		return malformed("unsupported version")
	}
	ps := strings.Split(parts[3], ",")
	if len(ps) != 3 {
		return malformed("want parameters m,t,p")
	}
	var vals [3]uint32
	for i, name := range []string{"m=", "t=", "p="} {
		s, ok := strings.CutPrefix(ps[i], name)
		if !ok {
			return malformed("want parameters m,t,p in that order")
		}
		if vals[i], ok = parseUint(s); !ok {
			return malformed("bad parameter " + name[:1])
		}
	}
	a.memory, a.iterations = vals[0], vals[1]
	if vals[2] < 1 || vals[2] > MaxParallelism {
		return malformed(fmt.Sprintf("parallelism %d outside 1..%d", vals[2], MaxParallelism))
	}
	a.parallelism = uint8(vals[2])
	if a.memory < 8*vals[2] || a.memory > MaxMemoryKiB {
		return malformed(fmt.Sprintf("memory %d KiB outside 8×parallelism..%d", a.memory, MaxMemoryKiB))
	}
	if a.iterations < 1 || a.iterations > MaxIterations {
		return malformed(fmt.Sprintf("iterations %d outside 1..%d", a.iterations, MaxIterations))
	}
	var err error
	if a.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil {
		return malformed("salt is not unpadded base64")
	}
	if len(a.salt) < MinSaltLen || len(a.salt) > MaxSaltLen {
		return malformed(fmt.Sprintf("salt length %d outside %d..%d", len(a.salt), MinSaltLen, MaxSaltLen))
	}
	if a.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil {
		return malformed("hash is not unpadded base64")
	}
	if len(a.key) < MinKeyLen || len(a.key) > MaxKeyLen {
		return malformed(fmt.Sprintf("hash length %d outside %d..%d", len(a.key), MinKeyLen, MaxKeyLen))
	}
	return a, nil
}

// parseUint accepts canonical decimal: digits only, no sign, no leading zero.
func parseUint(s string) (uint32, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

func isBcryptPrefix(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// checkBcrypt validates the full shape of a bcrypt hash: $2?$NN$ then 53
// characters of bcrypt's base64 alphabet, and the cost bound.
func checkBcrypt(s string) error {
	malformed := func(why string) error { return fmt.Errorf("%w: bcrypt: %s", ErrMalformedHash, why) }
	if len(s) != 60 {
		return malformed("want 60 characters")
	}
	if !isBcryptPrefix(s) || s[6] != '$' {
		return malformed("want $2a$, $2b$ or $2y$ and a two-digit cost")
	}
	cost, ok := parseUint(strings.TrimPrefix(s[4:6], "0"))
	if !ok || cost < uint32(bcrypt.MinCost) || cost > MaxBcryptCost {
		return malformed(fmt.Sprintf("cost must be between %d and %d", bcrypt.MinCost, MaxBcryptCost))
	}
	for i := 7; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '/' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return malformed("invalid character")
		}
	}
	return nil
}

// schemeName names the scheme of a hash for error messages without
// revealing the hash (or a plain-text password) itself.
func schemeName(h string) string {
	switch {
	case h == "":
		return "(empty)"
	case strings.HasPrefix(h, "$2x$"):
		return "bcrypt $2x$ (buggy variant)"
	case strings.HasPrefix(h, "$apr1$"):
		return "Apache MD5 ($apr1$)"
	case strings.HasPrefix(h, "$1$"):
		return "MD5-crypt ($1$)"
	case strings.HasPrefix(h, "$5$"):
		return "SHA-256-crypt ($5$)"
	case strings.HasPrefix(h, "$6$"):
		return "SHA-512-crypt ($6$)"
	case strings.HasPrefix(h, "$y$"):
		return "yescrypt ($y$)"
	case strings.HasPrefix(h, "$argon2i$"):
		return "argon2i ($argon2i$)"
	case strings.HasPrefix(h, "$argon2d$"):
		return "argon2d ($argon2d$)"
	case strings.HasPrefix(h, "$argon2id$"):
		return "argon2id ($argon2id$)"
	case strings.HasPrefix(h, "{SHA}"):
		return "SHA-1 ({SHA})"
	case strings.HasPrefix(h, "{SSHA}"):
		return "salted SHA-1 ({SSHA})"
	case isBcryptPrefix(h):
		return "bcrypt"
	case len(h) == 13 && isCryptAlphabet(h):
		return "DES crypt"
	}
	return "plain text or unknown"
}

func isCryptAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '/' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
