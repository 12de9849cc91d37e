package server_test

// Fault tests of issue 5: the store, the upstreams and the clients fail,
// and the gateway fails closed, stays up and recovers by itself.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/internal/redistest"
	"github.com/authgate/authgate/gateway/internal/testkit"
	"github.com/authgate/authgate/gateway/server"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/store/embedded"
)

// settledGoroutines waits until the goroutine count stops falling and
// returns it.
func settledGoroutines(limit int, within time.Duration) int {
	deadline := time.Now().Add(within)
	n := runtime.NumGoroutine()
	for time.Now().Before(deadline) {
		if n <= limit {
			return n
		}
		time.Sleep(50 * time.Millisecond)
		runtime.GC()
		n = runtime.NumGoroutine()
	}
	return n
}

// TestRedisOutage kills Redis under a signed-in user: protected requests
// get the 503 page and never the upstream, readyz fails while healthz
// stays live, nothing panics or leaks, and after the restart (AOF on)
// service resumes by itself with every user, secret, session and setting.
func TestRedisOutage(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendOnly: true})
	var logs testkit.SyncBuffer
	pub, adm := newRecorder(t), newRecorder(t)
	g := startGatewayWith(t, gwOpts{mode: "required", logw: &logs, routes: []config.Route{
		{Name: "public", PathPrefix: "/public", Upstream: pub.URL, Policy: config.PolicyBypass},
		{Name: "admin", PathPrefix: "/admin", Upstream: adm.URL, Policy: config.PolicyTwoFactor},
	}}, func(c *config.Config) {
		c.Store.Driver = "redis"
		c.Store.Redis.Addrs = []string{rs.Addr()}
	})
	g.addUser(t, "alice", "correct horse", "ops")
	g = served(t, g)
	ctx := context.Background()
	svc := userAdmin(g)
	if err := svc.SetIssuer(ctx, "Outage Panel"); err != nil {
		t.Fatal(err)
	}
	b := g.browser(t)
	login(t, b, "alice", "correct horse")
	secret := secretEnrol(t, g, b)
	cookie := sessionCookie(t, g, b)
	before, err := g.srv.Store().GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	host := hostOf(g)
	get := func(target, extra string) rawResp {
		return rawDo(t, host, "GET "+target+" HTTP/1.1\r\nHost: "+host+extra)
	}
	mustStatus(t, b.get("/admin/x"), http.StatusOK, "before the outage")
	adm.take()
	b.c.CloseIdleConnections()
	baseline := settledGoroutines(0, 2*time.Second)

	rs.Kill()
	// The session cache stops answering from memory as soon as its Redis
	// subscription breaks (a few ms); a request before that is answered
	// as it would have been a moment before the kill.
	noticeBy := time.Now().Add(2 * time.Second)
	for sessionCache(t, g).Serving() {
		if time.Now().After(noticeBy) {
			t.Fatal("the session cache still serves 2s into the outage")
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	var wg sync.WaitGroup
	statuses := make(chan int, 64)
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- get("/admin/x", "\r\nAccept: text/html\r\nCookie: authgate_session="+cookie).status
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusServiceUnavailable {
			t.Errorf("protected request during the outage: %d, want 503", s)
		}
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("24 requests during the outage took %v", d)
	}
	r := get("/admin/x", "\r\nAccept: text/html\r\nCookie: authgate_session="+cookie)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "unavailable") || strings.Contains(r.body, rs.Addr()) {
		t.Errorf("outage page: %d, leaks address %v", r.status, strings.Contains(r.body, rs.Addr()))
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("outage page CSP %q", csp)
	}
	noHits(t, "during the outage", adm)
	if r := get(server.ReadyPath, ""); r.status != http.StatusServiceUnavailable {
		t.Errorf("readyz during the outage: %d", r.status)
	}
	if r := get(server.HealthPath, ""); r.status != http.StatusOK {
		t.Errorf("healthz during the outage: %d (liveness must not depend on the store)", r.status)
	}
	// Sign-in fails closed too, with the generic message.
	lb := g.browser(t)
	page := lb.get("/.authgate/login")
	m := csrfRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("login page during the outage: %d", page.status)
	}
	lr := lb.do("POST", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "csrf_token": {m[1] + m[2]}}, nil)
	if lr.status != http.StatusServiceUnavailable || cookieFrom(lr.header, "authgate_session") != nil {
		t.Errorf("login during the outage: %d, session cookie %v", lr.status, cookieFrom(lr.header, "authgate_session"))
	}
	// Routes that need no store are unaffected.
	if r := get("/public/x", ""); r.status != http.StatusOK {
		t.Errorf("bypass route during the outage: %d", r.status)
	}
	pub.take()

	rs.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := get("/admin/x", "\r\nCookie: authgate_session="+cookie)
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service did not resume after the restart: %d", r.status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := get(server.ReadyPath, ""); r.status != http.StatusOK {
		t.Errorf("readyz after the restart: %d", r.status)
	}
	adm.take()
	// Nothing was lost: user, secret (a code signs in), settings.
	after, err := g.srv.Store().GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if after.PasswordHash != before.PasswordHash || string(after.TOTPSecret) != string(before.TOTPSecret) ||
		strings.Join(after.Groups, ",") != "ops" || len(after.RecoveryCodes) != len(before.RecoveryCodes) {
		t.Errorf("user changed across the restart:\n%+v\n%+v", before, after)
	}
	vals, err := settings.New(g.srv.Store(), settings.Values{}, time.Nanosecond, time.Now).Current(ctx)
	if err != nil || vals.Issuer != "Outage Panel" {
		t.Errorf("issuer setting after the restart: %+v, %v", vals, err)
	}
	signInAgain(t, g, g.browser(t), "alice", "correct horse", secret)

	// No goroutine leak, no panic.
	b.c.CloseIdleConnections()
	lb.c.CloseIdleConnections()
	if n := settledGoroutines(baseline+8, 10*time.Second); n > baseline+8 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before the outage, %d after:\n%s", baseline, n, buf[:runtime.Stack(buf, true)])
	}
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("the log mentions a panic")
	}
}

