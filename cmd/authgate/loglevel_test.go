package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
)

// The level of the serve logger changes while it is in use (reload).
func TestReloadableLoggerLevel(t *testing.T) {
	var out bytes.Buffer
	log, levels, err := newReloadableLogger(config.Log{Level: "warn", Format: "json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		set         zerolog.Level
		debug, warn bool // written?
	}{
		{zerolog.WarnLevel, false, true},
		{zerolog.DebugLevel, true, true},
		{zerolog.ErrorLevel, false, false},
	}
	for i, s := range steps {
		levels.SetLevel(s.set)
		out.Reset()
		log.Debug().Int("step", i).Msg("debug line")
		log.Warn().Int("step", i).Msg("warn line")
		if got := strings.Contains(out.String(), "debug line"); got != s.debug {
			t.Errorf("level %v: debug written = %v", s.set, got)
		}
		if got := strings.Contains(out.String(), "warn line"); got != s.warn {
			t.Errorf("level %v: warn written = %v", s.set, got)
		}
	}
}
