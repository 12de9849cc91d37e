package config

import (
	"strings"
	"testing"
)

// Regression: a misspelt key used to hide the invalid values until the typo
// was fixed; Check reports both kinds in one run, sorted by line.
func TestCheckReportsDecodeAndValidationProblemsTogether(t *testing.T) {
	data := []byte(`listen: ":8080"
sesion:
  idle_timeout: 1h
two_factor:
  mode: sometimes
  digits: seven
routes:
  - name: panel
    upstream: "ftp://panel"
`)
	cfg, probs, err := CheckBytes(data, "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		t.Fatal("config returned despite problems")
	}
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	want := []string{`sesion (line 2)`, `two_factor.mode (line 5)`, `two_factor.digits (line 6)`, `routes[0].upstream (line 9)`}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestCheckValidFile(t *testing.T) {
	cfg, probs, err := CheckBytes([]byte("routes:\n  - name: p\n    upstream: http://127.0.0.1:9000\n"), "ok.yaml")
	if err != nil || len(probs) > 0 || cfg == nil {
		t.Fatalf("Check = %v, %v, %v", cfg, probs, err)
	}
}

// Regression: a value that failed to parse kept its default, and
// validation then complained about that default too ("idle_timeout must
// not exceed max_lifetime" after "5x" did not parse): one problem per
// mistake.
func TestCheckHasNoFollowOnProblems(t *testing.T) {
	data := []byte(`session:
  idle_timeout: 5x
  max_lifetime: 1m
routes:
  - name: panel
    upstream: "http://127.0.0.1:1"
`)
	_, probs, err := CheckBytes(data, "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 1 || probs[0].Key != "session.idle_timeout" || !strings.Contains(probs[0].Msg, "must be a duration") {
		t.Fatalf("problems = %v, want only the duration that did not parse", probs)
	}
}
