package middleware

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// answer is what rawPost saw: the status (0 if none came), how long after
// the headers it came, and whether the server kept the connection open.
type answer struct {
	status int
	took   time.Duration
	open   bool
}

// rawPost writes a POST with Content-Length: declared, then the body
// parts with pause before each, and reads until the server answers.
func rawPost(t *testing.T, addr string, declared int, pause time.Duration, parts ...string) answer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	head := "POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
		strconv.Itoa(declared) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	answered := make(chan answer, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- answer{took: time.Since(start)}
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		a := answer{status: res.StatusCode, took: time.Since(start)}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		var one [1]byte
		_, err = conn.Read(one[:])
		a.open = err == nil || errors.Is(err, os.ErrDeadlineExceeded)
		answered <- a
	}()
	for _, p := range parts {
		select {
		case a := <-answered:
			return a
		case <-time.After(pause):
		}
		_, _ = io.WriteString(conn, p)
	}
	return <-answered
}

func TestBodyDeadline(t *testing.T) {
	const deadline = 300 * time.Millisecond
	base, logs := newTestLogger()
	h := Logger(base)(BodyDeadline(deadline)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		// Work longer than the deadline after the body is in: the
		// deadline is lifted, so neither the connection nor the
		// context is lost.
		select {
		case <-time.After(2 * deadline):
		case <-r.Context().Done():
			http.Error(w, "context canceled", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok "+r.PostForm.Get("a"))
	})))
	srv := httptest.NewServer(h)
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	t.Run("stalled mid-body is cut off", func(t *testing.T) {
		a := rawPost(t, addr, 100, 0, "a=1&b=")
		if a.status != http.StatusBadRequest || a.open {
			t.Errorf("%+v, want 400 and the connection closed", a)
		}
		if a.took < deadline-50*time.Millisecond || a.took > deadline+2*time.Second {
			t.Errorf("cut after %v, want about %v", a.took, deadline)
		}
	})
	t.Run("trickled body is cut off", func(t *testing.T) {
		parts := strings.Split(strings.Repeat("x", 40), "")
		a := rawPost(t, addr, 40, 50*time.Millisecond, parts...)
		if a.status != http.StatusBadRequest || a.open {
			t.Errorf("%+v, want 400 and the connection closed", a)
		}
		if a.took > deadline+2*time.Second {
			t.Errorf("cut after %v, want about %v", a.took, deadline)
		}
	})
	t.Run("prompt body, slow handler", func(t *testing.T) {
		res, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader("a=hello"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "ok hello" {
			t.Errorf("%d %q", res.StatusCode, b)
		}
	})
	t.Run("body within the deadline, in parts", func(t *testing.T) {
		if a := rawPost(t, addr, 7, 50*time.Millisecond, "a=he", "llo"); a.status != http.StatusOK || !a.open {
			t.Errorf("%+v, want 200 on a connection kept open", a)
		}
	})
	if !strings.Contains(logs.String(), `"result":"body_timeout"`) || !strings.Contains(logs.String(), "request body not received in time") {
		t.Errorf("log lacks the body timeout: %s", logs.String())
	}
}

// Without a body, or with d <= 0, nothing changes; a writer without a
// connection (a recorder) is served as is.
func TestBodyDeadlineLeavesOthersAlone(t *testing.T) {
	called := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called++
		_, _ = io.ReadAll(r.Body)
	})
	for _, h := range []http.Handler{BodyDeadline(0)(next), BodyDeadline(time.Second)(next)} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader("a=1")))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	if called != 4 {
		t.Fatalf("handler called %d times, want 4", called)
	}
}
