package secretbox

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeySize is the key length in bytes (AES-256).
const KeySize = 32

// maxKeyFile bounds how much of a key file is read.
const maxKeyFile = 4096

var (
	// ErrInvalidKey is returned for key text that is not 32 bytes in hex or base64.
	ErrInvalidKey = errors.New("secretbox: invalid key")
	// ErrInsecureKeyFile is returned for a key file that group or others can access.
	ErrInsecureKeyFile = errors.New("secretbox: key file is accessible by group or others")
)

// Key is an AES-256 key. Its String and GoString never reveal the bytes,
// so a key that reaches a log or a %v shows as redacted.
type Key [KeySize]byte

// String implements fmt.Stringer without revealing the key.
func (Key) String() string { return "secretbox.Key(redacted)" }

// GoString implements fmt.GoStringer without revealing the key.
func (Key) GoString() string { return "secretbox.Key(redacted)" }

// Hex returns the key as 64 lower-case hex characters (the key file format).
func (k Key) Hex() string { return hex.EncodeToString(k[:]) }

// GenerateKey reads a new key from r (normally crypto/rand.Reader).
func GenerateKey(r io.Reader) (Key, error) {
	var k Key
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return Key{}, fmt.Errorf("secretbox: reading random key: %w", err)
	}
	return k, nil
}

// ParseKey accepts 64 hex characters, or standard base64 (padded or raw)
// of 32 bytes, ignoring surrounding whitespace. Errors never echo the input.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	var k Key
	if len(s) == 2*KeySize {
		if n, err := hex.Decode(k[:], []byte(s)); err == nil && n == KeySize {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if enc.DecodedLen(len(s)) < KeySize || len(s) > enc.EncodedLen(KeySize) {
			continue
		}
		b, err := enc.Strict().DecodeString(s)
		if err == nil && len(b) == KeySize {
			copy(k[:], b)
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("%w: want 64 hex characters or base64 of %d bytes (got %d characters)", ErrInvalidKey, KeySize, len(s))
}

// LoadOrCreate reads the key at path or, if the file does not exist,
// creates it holding a new key from r (crypto/rand.Reader when nil) as hex,
// and reports whether it did.
//
// A new file is written to a temporary file in the same directory (mode
// 0600), synced, then hard-linked into place, which fails if path appeared
// meanwhile: when two processes race, exactly one key wins and the loser
// loads it. A missing parent directory is created with mode 0700. On Unix an
// existing file whose mode grants group or others any access is refused
// with ErrInsecureKeyFile, naming the path and the chmod that fixes it.
func LoadOrCreate(path string, r io.Reader) (key Key, created bool, err error) {
	for range 5 {
		key, err = load(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return key, false, err
		}
		key, err = create(path, r)
		if errors.Is(err, fs.ErrExist) {
			continue // lost a race: load the winner's key
		}
		return key, err == nil, err
	}
	return Key{}, false, fmt.Errorf("secretbox: key file %s keeps appearing and disappearing", path)
}

func load(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Key{}, err
		}
		return Key{}, fmt.Errorf("secretbox: opening key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("secretbox: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Key{}, fmt.Errorf("secretbox: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return Key{}, fmt.Errorf("%w: %s has mode %04o; fix with: chmod 600 %s", ErrInsecureKeyFile, path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return Key{}, fmt.Errorf("secretbox: reading key file %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return Key{}, fmt.Errorf("%w: key file %s is larger than %d bytes", ErrInvalidKey, path, maxKeyFile)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// create writes a new key to path; it returns an error wrapping
// fs.ErrExist if path already exists.
func create(path string, r io.Reader) (Key, error) {
	if r == nil {
		r = rand.Reader
	}
	k, err := GenerateKey(r)
	if err != nil {
		return Key{}, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, fmt.Errorf("secretbox: creating key directory: %w", err)
	}
	content := []byte(k.Hex() + "\n")

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return Key{}, fmt.Errorf("secretbox: creating key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := writeSync(tmp, content); err != nil {
		return Key{}, fmt.Errorf("secretbox: writing key file: %w", err)
	}

	switch err := os.Link(tmpName, path); {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return Key{}, err
	default:
		// The file system cannot hard-link: fall back to O_EXCL creation,
		// which still guarantees a single winner.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return Key{}, err
			}
			return Key{}, fmt.Errorf("secretbox: creating key file: %w", err)
		}
		if err := writeSync(f, content); err != nil {
			os.Remove(path)
			return Key{}, fmt.Errorf("secretbox: writing key file: %w", err)
		}
	}
	syncDir(dir)

	// Read back what is on disk: it is the key every process will use.
	got, err := load(path)
	if err != nil {
		return Key{}, err
	}
	if !bytes.Equal(got[:], k[:]) {
		return Key{}, fmt.Errorf("secretbox: key file %s changed while being created", path)
	}
	return k, nil
}

func writeSync(f *os.File, b []byte) error {
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

// syncDir makes the new directory entry durable; failure is harmless
// (some platforms cannot sync directories).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Load reads the key file at path, with LoadOrCreate's checks, and never
// creates one: a missing file is an error matching fs.ErrNotExist.
func Load(path string) (Key, error) {
	k, err := load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Key{}, fmt.Errorf("secretbox: key file %s: %w", path, err)
	}
	return k, err
}
