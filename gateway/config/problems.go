package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong (or, from Warnings, risky) in the
// configuration. Key is the full key path ("routes[1].upstream"); Line is
// the line of the file that set it, or 0 when it was not set in the file.
type Problem struct {
	Key  string
	Line int
	Msg  string
}

// String renders the problem as `key (line N): msg`.
func (p Problem) String() string {
	key := p.Key
	if key == "" {
		key = "config"
	}
	if p.Line > 0 {
		return fmt.Sprintf("%s (line %d): %s", key, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", key, p.Msg)
}

// Problems is every problem Validate found; it is the error Validate returns.
type Problems []Problem

// Error renders one problem per line.
func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}
