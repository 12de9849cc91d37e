package main

import (
	"os"
	"strings"
	"testing"
)

// The systemd unit shipped in configs/ is the one the README shows.
func TestSystemdUnitMatchesREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("../../configs/authgate.service")
	if err != nil {
		t.Fatal(err)
	}
	const start = "```ini\n# /etc/systemd/system/authgate.service\n"
	i := strings.Index(string(readme), start)
	if i < 0 {
		t.Fatal("README has no systemd unit block")
	}
	block := string(readme)[i+len("```ini\n"):]
	block = block[:strings.Index(block, "```")]
	if block != string(unit) {
		t.Fatalf("configs/authgate.service differs from the README's unit:\n%s\n---\n%s", unit, block)
	}
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ExecReload=/bin/kill -HUP $MAINPID", "User=authgate"} {
		if !strings.Contains(block, want) {
			t.Errorf("unit lacks %s", want)
		}
	}
}
