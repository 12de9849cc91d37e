package password

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUserLen is the longest user name accepted, in bytes.
const MaxUserLen = 256

// maxHtpasswdLine bounds one htpasswd line, in bytes.
const maxHtpasswdLine = 4096

// Problems ParseHtpasswd reports, each inside a *LineError.
var (
	ErrInvalidUser       = errors.New("invalid user name")
	ErrDuplicateUser     = errors.New("duplicate user")
	ErrUnsupportedScheme = errors.New("unsupported password scheme")
	ErrMalformedLine     = errors.New("malformed line")
)

// Entry is one accepted htpasswd line.
type Entry struct {
	User string
	Hash string // a bcrypt hash ($2a$, $2b$ or $2y$)
	Line int    // 1-based
}

// LineError is a problem with one htpasswd line. Its message names the
// line, the user when known and the scheme, never the hash or password.
type LineError struct {
	Line int
	User string // empty when the line has no parsable user
	Err  error
}

func (e *LineError) Error() string {
	if e.User == "" {
		return fmt.Sprintf("htpasswd line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("htpasswd line %d: user %q: %v", e.Line, e.User, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// CheckUserName returns an error wrapping ErrInvalidUser unless name is
// non-empty, valid UTF-8, at most MaxUserLen bytes, and free of ':',
// whitespace and control characters.
func CheckUserName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidUser)
	case len(name) > MaxUserLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidUser, MaxUserLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidUser)
	}
	for _, r := range name {
		switch {
		case r == ':':
			return fmt.Errorf("%w: contains ':'", ErrInvalidUser)
		case unicode.IsSpace(r):
			return fmt.Errorf("%w: contains whitespace", ErrInvalidUser)
		case unicode.IsControl(r) || r == '\uFEFF':
			return fmt.Errorf("%w: contains a control character", ErrInvalidUser)
		}
	}
	return nil
}

// ParseHtpasswd reads an Apache htpasswd file and returns its bcrypt
// entries. Blank lines and lines starting with '#' are skipped; CRLF line
// ends and a leading UTF-8 byte-order mark are tolerated. Every other line
// that is not "user:bcrypt-hash" with a valid user name is reported as a
// *LineError and not returned as an entry: other schemes ({SHA}, $apr1$,
// crypt, plain text, ...) wrap ErrUnsupportedScheme and name the scheme, bad
// user names wrap ErrInvalidUser, and a user seen again wraps
// ErrDuplicateUser (the first entry is kept, as Apache uses the first match).
// A read error ends parsing and is the last problem.
func ParseHtpasswd(r io.Reader) (entries []Entry, problems []error) {
	br := bufio.NewReaderSize(r, maxHtpasswdLine)
	seen := map[string]int{}
	for lineNo := 1; ; lineNo++ {
		data, err := br.ReadSlice('\n')
		tooLong := false
		for errors.Is(err, bufio.ErrBufferFull) {
			tooLong = true
			_, err = br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			problems = append(problems, fmt.Errorf("htpasswd: reading line %d: %w", lineNo, err))
			return entries, problems
		}
		if len(data) == 0 && !tooLong && errors.Is(err, io.EOF) {
			return entries, problems
		}
		switch {
		case tooLong:
			problems = append(problems, &LineError{Line: lineNo, Err: fmt.Errorf("%w: longer than %d bytes", ErrMalformedLine, maxHtpasswdLine)})
		default:
			if lineNo == 1 {
				data = bytes.TrimPrefix(data, []byte("\uFEFF"))
			}
			e, perr := parseHtpasswdLine(string(data), lineNo)
			switch {
			case perr != nil:
				problems = append(problems, perr)
			case e == nil: // blank or comment
			case seen[e.User] != 0:
				problems = append(problems, &LineError{Line: lineNo, User: e.User,
					Err: fmt.Errorf("%w: already defined on line %d (that entry is used)", ErrDuplicateUser, seen[e.User])})
			default:
				seen[e.User] = lineNo
				entries = append(entries, *e)
			}
		}
		if errors.Is(err, io.EOF) {
			return entries, problems
		}
	}
}

// parseHtpasswdLine returns (nil, nil) for blank and comment lines.
func parseHtpasswdLine(line string, lineNo int) (*Entry, error) {
	line = strings.TrimRight(line, "\r\n")
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return nil, nil
	}
	user, hash, ok := strings.Cut(line, ":")
	if !ok {
		// The line might be a bare password: do not echo any of it.
		return nil, &LineError{Line: lineNo, Err: fmt.Errorf("%w: want user:hash", ErrMalformedLine)}
	}
	if err := CheckUserName(user); err != nil {
		return nil, &LineError{Line: lineNo, User: printableUser(user), Err: err}
	}
	hash = strings.TrimSpace(hash)
	if !isBcryptPrefix(hash) {
		return nil, &LineError{Line: lineNo, User: user,
			Err: fmt.Errorf("%w: %s; re-create the entry with htpasswd -B", ErrUnsupportedScheme, schemeName(hash))}
	}
	if err := checkBcrypt(hash); err != nil {
		return nil, &LineError{Line: lineNo, User: user, Err: err}
	}
	return &Entry{User: user, Hash: hash, Line: lineNo}, nil
}

// printableUser keeps a rejected user name short for the report (%q
// escapes control characters).
func printableUser(u string) string {
	if len(u) > 64 {
		u = u[:64] + "..."
	}
	return strings.ToValidUTF8(u, "\uFFFD")
}
