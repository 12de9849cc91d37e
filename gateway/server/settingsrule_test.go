package server_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
)

// Regression: once the mode was set on the Settings page (or with
// `authgate 2fa mode`), two_factor.mode in the file was silently ignored,
// also after a restart, while the docs said the file applied. The stored
// value wins, and a gateway starting with a file that says otherwise says
// so.
func TestStoredModeWinsAndStartSaysSo(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	key := hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	shared := func(c *config.Config) {
		c.Store.Driver = "redis"
		c.Store.Redis.Addrs = []string{rs.Addr()}
		c.SecretKey = key
	}
	first := startGatewayWith(t, gwOpts{mode: "on"}, shared)
	if err := userAdmin(first).SetMode(context.Background(), "required"); err != nil {
		t.Fatal(err)
	}
	var log testkit.SyncBuffer
	second := startGatewayWith(t, gwOpts{mode: "on", logw: &log}, shared)
	if !strings.Contains(log.String(), "two_factor.mode in the config file is overridden") ||
		!strings.Contains(log.String(), `"file":"on","effective":"required"`) {
		t.Fatalf("no warning that the stored mode overrides the file's:\n%s", log.String())
	}
	// And the stored mode is what applies.
	second.addUser(t, "alice", "correct horse")
	if r := loginAs(second.browser(t), "alice", "correct horse"); location(r) != "/.authgate/enroll" {
		t.Fatalf("mode on the second gateway is not the stored required: %s", describe(r))
	}
	// A file that agrees with the store: no warning.
	var quiet testkit.SyncBuffer
	startGatewayWith(t, gwOpts{mode: "required", logw: &quiet}, shared)
	if strings.Contains(quiet.String(), "overridden") {
		t.Fatalf("warning although file and store agree:\n%s", quiet.String())
	}
}
