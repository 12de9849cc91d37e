package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// lockedBuffer records every Write call.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) snapshot() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestBufferedLogBatchesInfoAndFlushesWarnings(t *testing.T) {
	var out lockedBuffer
	bl := newBufferedLog(&out, time.Hour) // only size, warnings and Close flush here
	log := zerolog.New(newLevelWriter(bl, zerolog.InfoLevel))
	for i := range 100 {
		log.Info().Int("n", i).Msg("request")
	}
	if s, w := out.snapshot(); s != "" || w != 0 {
		t.Fatalf("info lines written before any flush: %d writes", w)
	}
	log.Warn().Msg("trouble")
	s, w := out.snapshot()
	if w != 1 {
		t.Fatalf("a warning made %d writes, want 1 (everything gathered, in one)", w)
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) != 101 || !strings.Contains(lines[0], `"n":0`) || !strings.Contains(lines[100], "trouble") {
		t.Fatalf("order lost: %d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
	log.Debug().Msg("below the level")
	log.Info().Msg("last")
	if err := bl.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = out.snapshot()
	if !strings.HasSuffix(strings.TrimSpace(s), `"message":"last"}`) || strings.Contains(s, "below the level") {
		t.Fatalf("Close did not write the rest, or a filtered line got through: %q", s[len(s)-200:])
	}
}

func TestBufferedLogFlushesOnInterval(t *testing.T) {
	var out lockedBuffer
	bl := newBufferedLog(&out, 10*time.Millisecond)
	defer bl.Close()
	log := zerolog.New(bl)
	log.Info().Msg("soon")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s, _ := out.snapshot(); strings.Contains(s, "soon") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("an info line was not written within 5s with a 10ms interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBufferedLogFullBufferAndHugeLine(t *testing.T) {
	var out lockedBuffer
	bl := newBufferedLog(&out, time.Hour)
	line := []byte(strings.Repeat("a", 1000) + "\n")
	for range logBufferSize/len(line) + 1 {
		if _, err := bl.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if _, w := out.snapshot(); w != 1 {
		t.Fatalf("a full buffer made %d writes, want 1", w)
	}
	huge := []byte(strings.Repeat("b", 2*logBufferSize) + "\n")
	if _, err := bl.Write(huge); err != nil {
		t.Fatal(err)
	}
	if err := bl.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ := out.snapshot()
	if want := (logBufferSize/len(line)+1)*len(line) + len(huge); len(s) != want || !strings.HasSuffix(s, string(huge)) {
		t.Fatalf("wrote %d bytes, want %d with the huge line last", len(s), want)
	}
}
