package main

import (
	"runtime/debug"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
)

// applyRuntime sets the garbage collector's target and the soft memory
// limit from server.gc_percent and server.memory_limit_mib, unless the
// GOGC or GOMEMLIMIT environment variables (read by the Go runtime
// itself) are set: an operator's explicit environment wins. getenv is
// os.Getenv outside tests.
func applyRuntime(s config.Server, getenv func(string) string, log zerolog.Logger) {
	ev := log.Info()
	if v := getenv("GOGC"); v != "" {
		ev = ev.Str("gogc", v+" (environment)")
	} else {
		debug.SetGCPercent(s.GCPercent)
		ev = ev.Int("gc_percent", s.GCPercent)
	}
	switch v := getenv("GOMEMLIMIT"); {
	case v != "":
		ev = ev.Str("memory_limit", v+" (environment)")
	case s.MemoryLimitMiB > 0:
		debug.SetMemoryLimit(int64(s.MemoryLimitMiB) << 20)
		ev = ev.Int("memory_limit_mib", s.MemoryLimitMiB)
	}
	ev.Msg("go runtime settings")
}