// faultUpstreams serves the misbehaving upstreams.
type faultUpstreams struct {
	release chan struct{}
	ln      net.Listener
}

func startFaultUpstreams(t *testing.T) *faultUpstreams {
	t.Helper()
	f := &faultUpstreams{release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-f.release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/cut-headers/", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Ty")
		_ = buf.Flush()
		_ = conn.Close()
	})
	mux.HandleFunc("/cut-body/", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: text/plain\r\n\r\nfirst bytes")
		_ = buf.Flush()
		_ = conn.Close()
	})
	mux.HandleFunc("/ok/", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "fine") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		close(f.release)
		_ = srv.Close()
	})
	f.ln = ln
	return f
}

func (f *faultUpstreams) url() string { return "http://" + f.ln.Addr().String() }

// TestUpstreamFaults: a slow upstream gets the 504 page after
// proxy.response_header_timeout, one that hangs up before its headers the
// 502 page, one that hangs up mid-body a cut connection (never a complete
// looking response); other routes keep answering throughout.
func TestUpstreamFaults(t *testing.T) {
	f := startFaultUpstreams(t)
	var routes []config.Route
	for _, n := range []string{"slow", "cut-headers", "cut-body", "ok"} {
		routes = append(routes, config.Route{Name: n, PathPrefix: "/" + n, Upstream: f.url(), Policy: config.PolicyPassword})
	}
	g := startGatewayWith(t, gwOpts{mode: "off", routes: routes}, func(c *config.Config) {
		c.Proxy.ResponseHeaderTimeout = 2 * time.Second
	})
	g.addUser(t, "alice", "correct horse")
	g = served(t, g)
	b := g.browser(t)
	login(t, b, "alice", "correct horse")

	// Slow upstreams hang while the fast route answers.
	var wg sync.WaitGroup
	slow := make(chan resp, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r := b.get("/slow/x")
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("slow upstream answered after %v", d)
			}
			slow <- r
		}()
	}
	time.Sleep(200 * time.Millisecond)
	for range 5 {
		r := b.get("/ok/x")
		if r.status != http.StatusOK || r.body != "fine" {
			t.Errorf("fast route while others hang: %d %q", r.status, r.body)
		}
	}
	if len(slow) != 0 {
		t.Errorf("the fast route was only served after the slow ones gave up")
	}
	wg.Wait()
	close(slow)
	for r := range slow {
		if r.status != http.StatusGatewayTimeout || !strings.Contains(r.body, "took too long") || strings.Contains(r.body, "127.0.0.1") {
			t.Errorf("slow upstream: %d, want the 504 page without internals", r.status)
		}
	}
	r := b.get("/cut-headers/x")
	if r.status != http.StatusBadGateway || strings.Contains(r.body, "127.0.0.1") || strings.Contains(r.body, "EOF") {
		t.Errorf("upstream hanging up before its headers: %d", r.status)
	}
	// Mid-body: the client must see the cut, not a complete response.
	req, _ := http.NewRequest("GET", g.URL+"/cut-body/x", nil)
	res, err := b.c.Do(req)
	if err == nil {
		data, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr == nil {
			t.Errorf("upstream hanging up mid-body: client read %d bytes and no error", len(data))
		}
	}
	mustStatus(t, b.get("/ok/x"), http.StatusOK, "fast route after the faults")
}

