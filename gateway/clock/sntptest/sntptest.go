package sntptest

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Behaviour is how the server answers.
type Behaviour struct {
	// Offset is added to the real time in the answer: +7s makes the
	// server's time 7 seconds ahead of this machine's clock, so a client
	// measures an offset of +7s (its clock is 7s behind).
	Offset time.Duration
	// Stratum of the answer (default 2). KissCode sets stratum 0 and the
	// kiss code (e.g. "RATE", "DENY").
	Stratum  uint8
	KissCode string
	// Mode of the answer (default 4, server).
	Mode uint8
	// Leap indicator (3 = unsynchronised).
	Leap uint8
	// Silent drops every request.
	Silent bool
	// WrongOrigin does not echo the request's transmit timestamp.
	WrongOrigin bool
}

// Server is a fake SNTP server.
type Server struct {
	conn    net.PacketConn
	mu      sync.Mutex
	b       Behaviour
	queries atomic.Int64
	done    chan struct{}
}

// Start listens on 127.0.0.1 (a free port) and serves until Close.
func Start(b Behaviour) (*Server, error) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{conn: conn, b: b, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// Addr is the server's "127.0.0.1:port".
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// Queries counts the requests received.
func (s *Server) Queries() int { return int(s.queries.Load()) }

// Set changes the behaviour for the next requests.
func (s *Server) Set(b Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = b
}

// Close stops the server and waits for it.
func (s *Server) Close() error {
	err := s.conn.Close()
	<-s.done
	return err
}

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 1024)
	for {
		n, addr, err := s.conn.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || n < 48 {
			continue
		}
		recv := time.Now()
		s.queries.Add(1)
		s.mu.Lock()
		b := s.b
		s.mu.Unlock()
		if b.Silent {
			continue
		}
		_, _ = s.conn.WriteTo(answer(buf[:n], b, recv), addr)
	}
}

// answer builds the 48-byte reply to req.
func answer(req []byte, b Behaviour, recv time.Time) []byte {
	version := (req[0] >> 3) & 0x7
	mode := b.Mode
	if mode == 0 {
		mode = 4
	}
	stratum := b.Stratum
	if stratum == 0 {
		stratum = 2
	}
	refID := []byte{127, 0, 0, 1}
	if b.KissCode != "" {
		stratum = 0
		refID = []byte((b.KissCode + "    ")[:4])
	}
	rx := recv.Add(b.Offset)
	tx := time.Now().Add(b.Offset)
	out := make([]byte, 48)
	out[0] = b.Leap<<6 | version<<3 | mode
	out[1] = stratum
	out[2] = 6    // poll 64 s
	out[3] = 0xec // precision 2^-20 s
	out[5] = 0x01 // root delay ~ 1/256 s (Q16.16)
	out[9] = 0x01 // root dispersion ~ 1/256 s
	copy(out[12:16], refID)
	binary.BigEndian.PutUint64(out[16:], ntpTime(rx.Add(-time.Minute)))
	origin := req[40:48]
	if b.WrongOrigin {
		origin = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	}
	copy(out[24:32], origin)
	binary.BigEndian.PutUint64(out[32:], ntpTime(rx))
	binary.BigEndian.PutUint64(out[40:], ntpTime(tx))
	return out
}

// ntpEpoch is 1900-01-01 in Unix seconds.
const ntpEpoch = -2208988800

// ntpTime encodes t as a 64-bit NTP timestamp (era 0).
func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix() - ntpEpoch)
	frac := (uint64(t.Nanosecond()) << 32) / uint64(time.Second)
	return secs<<32 | frac
}

// New starts a server for a test and closes it when the test ends.
func New(tb testing.TB, b Behaviour) *Server {
	tb.Helper()
	s, err := Start(b)
	if err != nil {
		tb.Fatalf("sntptest: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
