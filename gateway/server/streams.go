package server

import (
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/stream"
)

// startStreams builds the registry of running forwarded requests that the
// gate fills (every reloaded routing shares it) and starts its watcher,
// which ends, within about a second, each one whose session no longer
// passes: on this instance and, through the store's invalidation feed,
// whichever instance ended the session. stopStreams stops the watcher.
func (s *Server) startStreams() {
	var obs stream.Observer
	if s.metrics != nil {
		obs = s.metrics
	}
	s.streams = stream.New(stream.Options{Logger: s.log, Observer: obs})
	s.stopWatch = s.streams.Start(stream.DefaultInterval)
}

// authStreams is the gate's hook (nil before startStreams).
func (s *Server) authStreams() auth.Streams {
	if s.streams == nil {
		return nil
	}
	return s.streams
}

// stopStreams stops the watcher (before the store closes); running
// requests are no longer re-checked. It may be called more than once.
func (s *Server) stopStreams() {
	if s.stopWatch != nil {
		s.stopWatch()
	}
}
