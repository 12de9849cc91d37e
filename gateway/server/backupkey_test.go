package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/server"
)

// TestCheckBackupKey: a restore checks the backup's key check record
// against the configured key, read but never created.
func TestCheckBackupKey(t *testing.T) {
	g := startGateway(t, gwOpts{mode: "on"})
	cfg := *g.cfg
	// The start recorded the check sealed with the configured key.
	check, err := g.srv.Store().GetSetting(context.Background(), "secretbox.check")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{"secretbox.check": check}

	if err := server.CheckBackupKey(&cfg, settings); err != nil {
		t.Fatalf("the key the backup was made with: %v", err)
	}
	if err := server.CheckBackupKey(&cfg, map[string]string{}); err != nil {
		t.Fatalf("a backup without a check record: %v", err)
	}
	other := cfg
	other.SecretKey = strings.Repeat("ab", 32)
	if err := server.CheckBackupKey(&other, settings); !errors.Is(err, server.ErrWrongKey) || !strings.Contains(err.Error(), "another secret key") {
		t.Fatalf("another key: %v", err)
	}
	missing := cfg
	missing.SecretKey = ""
	missing.SecretKeyFile = filepath.Join(t.TempDir(), "nope.key")
	if err := server.CheckBackupKey(&missing, settings); err == nil || !strings.Contains(err.Error(), "does not exist: put the secret key the backup was made with there first") {
		t.Fatalf("no key file: %v", err)
	}
	if _, err := os.Stat(missing.SecretKeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the check created a key file: %v", err)
	}
}
