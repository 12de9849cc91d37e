package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
)

func TestApplyRuntime(t *testing.T) {
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(prevGC); debug.SetMemoryLimit(prevLimit) })
	s := config.Server{GCPercent: 400, MemoryLimitMiB: 192}

	applyRuntime(s, func(string) string { return "" }, zerolog.Nop())
	if got := debug.SetGCPercent(-1); got != 400 {
		t.Errorf("gc percent %d, want 400 from the config", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 192<<20 {
		t.Errorf("memory limit %d, want 192 MiB from the config", got)
	}

	// The environment wins: the runtime already applied it at start.
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(64 << 20)
	env := map[string]string{"GOGC": "150", "GOMEMLIMIT": "64MiB"}
	applyRuntime(s, func(k string) string { return env[k] }, zerolog.Nop())
	if got := debug.SetGCPercent(-1); got != 150 {
		t.Errorf("gc percent %d, want GOGC's 150 kept", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("memory limit %d, want GOMEMLIMIT's 64 MiB kept", got)
	}

	// memory_limit_mib 0 leaves the limit alone.
	debug.SetMemoryLimit(math.MaxInt64)
	applyRuntime(config.Server{GCPercent: 100}, func(string) string { return "" }, zerolog.Nop())
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit %d, want none with memory_limit_mib 0", got)
	}
}
