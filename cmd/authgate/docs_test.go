package main

import (
	"os"
	"os/exec"
	"path/filepath"
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

// The shipped unit, alone and with the low-ports drop-in, passes
// `systemd-analyze verify` without a single complaint. (The binary path is
// pointed at one that exists here; everything else is the file as
// shipped.)
func TestSystemdUnitVerifies(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is missing (CI installs systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile("../../configs/authgate.service")
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := os.ReadFile("../../configs/authgate-low-ports.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dropIn), "AmbientCapabilities=CAP_NET_BIND_SERVICE") {
		t.Fatal("the low-ports drop-in does not grant CAP_NET_BIND_SERVICE")
	}
	for _, withDropIn := range []bool{false, true} {
		dir := t.TempDir()
		text := strings.ReplaceAll(string(unit), "/usr/local/bin/authgate", "/bin/true")
		if err := os.WriteFile(filepath.Join(dir, "authgate.service"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if withDropIn {
			if err := os.Mkdir(filepath.Join(dir, "authgate.service.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "authgate.service.d", "low-ports.conf"), dropIn, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(bin, "verify", "--man=no", "authgate.service")
		cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Fatalf("systemd-analyze verify (drop-in %v): %v\n%s", withDropIn, err, out)
		}
	}
}
