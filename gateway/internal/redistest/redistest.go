package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

// Options configures a server.
type Options struct {
	// AppendOnly turns on the append-only file with a sync per write, so
	// every acknowledged write survives Kill. (Redis's default, everysec,
	// may postpone the write itself while a sync is still running, and a
	// SIGKILL then loses writes that were already answered.)
	AppendOnly bool
	// Args are extra redis-server arguments.
	Args []string
}

const (
	startAttempts = 5
	readyTimeout  = 10 * time.Second
)

// Server is one redis-server process owned by a test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	opts Options

	mu       sync.Mutex
	port     int
	busPort  int // cluster bus port; 0 unless cluster-enabled
	cmd      *exec.Cmd
	exited   chan struct{}
	out      *syncBuffer
	stopping bool

	// leadArgs come before every other argument: a sentinel's config
	// file and --sentinel (redis-server wants the file first).
	leadArgs []string
}

// Start launches redis-server on a free loopback port with its data in a
// fresh temporary directory. The server is killed at test cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := newServer(t, lookPath(t, "redis-server"), opts, false)
	s.startFresh()
	return s
}

func newServer(t testing.TB, bin string, opts Options, cluster bool) *Server {
	s := &Server{t: t, bin: bin, dir: t.TempDir(), opts: opts}
	if cluster {
		s.busPort = -1 // chosen at start
	}
	t.Cleanup(s.stop)
	return s
}

// lookPath finds a binary or skips (or, in CI, fails) the test.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err == nil {
		return bin
	}
	if os.Getenv("CI") != "" || os.Getenv("AUTHGATE_REQUIRE_REDIS") == "1" {
		t.Fatalf("%s not found on PATH (required because CI or AUTHGATE_REQUIRE_REDIS=1 is set): install redis-server / redis-tools", name)
	}
	t.Skipf("SKIPPING: %s not installed; install it (Debian: apt-get install redis-server) or set AUTHGATE_REQUIRE_REDIS=1 to make this a failure", name)
	return ""
}

// Addr is the server's host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Dir is the server's data directory.
func (s *Server) Dir() string { return s.dir }

// Output returns what the server has printed so far (its log).
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// Client returns a fail-fast client for this server, closed at cleanup.
func (s *Server) Client(t testing.TB) redis.UniversalClient {
	return newClient(t, []string{s.Addr()}, false)
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killLocked()
}

// Restart kills the server if it runs and starts it again on the same
// port with the same data directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	s.killLocked()
	s.mu.Unlock()
	var err error
	for range startAttempts {
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart on %s: %v", s.Addr(), err)
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
	s.killLocked()
}

func (s *Server) killLocked() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// startFresh picks free ports and launches, retrying when another
// process grabbed a port between the pick and the bind.
func (s *Server) startFresh() {
	s.t.Helper()
	var err error
	for range startAttempts {
		s.mu.Lock()
		s.port = freePort(s.t)
		if s.busPort != 0 {
			s.busPort = freePort(s.t)
		}
		s.mu.Unlock()
		if err = s.launch(); err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	s.t.Fatalf("redistest: start redis-server: %v", err)
}

var errAddrInUse = errors.New("address already in use")

func (s *Server) args() []string {
	appendOnly, fsync := "no", "everysec"
	if s.opts.AppendOnly {
		appendOnly, fsync = "yes", "always"
	}
	args := append(slices.Clone(s.leadArgs),
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", appendOnly,
		"--appendfsync", fsync,
		"--daemonize", "no",
		"--logfile", "",
	)
	if s.busPort != 0 {
		args = append(args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(s.busPort),
			"--cluster-node-timeout", "5000",
		)
	}
	return append(args, s.opts.Args...)
}

// launch starts the process and waits until it answers PING.
func (s *Server) launch() error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return errors.New("test is over")
	}
	out := &syncBuffer{}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("exec %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited, s.out = cmd, exited, out
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.mu.Unlock()

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			s.mu.Lock()
			if s.cmd == cmd {
				s.cmd = nil
			}
			s.mu.Unlock()
			log := out.String()
			if strings.Contains(log, "Address already in use") {
				return fmt.Errorf("%s: %w", addr, errAddrInUse)
			}
			return fmt.Errorf("redis-server exited during start-up:\n%s", log)
		default:
		}
		if ping(addr) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s not ready after %v:\n%s", addr, readyTimeout, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping speaks just enough RESP to see a ready server ("-LOADING" while
// it replays its append-only file is not ready; "-NOAUTH" from one that
// requires a password is).
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// A server that requires a password answers NOAUTH: it is up.
	if l := strings.TrimSpace(line); l != "+PONG" && !strings.HasPrefix(l, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", l)
	}
	return nil
}

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		// Redis Cluster's default bus port is port+10000; keep it valid.
		if port <= 55535 {
			return port
		}
	}
}

var silenceOnce sync.Once

// newClient returns a fail-fast client: one dial attempt, no command
// retries, short timeouts, go-redis's own logging off.
func newClient(t testing.TB, addrs []string, cluster bool) redis.UniversalClient {
	silenceOnce.Do(func() { redis.SetLogger(&logging.VoidLogger{}) })
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:           addrs,
		IsClusterMode:   cluster,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     2 * time.Second,
		WriteTimeout:    2 * time.Second,
		DialerRetries:   1,
		MaxRetries:      -1,
		DisableIdentity: true,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// syncBuffer collects the server's output from its copying goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
