package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Environment variables that override the file.
const (
	EnvSecretKey     = "AUTHGATE_SECRET_KEY"
	EnvRedisPassword = "AUTHGATE_REDIS_PASSWORD"
	// EnvRedisSentinelPassword overrides store.redis.sentinel_password
	// and sentinel_password_file.
	EnvRedisSentinelPassword = "AUTHGATE_REDIS_SENTINEL_PASSWORD"
)

// maxSecretFileSize bounds what password_file may hold.
const maxSecretFileSize = 64 << 10

// ErrSecretConflict is returned when store.redis.password and
// store.redis.password_file are both set in the file.
var ErrSecretConflict = errors.New("config: store.redis.password and store.redis.password_file are both set")

// ErrSentinelSecretConflict is ErrSecretConflict for the sentinels' password.
var ErrSentinelSecretConflict = errors.New("config: store.redis.sentinel_password and store.redis.sentinel_password_file are both set")

// DecodeError lists every problem found while decoding the file: unknown
// or duplicate keys and values of the wrong type. Each Problem's Msg names
// its key, so it reads on its own after "line N: ".
type DecodeError struct {
	Name     string // file name as given to Load or LoadBytes
	Problems Problems
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.Key != "" {
			fmt.Fprintf(&b, "config: %s: line %d: %s: %s", e.Name, p.Line, p.Key, p.Msg)
		} else {
			fmt.Fprintf(&b, "config: %s: line %d: %s", e.Name, p.Line, p.Msg)
		}
	}
	return b.String()
}

// Load reads the YAML file at path and returns the configuration: the
// defaults, overridden by the file, then by the environment and
// store.redis.password_file. It does not validate: call Validate.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return LoadBytes(data, path)
}

// LoadBytes is Load for a file already in memory; name is used in errors.
func LoadBytes(data []byte, name string) (*Config, error) {
	c, probs, err := decodeAll(data, name)
	if err != nil {
		return nil, err
	}
	if len(probs) > 0 {
		return nil, &DecodeError{Name: name, Problems: probs}
	}
	if err := c.loadSecrets(); err != nil {
		return nil, err
	}
	return c, nil
}

// Check reads the file at path and reports every problem at once: the
// decoding problems (unknown or duplicate keys, wrong types) together with
// the validation problems of the values that did decode, sorted by line.
// The config is returned only when there is no problem at all. The error
// is for files that cannot be checked (unreadable, not YAML).
func Check(path string) (*Config, Problems, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	return CheckBytes(data, path)
}

// CheckBytes is Check for a file already in memory.
func CheckBytes(data []byte, name string) (*Config, Problems, error) {
	c, probs, err := decodeAll(data, name)
	if err != nil {
		return nil, nil, err
	}
	if err := c.loadSecrets(); err != nil {
		probs = append(probs, Problem{Key: "store.redis.password_file", Line: c.Line("store.redis.password_file"), Msg: err.Error()})
	}
	var vp Problems
	if verr := c.Validate(); verr != nil && !errors.As(verr, &vp) {
		return nil, nil, verr
	}
	// A key whose value did not decode keeps its default; what
	// validation says about it then is a follow-on, not a problem of the
	// file: only the decoding problem is reported.
	failed := map[string]bool{}
	for _, p := range probs {
		failed[p.Key] = true
	}
	for _, p := range vp {
		if !failed[p.Key] {
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		slices.SortStableFunc(probs, func(a, b Problem) int {
			switch {
			case a.Line == b.Line:
				return 0
			case a.Line == 0: // problems without a line go last
				return 1
			case b.Line == 0:
				return -1
			}
			return a.Line - b.Line
		})
		return nil, probs, nil
	}
	return c, nil, nil
}

// decodeAll decodes over the defaults, skipping (and reporting) keys it
// cannot take, and fills the derived defaults.
func decodeAll(data []byte, name string) (*Config, Problems, error) {
	c := baseDefaults()
	lines, probs, err := decodeYAML(data, name, &c)
	if err != nil {
		return nil, nil, err
	}
	c.lines = lines
	c.path = name
	c.FillDerived()
	return &c, probs, nil
}

// Line returns the line of the file that set key (e.g. "routes[1].upstream"),
// or of its closest enclosing key that was set; 0 if none was.
func (c *Config) Line(key string) int {
	for key != "" {
		if l, ok := c.lines[key]; ok {
			return l
		}
		key = parentKey(key)
	}
	return 0
}

// parentKey strips the last segment: "a.b[2]" → "a.b", "a.b" → "a".
func parentKey(key string) string {
	if i := strings.LastIndexAny(key, ".["); i >= 0 {
		return key[:i]
	}
	return ""
}

func (c *Config) loadSecrets() error {
	if v := strings.TrimSpace(os.Getenv(EnvSecretKey)); v != "" {
		c.SecretKey = v
	}
	r := &c.Store.Redis
	if r.Password != "" && r.PasswordFile != "" {
		return ErrSecretConflict
	}
	if r.SentinelPassword != "" && r.SentinelPasswordFile != "" {
		return ErrSentinelSecretConflict
	}
	if v := os.Getenv(EnvRedisSentinelPassword); v != "" {
		r.SentinelPassword = v
	} else if r.SentinelPasswordFile != "" {
		pw, err := readSecretFile(r.SentinelPasswordFile)
		if err != nil {
			return fmt.Errorf("config: store.redis.sentinel_password_file: %w", err)
		}
		r.SentinelPassword = pw
	}
	if v := os.Getenv(EnvRedisPassword); v != "" {
		r.Password = v
		return nil
	}
	if r.PasswordFile != "" {
		pw, err := readSecretFile(r.PasswordFile)
		if err != nil {
			return fmt.Errorf("config: store.redis.password_file: %w", err)
		}
		r.Password = pw
	}
	return nil
}

// readSecretFile reads a small regular file and drops its trailing
// newline. It refuses devices and FIFOs so a typo cannot block start-up.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxSecretFileSize {
		return "", fmt.Errorf("%s: larger than %d bytes", path, maxSecretFileSize)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// syntaxError turns the YAML parser's error ("yaml: line 2: found
// unexpected end of stream") into a DecodeError on that line, with a hint
// for the usual cause; other errors are wrapped as they are.
func syntaxError(name string, err error) error {
	msg := err.Error()
	rest, ok := strings.CutPrefix(msg, "yaml: line ")
	if !ok {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	num, what, ok := strings.Cut(rest, ": ")
	line, perr := strconv.Atoi(num)
	if !ok || perr != nil {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	hint := ""
	if strings.Contains(what, "unexpected end of stream") || strings.Contains(what, "did not find expected") {
		hint = " (a quote or bracket opened here and never closed?)"
	}
	return &DecodeError{Name: name, Problems: Problems{{Line: line, Msg: "not valid YAML: " + what + hint}}}
}

// decodeYAML parses data and decodes it over c strictly, returning the
// line of every key it set.
func decodeYAML(data []byte, name string, c *Config) (map[string]int, Problems, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return map[string]int{}, nil, nil // empty file: defaults
		}
		return nil, nil, syntaxError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, syntaxError(name, err)
		}
		return nil, nil, &DecodeError{Name: name, Problems: Problems{{
			Line: extra.Line,
			Msg:  "the file must hold a single YAML document",
		}}}
	}
	d := &decoder{lines: map[string]int{}, budget: maxNodes, merging: map[*yaml.Node]bool{}}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return d.lines, nil, nil
		}
		root = root.Content[0]
	}
	d.decode(root, reflectValue(c), "")
	return d.lines, d.problems, nil
}
