package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchConfig reloads the config file at path when its content changes,
// until ctx ends; done is closed when the watcher has stopped. It watches
// the file's directory, not the file: editors save by writing a new file
// and renaming it over the old one, and Kubernetes swaps a symlink, both
// of which a watch on the file itself would lose. When path is a symlink
// the directory of its target is watched too. Events are debounced by
// watchDebounce and a reload happens only when the content differs from
// the last one tried.
func (s *Server) watchConfig(ctx context.Context, path string, done chan<- struct{}) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("config watcher: %w", err)
	}
	dirs := []string{filepath.Dir(path)}
	if target, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(target) != dirs[0] {
		dirs = append(dirs, filepath.Dir(target))
	}
	for _, d := range dirs {
		if err := w.Add(d); err != nil {
			_ = w.Close()
			return fmt.Errorf("config watcher: %s: %w", d, err)
		}
	}
	if data, err := os.ReadFile(path); err == nil {
		s.reload.mu.Lock()
		s.reload.lastSum = sha256.Sum256(data)
		s.reload.mu.Unlock()
	}
	s.log.Info().Str("path", path).Msg("watching the config file: changes to routes reload without a restart")
	go func() {
		defer close(done)
		defer w.Close()
		debounce := time.NewTimer(time.Hour)
		debounce.Stop()
		defer debounce.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod {
					continue
				}
				debounce.Reset(watchDebounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn().Err(err).Str("path", path).Msg("config watcher error")
			case <-debounce.C:
				s.reloadIfChanged(path)
			}
		}
	}()
	return nil
}

// reloadIfChanged reloads path when its content differs from the last
// content tried. A missing file (mid-rename, or removed) is only logged:
// its next appearance is another event.
func (s *Server) reloadIfChanged(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		s.log.Warn().Err(err).Str("path", path).Msg("config file changed but cannot be read; the running config is kept")
		return
	}
	s.reload.mu.Lock()
	same := s.reload.lastSum == sha256.Sum256(data)
	s.reload.mu.Unlock()
	if same {
		return
	}
	s.log.Info().Str("path", path).Msg("config file changed: reloading")
	_ = s.reloadBytes(data, path) // reloadBytes logs the outcome
}
