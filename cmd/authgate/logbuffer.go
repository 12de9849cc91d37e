package main

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// logBufferSize is how much a bufferedLog gathers before it writes
// regardless of the interval.
const logBufferSize = 64 << 10

// bufferedLog gathers log lines and writes them in batches: when the
// buffer is full, every interval, at once for warnings and worse (after
// what came before them, so the order is kept), and on Close. Without it
// a busy gateway makes a write system call per access-log line.
type bufferedLog struct {
	mu   sync.Mutex
	w    io.Writer
	buf  []byte
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// newBufferedLog starts the flusher; call Close to stop it and write out
// what is left.
func newBufferedLog(w io.Writer, interval time.Duration) *bufferedLog {
	b := &bufferedLog{w: w, buf: make([]byte, 0, logBufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-t.C:
				_ = b.Flush()
			}
		}
	}()
	return b
}

// Write gathers p (a whole log line, as zerolog writes them).
func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(b.buf) {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// WriteLevel gathers p and writes everything at once for warnings and
// worse.
func (b *bufferedLog) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	n, err := b.Write(p)
	if err == nil && l >= zerolog.WarnLevel && l != zerolog.NoLevel {
		err = b.Flush()
	}
	return n, err
}

// Flush writes what was gathered.
func (b *bufferedLog) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *bufferedLog) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// Close stops the flusher and writes what is left. Later writes still
// work, unbuffered in effect only at the next Close (none come after
// shutdown).
func (b *bufferedLog) Close() error {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
	})
	return b.Flush()
}
