package config

import (
	"errors"
	"testing"
	"time"
)

func TestValidateRegulation(t *testing.T) {
	tests := []validateCase{
		{"defaults", func(*Config) {}, nil},
		{"zero failures", func(c *Config) { c.Regulation.MaxFailures = 0 },
			[]string{"regulation.max_failures: must be between 1 and 1000, got 0"}},
		{"too many failures", func(c *Config) { c.Regulation.MaxFailures = 1001 },
			[]string{"regulation.max_failures: must be between 1 and 1000, got 1001"}},
		{"window too short", func(c *Config) { c.Regulation.Window = 500 * time.Millisecond },
			[]string{"regulation.window: must be between 1s and 24h0m0s, got 500ms"}},
		{"window too long", func(c *Config) {
			c.Regulation.Window, c.Regulation.Ban, c.Regulation.MaxBan = 25*time.Hour, 48*time.Hour, 48*time.Hour
		},
			[]string{"regulation.window: must be between 1s and 24h0m0s, got 25h0m0s"}},
		{"window longer than ban", func(c *Config) { c.Regulation.Window = time.Hour },
			[]string{"regulation.window: must not exceed regulation.ban (15m0s), got 1h0m0s"}},
		{"ban zero", func(c *Config) { c.Regulation.Ban = 0 },
			[]string{"regulation.ban: must be between 1s and 720h0m0s, got 0s"}},
		{"max_ban below ban", func(c *Config) { c.Regulation.Ban, c.Regulation.MaxBan = time.Hour, time.Minute },
			[]string{"regulation.max_ban: must be at least regulation.ban (1h0m0s), got 1m0s"}},
		{"max_ban too long", func(c *Config) { c.Regulation.MaxBan = 1000 * time.Hour },
			[]string{"regulation.max_ban: must be at most 720h0m0s, got 1000h0m0s"}},
		{"max_ban equal to ban", func(c *Config) { c.Regulation.MaxBan = c.Regulation.Ban }, nil},
		{"max_concurrent negative", func(c *Config) { c.Password.MaxConcurrent = -1 },
			[]string{"password.max_concurrent: must be between 0 (one per CPU) and 1024, got -1"}},
		{"max_concurrent huge", func(c *Config) { c.Password.MaxConcurrent = 5000 },
			[]string{"password.max_concurrent: must be between 0 (one per CPU) and 1024, got 5000"}},
		{"max_concurrent set", func(c *Config) { c.Password.MaxConcurrent = 8 }, nil},
		{"cpu_share zero", func(c *Config) { c.Password.CPUShare = 0 },
			[]string{"password.cpu_share: must be between 0.05 and 1, got 0"}},
		{"cpu_share above one", func(c *Config) { c.Password.CPUShare = 1.5 },
			[]string{"password.cpu_share: must be between 0.05 and 1, got 1.5"}},
		{"cpu_share one", func(c *Config) { c.Password.CPUShare = 1 }, nil},
	}
	runValidateCases(t, tests)
}

// The keys load from YAML with their line numbers.
func TestLoadRegulation(t *testing.T) {
	clearEnv(t)
	c, err := LoadBytes([]byte(validYAML+`regulation:
  max_failures: 3
  window: 10m
  ban: 1h
  max_ban: 48h
password:
  max_concurrent: 4
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Regulation{MaxFailures: 3, Window: 10 * time.Minute, Ban: time.Hour, MaxBan: 48 * time.Hour}
	if c.Regulation != want || c.Password.MaxConcurrent != 4 {
		t.Fatalf("regulation = %+v, max_concurrent = %d", c.Regulation, c.Password.MaxConcurrent)
	}
	if c.Line("regulation.window") != 13 {
		t.Errorf("regulation.window line = %d, want 13", c.Line("regulation.window"))
	}
	c.Regulation.MaxBan = time.Minute
	var ps Problems
	if err := c.Validate(); !errors.As(err, &ps) || len(ps) != 1 || ps[0].String() != "regulation.max_ban (line 15): must be at least regulation.ban (1h0m0s), got 1m0s" {
		t.Fatalf("Validate = %v", err)
	}
}