// faultServer builds a gateway server from scratch with server options
// (startGatewayWith cannot pass them).
func faultServer(t *testing.T, dir string, upstream string, o server.Options) (*server.Server, config.Config, error) {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.SecretKeyFile = filepath.Join(dir, "secret.key")
	cfg.Store.Path = filepath.Join(dir, "authgate.db")
	cfg.Password.Argon2 = config.Argon2{MemoryKiB: 8192, Iterations: 1, Parallelism: 1}
	cfg.TwoFactor.Mode = "off"
	cfg.TwoFactor.Issuer = "Test Panel"
	cfg.Routes = []config.Route{{Name: "p", PathPrefix: "/", Upstream: upstream, Policy: config.PolicyBypass}}
	cfg.FillDerived()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	o.NoControlSocket = true
	srv, err := server.New(context.Background(), &cfg, zerolog.Nop(), o)
	return srv, cfg, err
}

// TestSlowClientsAndHugeHeaders: clients trickling their headers are cut
// off after the header timeout, oversized headers get 431, and others are
// served meanwhile.
func TestSlowClientsAndHugeHeaders(t *testing.T) {
	up := newRecorder(t)
	srv, _, err := faultServer(t, t.TempDir(), up.URL, server.Options{ReadHeaderTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{srv: srv}
	g = served(t, g)
	host := hostOf(g)

	const slowClients = 40
	closed := make(chan time.Duration, slowClients)
	for range slowClients {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		go func() {
			start := time.Now()
			_, _ = io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: "+host+"\r\n")
			// One header byte every 100 ms, for up to 20 s.
			for range 200 {
				if _, err := io.WriteString(conn, "X"); err != nil {
					break
				}
				_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				var one [1]byte
				if _, err := conn.Read(one[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					break // the server answered or closed
				}
			}
			closed <- time.Since(start)
		}()
	}
	// Meanwhile others are served promptly.
	for range 10 {
		start := time.Now()
		if r := rawDo(t, host, "GET /x HTTP/1.1\r\nHost: "+host); r.status != http.StatusOK {
			t.Fatalf("normal client during the slow ones: %d", r.status)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("normal client took %v (the slow clients' header timeout is 1 s)", d)
		}
	}
	for range slowClients {
		select {
		case d := <-closed:
			if d > 5*time.Second {
				t.Errorf("a slow client was cut only after %v", d)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("slow clients still connected after 15 s")
		}
	}
	// Huge headers: 431, and the gateway answers the next client.
	for _, h := range []string{
		"X-Big: " + strings.Repeat("b", server.MaxHeaderBytes+8192),
		strings.TrimSuffix(strings.Repeat("X-Many: "+strings.Repeat("m", 100)+"\r\n", 1000), "\r\n"),
		"Cookie: " + strings.Repeat("c=1; ", 20000),
	} {
		r := rawDo(t, host, "GET /x HTTP/1.1\r\nHost: "+host+"\r\n"+h)
		if r.status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%.20s…: status %d, want 431", h, r.status)
		}
	}
	up.take()
	if r := rawDo(t, host, "GET /x HTTP/1.1\r\nHost: "+host); r.status != http.StatusOK {
		t.Fatalf("after the huge headers: %d", r.status)
	}
}

// writerEnv names the database the crash helper writes to.
const writerEnv = "AUTHGATE_TEST_CRASH_WRITER_DB"

// TestCrashWriterHelper is not a test: TestEmbeddedStoreSurvivesKill runs
// the test binary with it to create users until killed, printing each
// name once CreateUser has returned (committed).
func TestCrashWriterHelper(t *testing.T) {
	path := os.Getenv(writerEnv)
	if path == "" {
		t.Skip("helper process for TestEmbeddedStoreSurvivesKill")
	}
	st, err := embedded.Open(path, embedded.Options{})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	now := time.Now().UTC()
	for i := 0; ; i++ {
		name := fmt.Sprintf("p%d-user%06d", os.Getpid(), i)
		u := store.User{Name: name, PasswordHash: "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", Role: store.RoleUser,
			Groups: []string{"g"}, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateUser(context.Background(), u); err != nil {
			fmt.Println("create failed:", err)
			os.Exit(4)
		}
		fmt.Println("committed", name)
	}
}

// TestEmbeddedStoreSurvivesKill: kill -9 during writes loses no user
// whose creation had returned.
func TestEmbeddedStoreSurvivesKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authgate.db")
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriterHelper$", "-test.v=false")
		cmd.Env = append(os.Environ(), writerEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var committed []string
		sc := bufio.NewScanner(out)
		target := 50 + 40*round
		for sc.Scan() {
			line := sc.Text()
			if name, ok := strings.CutPrefix(line, "committed "); ok {
				committed = append(committed, name)
				if len(committed) >= target {
					break
				}
			} else if strings.Contains(line, "failed") {
				t.Fatalf("writer: %s", line)
			}
		}
		_ = cmd.Process.Kill() // SIGKILL, mid-write
		go func() { _, _ = io.Copy(io.Discard, out) }()
		_ = cmd.Wait()
		if len(committed) < target {
			t.Fatalf("round %d: writer reported only %d users", round, len(committed))
		}
		st, err := embedded.Open(path, embedded.Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		for _, name := range committed {
			if u, err := st.GetUser(context.Background(), name); err != nil || u.Name != name {
				t.Errorf("round %d: committed user %s lost: %v", round, name, err)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEmbeddedStoreBadFileClearError: a corrupt or locked database file
// stops the start with an error naming the file and the problem.
func TestEmbeddedStoreBadFileClearError(t *testing.T) {
	up := newRecorder(t)
	// A real database to corrupt.
	goodDir := t.TempDir()
	srv, _, err := faultServer(t, goodDir, up.URL, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = srv.Close()
	good, err := os.ReadFile(filepath.Join(goodDir, "authgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data func() []byte
		want string
	}{
		{"garbage", func() []byte { return []byte(strings.Repeat("not a database ", 1000)) }, "invalid"},
		{"truncated", func() []byte { return good[:100] }, ""},
		{"meta pages zeroed", func() []byte {
			d := append([]byte(nil), good...)
			clear(d[:2*4096])
			return d
		}, "invalid"},
		{"meta checksums broken", func() []byte {
			d := append([]byte(nil), good...)
			for _, off := range []int{16 + 48, 4096 + 16 + 48} { // inside each meta page
				d[off] ^= 0xff
			}
			return d
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "authgate.db")
			if err := os.WriteFile(path, tc.data(), 0o600); err != nil {
				t.Fatal(err)
			}
			srv, _, err := faultServer(t, dir, up.URL, server.Options{})
			if err == nil {
				_ = srv.Close()
				t.Fatal("started on a corrupt database file")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, "damaged") || (tc.want != "" && !strings.Contains(msg, tc.want)) {
				t.Errorf("error %q does not name the file and the problem", msg)
			}
		})
	}
	t.Run("locked", func(t *testing.T) {
		dir := t.TempDir()
		first, _, err := faultServer(t, dir, up.URL, server.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		start := time.Now()
		_, _, err = faultServer(t, dir, up.URL, server.Options{})
		if !errors.Is(err, embedded.ErrLocked) || !strings.Contains(err.Error(), "locked by another process") ||
			!strings.Contains(err.Error(), filepath.Join(dir, "authgate.db")) {
			t.Fatalf("second server on a held file: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the locked error took %v", d)
		}
	})
}
