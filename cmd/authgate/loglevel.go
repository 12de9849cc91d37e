package main

import (
	"io"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// levelWriter passes on log events at or above a level that a config
// reload can change; the root logger itself logs every level into it.
type levelWriter struct {
	w     io.Writer
	level atomic.Int32
}

func newLevelWriter(w io.Writer, l zerolog.Level) *levelWriter {
	lw := &levelWriter{w: w}
	lw.SetLevel(l)
	return lw
}

// SetLevel changes the lowest level written.
func (lw *levelWriter) SetLevel(l zerolog.Level) { lw.level.Store(int32(l)) }

// Write writes events without a level (zerolog's Log()).
func (lw *levelWriter) Write(p []byte) (int, error) { return lw.w.Write(p) }

// WriteLevel drops events below the current level.
func (lw *levelWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l < zerolog.Level(lw.level.Load()) && l != zerolog.NoLevel {
		return len(p), nil
	}
	if w, ok := lw.w.(zerolog.LevelWriter); ok {
		return w.WriteLevel(l, p)
	}
	return lw.w.Write(p)
}
