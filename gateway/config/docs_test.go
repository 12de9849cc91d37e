package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const (
	// configDocPath is the configuration reference.
	configDocPath = "../../docs/configuration.md"
	// keyTableHeader starts every table of keys in it.
	keyTableHeader = "| key | default | meaning |"
)

// documentedKeys returns the keys of the key tables in doc, in order:
// the first cell of each row, one backquoted key ("| `session.domain` |").
// Rows whose first cell is anything else are reported as bad.
func documentedKeys(doc string) (keys, bad []string) {
	inTable := false
	for line := range strings.SplitSeq(doc, "\n") {
		switch {
		case line == keyTableHeader:
			inTable = true
		case !inTable:
		case !strings.HasPrefix(line, "|"):
			inTable = false
		case strings.HasPrefix(line, "|---"):
		default:
			cell, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
			cell = strings.TrimSpace(cell)
			key := strings.TrimSuffix(strings.TrimPrefix(cell, "`"), "`")
			if len(cell) < 3 || !strings.HasPrefix(cell, "`") || !strings.HasSuffix(cell, "`") || strings.ContainsAny(key, "` ,") {
				bad = append(bad, line)
				continue
			}
			keys = append(keys, key)
		}
	}
	return keys, bad
}

// settableKeys lists the keys a user writes values for: every yaml key of
// Config except the sections (a struct such as store or routes[].allow,
// whose keys are listed instead). A list of structs (routes) is itself a
// key.
func settableKeys() []string {
	all := yamlKeys(reflect.TypeFor[Config](), "")
	var out []string
	for _, k := range all {
		section := slices.ContainsFunc(all, func(o string) bool { return strings.HasPrefix(o, k+".") })
		if !section {
			out = append(out, k)
		}
	}
	return out
}

// docs/configuration.md documents every key of the config structs exactly
// once, in a key table, and documents no key that does not exist.
// Regression: two_factor.drift_scan and the time.* keys were missing from
// the README's reference while the example set them.
func TestConfigurationDocListsEveryKey(t *testing.T) {
	b, err := os.ReadFile(configDocPath)
	if err != nil {
		t.Fatal(err)
	}
	got, bad := documentedKeys(string(b))
	for _, line := range bad {
		t.Errorf("%s: a key table row must start with one key in backquotes: %q", configDocPath, line)
	}
	want := settableKeys()
	if len(want) < 80 {
		t.Fatalf("only %d keys found in Config; walker broken?", len(want))
	}
	count := map[string]int{}
	for _, k := range got {
		count[k]++
	}
	for _, k := range want {
		switch count[k] {
		case 1:
		case 0:
			t.Errorf("%s does not document %s (add a row \"| `%s` | default | meaning |\" to its section's table)", configDocPath, k, k)
		default:
			t.Errorf("%s documents %s %d times, want once", configDocPath, k, count[k])
		}
	}
	for k := range count {
		if !slices.Contains(want, k) {
			t.Errorf("%s documents %s, which is no key of Config", configDocPath, k)
		}
	}
}

func TestDocumentedKeys(t *testing.T) {
	doc := "intro | `x` |\n\n" + keyTableHeader + "\n|---|---|---|\n| `a.b` | 1 | m |\n| `c`, `d` | 2 | m |\n| `routes[].e` | 3 | `f` |\n\n| `g` | not a key table |\n"
	keys, bad := documentedKeys(doc)
	if !slices.Equal(keys, []string{"a.b", "routes[].e"}) {
		t.Errorf("keys = %q", keys)
	}
	if len(bad) != 1 || !strings.HasPrefix(bad[0], "| `c`, `d`") {
		t.Errorf("bad = %q", bad)
	}
}
