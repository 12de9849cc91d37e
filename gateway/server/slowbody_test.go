package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/server"
)

// slowPost sends a request's headers (Content-Length: declared), then the
// body parts with pause before each, and waits for the gateway's answer.
// It reports the status (0 if none came), how long after the headers it
// came, and whether the gateway then closed the connection.
func slowPost(t *testing.T, host, path string, declared int, pause time.Duration, parts []string) (status int, took time.Duration, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	head := "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(declared) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	type result struct {
		status int
		took   time.Duration
		closed bool
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			done <- result{took: time.Since(start), closed: true}
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		r := result{status: res.StatusCode, took: time.Since(start)}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		var one [1]byte
		_, err = conn.Read(one[:])
		r.closed = err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
		done <- r
	}()
	for _, p := range parts {
		select {
		case r := <-done:
			return r.status, r.took, r.closed
		case <-time.After(pause):
		}
		if _, err := io.WriteString(conn, p); err != nil {
			break
		}
	}
	r := <-done
	return r.status, r.took, r.closed
}

// Regression: bodies sent to the gateway's own pages had no deadline
// (Serve has no ReadTimeout, so slow uploads to the panel work), so a
// client could send headers, then stall or trickle the body and hold a
// connection and a handler for as long as it liked. Now /.authgate/
// bodies must arrive within the body timeout; proxied bodies still have
// none.
func TestSlowBodiesToGatewayPagesAreCut(t *testing.T) {
	// The panel counts the bytes of what it is sent.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "got %d", n)
	}))
	t.Cleanup(up.Close)
	const timeout = 400 * time.Millisecond
	srv, _, err := faultServer(t, t.TempDir(), up.URL, server.Options{BodyReadTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	g := served(t, &gateway{srv: srv})
	host := hostOf(g)
	const cutBy = timeout + 2*time.Second

	t.Run("stalled after part of the body", func(t *testing.T) {
		// Several at once: each is cut on its own deadline.
		type res struct {
			status int
			took   time.Duration
			closed bool
		}
		results := make(chan res, 8)
		for i := range 8 {
			path := []string{"/.authgate/login", "/.authgate/logout", "/.authgate/verify", "/.authgate/healthz"}[i%4]
			go func() {
				s, d, c := slowPost(t, host, path, 200, 0, []string{"username=alice&password=co"})
				results <- res{s, d, c}
			}()
		}
		for range 8 {
			r := <-results
			if !r.closed || r.took > cutBy {
				t.Errorf("stalled body: status %d after %v, closed %v; want the connection closed within %v", r.status, r.took, r.closed, cutBy)
			}
			if r.status == http.StatusSeeOther {
				t.Errorf("a cut-off form was acted on (303)")
			}
		}
	})
	t.Run("trickled", func(t *testing.T) {
		// 60 bytes, one every 100 ms: 6 s for the whole body.
		parts := strings.Split(strings.Repeat("x", 60), "")
		status, took, closed := slowPost(t, host, "/.authgate/login", 60, 100*time.Millisecond, parts)
		if !closed || took > cutBy {
			t.Errorf("trickled body: status %d after %v, closed %v; want the connection closed within %v", status, took, closed, cutBy)
		}
	})
	t.Run("slow upload to the panel still works", func(t *testing.T) {
		// 20 bytes, one every 100 ms: 2 s, five times the body timeout.
		parts := strings.Split(strings.Repeat("u", 20), "")
		status, took, _ := slowPost(t, host, "/upload", 20, 100*time.Millisecond, parts)
		if status != http.StatusOK || took < 1900*time.Millisecond {
			t.Errorf("slow upload: status %d after %v, want 200 after the whole body (about 2 s)", status, took)
		}
		if r := rawDoBody(t, host, "POST /upload HTTP/1.1\r\nHost: "+host, "0123456789"); r.status != http.StatusOK || r.body != "got 10" {
			t.Errorf("upload: %d %q", r.status, r.body)
		}
	})
	t.Run("a prompt form is served", func(t *testing.T) {
		r := rawDoBody(t, host, "POST /.authgate/login HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: application/x-www-form-urlencoded", "username=alice&password=x")
		// No CSRF cookie: refused as an expired form, not cut.
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "Your form expired") {
			t.Errorf("prompt form: %d %.200q", r.status, r.body)
		}
	})
}
