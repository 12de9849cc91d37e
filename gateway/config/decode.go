package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the work of one decode: aliases and merge keys can make
// a small file expand to a huge tree ("billion laughs").
const maxNodes = 100_000

// maxProblems stops decoding once this many problems were found.
const maxProblems = 50

var durationType = reflect.TypeFor[time.Duration]()

func reflectValue(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

// decoder walks a yaml.Node tree and the Go value side by side, so every
// unknown key and type error can be reported with its full key path.
type decoder struct {
	lines    map[string]int
	problems Problems
	budget   int
	merging  map[*yaml.Node]bool // mappings being merged, to stop cycles
}

func (d *decoder) fail(key string, line int, format string, args ...any) {
	if len(d.problems) >= maxProblems {
		return
	}
	d.problems = append(d.problems, Problem{Key: key, Line: line, Msg: fmt.Sprintf(format, args...)})
	if len(d.problems) == maxProblems {
		d.problems = append(d.problems, Problem{Key: key, Line: line, Msg: "too many problems, stopping"})
		d.budget = 0
	}
}

// spend uses one unit of the budget and reports whether work may go on.
func (d *decoder) spend(key string, line int) bool {
	if d.budget <= 0 {
		return false
	}
	d.budget--
	if d.budget == 0 {
		d.fail(key, line, "the document is too large (too many nodes or aliases)")
		return false
	}
	return true
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isMerge(k *yaml.Node) bool {
	k = resolve(k)
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	if !d.spend(key, n.Line) {
		return
	}
	line := n.Line
	n = resolve(n)
	if n.Kind == yaml.AliasNode {
		d.fail(key, line, "unresolvable alias")
		return
	}
	if isNull(n) {
		// Like yaml: null empties a list and leaves anything else (the
		// default) alone.
		if v.Kind() == reflect.Slice {
			v.SetZero()
		}
		return
	}
	switch {
	case v.Type() == durationType:
		d.scalar(n, line, v, key)
	case v.Kind() == reflect.Struct:
		d.mapping(n, line, v, key)
	case v.Kind() == reflect.Slice:
		d.sequence(n, line, v, key)
	default:
		d.scalar(n, line, v, key)
	}
}

// fieldIndex maps the yaml names of t's fields to their index.
func fieldIndex(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name, ok := yamlName(t.Field(i)); ok {
			m[name] = i
		}
	}
	return m
}

// nearestKey is the known key an unknown one was probably meant to be:
// the same in another letter case, one or two typos away, or one that
// starts with it or that it starts with ("listen_addr" → "listen",
// "secret_key" → "secret_key_file"). "" when none is close.
func nearestKey(unknown string, fields map[string]int) string {
	best, bestDist := "", 3
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names) // the same answer every time
	for _, name := range names {
		if strings.EqualFold(name, unknown) {
			return name
		}
		if d := editDistance(unknown, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return best
	}
	for _, name := range names {
		if len(unknown) >= 4 && len(name) >= 4 && (strings.HasPrefix(name, unknown) || strings.HasPrefix(unknown, name)) {
			return name
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// yamlName returns the key a struct field is read from, or false if the
// field is not read from YAML.
func yamlName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch tag {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return tag, true
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func (d *decoder) mapping(n *yaml.Node, line int, v reflect.Value, key string) {
	if n.Kind != yaml.MappingNode {
		d.fail(key, line, "must be a mapping of keys, got %s", kindName(n))
		return
	}
	fields := fieldIndex(v.Type())
	// Merge keys first (the mapping's own keys win over merged ones).
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMerge(n.Content[i]) {
			d.merge(n.Content[i+1], v, key)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			continue
		}
		rk := resolve(k)
		if rk.Kind != yaml.ScalarNode {
			d.fail(key, k.Line, "keys must be plain names, got %s", kindName(rk))
			continue
		}
		full := joinKey(key, rk.Value)
		if first, dup := seen[rk.Value]; dup {
			d.fail(full, k.Line, "duplicate key (first set on line %d)", first)
			continue
		}
		seen[rk.Value] = k.Line
		idx, ok := fields[rk.Value]
		if !ok {
			if near := nearestKey(rk.Value, fields); near != "" {
				d.fail(full, k.Line, "unknown key; did you mean %q?", joinKey(key, near))
			} else {
				d.fail(full, k.Line, "unknown key")
			}
			continue
		}
		d.lines[full] = k.Line
		d.decode(val, v.Field(idx), full)
	}
}

// merge applies a "<<" value: a mapping or a list of mappings, the
// earlier ones in the list winning.
func (d *decoder) merge(val *yaml.Node, v reflect.Value, key string) {
	r := resolve(val)
	var maps []*yaml.Node
	switch r.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{r}
	case yaml.SequenceNode:
		for i := len(r.Content) - 1; i >= 0; i-- {
			maps = append(maps, resolve(r.Content[i]))
		}
	default:
		d.fail(key, val.Line, "<< must name a mapping or a list of mappings")
		return
	}
	for _, m := range maps {
		if m.Kind != yaml.MappingNode {
			d.fail(key, val.Line, "<< must name a mapping or a list of mappings")
			continue
		}
		if d.merging[m] {
			d.fail(key, val.Line, "<< merges a mapping into itself")
			continue
		}
		if !d.spend(key, m.Line) {
			return
		}
		d.merging[m] = true
		d.mapping(m, m.Line, v, key)
		delete(d.merging, m)
	}
}

func (d *decoder) sequence(n *yaml.Node, line int, v reflect.Value, key string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(key, line, "must be a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, e := range n.Content {
		k := fmt.Sprintf("%s[%d]", key, i)
		d.lines[k] = e.Line
		d.decode(e, s.Index(i), k)
		if d.budget <= 0 {
			return
		}
	}
	v.Set(s)
}

func (d *decoder) scalar(n *yaml.Node, line int, v reflect.Value, key string) {
	want := typeName(v.Type())
	if n.Kind != yaml.ScalarNode {
		d.fail(key, line, "must be %s, got %s", want, kindName(n))
		return
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		// yaml would truncate 6.5 to 6; a number of steps or bytes must be
		// written as a whole number.
		if v.Type() != durationType && n.ShortTag() != "!!int" {
			d.fail(key, line, "must be %s, got %s", want, quoteValue(n.Value))
			return
		}
	}
	p := reflect.New(v.Type())
	if err := n.Decode(p.Interface()); err != nil {
		d.fail(key, line, "must be %s, got %s", want, quoteValue(n.Value))
		return
	}
	v.Set(p.Elem())
}

// typeName says in words what a value of t looks like.
func typeName(t reflect.Type) string {
	if t == durationType {
		return `a duration such as "90s" or "1h"`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		max := uint64(math.MaxUint64) >> (64 - t.Bits())
		return "a whole number from 0 to " + strconv.FormatUint(max, 10)
	case reflect.Struct:
		return "a mapping of keys"
	case reflect.Slice:
		return "a list"
	}
	return t.String()
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return quoteValue(n.Value)
	}
	return "an unsupported node"
}

// quoteValue quotes a scalar for a message, shortened so a long value
// (possibly pasted secret material) does not fill the log.
func quoteValue(s string) string {
	const max = 32
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
