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
