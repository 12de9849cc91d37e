package testkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// BurstOptions tune Burst. Zero values take the defaults.
type BurstOptions struct {
	// Settle is how long Burst waits, once every request but its last
	// byte is written, before releasing the last bytes: the server reads
	// the partial requests meanwhile and its connection goroutines park
	// on the missing byte. Default 50ms.
	Settle time.Duration
	// Timeout bounds the whole burst, answers included. Default 2m.
	Timeout time.Duration
	// AtRelease, when set, runs in its own goroutine at the moment the
	// last bytes start to go out: an in-process action (an admin command,
	// a store write) that should race the requests.
	AtRelease func()
}

// BurstResponse is the answer to one request of a burst. Err is set (and
// Status is 0) when the connection gave no complete HTTP answer.
type BurstResponse struct {
	Status int
	Header http.Header
	Body   string
	Err    error
	// Done is when the answer was read completely.
	Done time.Time
}

// BurstResult is what a Burst observed.
type BurstResult struct {
	// Responses are in the order of the requests.
	Responses []BurstResponse
	// Released is when the first last byte was written; no request was
	// complete on the wire before it.
	Released time.Time
	// Spread is how long writing all the last bytes took: every request
	// became complete within it.
	Spread time.Duration
}

// Burst makes requests really arrive at once (a "last-byte barrier"):
// it opens one connection per request to addr, writes each request
// except its last byte, waits until all of them are written (and Settle),
// then writes the last bytes in a tight loop and collects the answers.
//
// Goroutines that each send a whole request rarely overlap on a small
// machine: the first finish before the last start, and a check-then-act
// race stays hidden. A Go server dispatches a request only once its
// headers are complete, and a handler that reads a form blocks until the
// body is complete, so with the barrier every handler proceeds within
// Spread (microseconds to a millisecond for hundreds of requests).
//
// Every request must be a complete HTTP/1.1 request of at least two
// bytes (see RawRequest); use "Connection: close" so the server ends the
// connection after its answer. Burst returns an error only when the
// burst could not be set up (a dial or write failed before the release);
// a failed answer is reported in its BurstResponse.
func Burst(addr string, reqs [][]byte, o BurstOptions) (BurstResult, error) {
	if o.Settle <= 0 {
		o.Settle = 50 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	for i, r := range reqs {
		if len(r) < 2 {
			return BurstResult{}, fmt.Errorf("testkit: burst request %d has %d bytes, want at least 2", i, len(r))
		}
	}
	deadline := time.Now().Add(o.Timeout)
	conns := make([]net.Conn, len(reqs))
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	for i := range reqs {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			closeAll()
			return BurstResult{}, fmt.Errorf("testkit: burst dial %d of %d: %w", i+1, len(reqs), err)
		}
		_ = c.SetDeadline(deadline)
		conns[i] = c
	}
	// Everything but the last byte.
	for i, r := range reqs {
		if _, err := conns[i].Write(r[:len(r)-1]); err != nil {
			closeAll()
			return BurstResult{}, fmt.Errorf("testkit: burst write %d: %w", i, err)
		}
	}
	// The answers are read as they come; a reader blocks until the
	// server answers, which it cannot do before the last byte.
	res := BurstResult{Responses: make([]BurstResponse, len(reqs))}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Responses[i] = readOne(c)
		}()
	}
	time.Sleep(o.Settle)

	// The release: the last bytes in a tight loop.
	if o.AtRelease != nil {
		go o.AtRelease()
	}
	res.Released = time.Now()
	writeErr := make([]error, len(reqs))
	for i, r := range reqs {
		_, writeErr[i] = conns[i].Write(r[len(r)-1:])
	}
	res.Spread = time.Since(res.Released)
	wg.Wait()
	closeAll()
	for i, err := range writeErr {
		// The server may have answered and closed before the last byte
		// (an error page for a bad request): the answer is what counts,
		// but a request without one says why.
		if err != nil && res.Responses[i].Status == 0 {
			res.Responses[i].Err = errors.Join(res.Responses[i].Err, fmt.Errorf("testkit: burst last byte: %w", err))
		}
	}
	return res, nil
}

func readOne(c net.Conn) BurstResponse {
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return BurstResponse{Err: fmt.Errorf("testkit: burst read answer: %w", err), Done: time.Now()}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	out := BurstResponse{Status: res.StatusCode, Header: res.Header, Body: string(body), Done: time.Now()}
	if err != nil {
		out.Err = fmt.Errorf("testkit: burst read body: %w", err)
	}
	return out
}

// RawRequest serialises r as Burst sends it: HTTP/1.1 with Host,
// Content-Length for a body and "Connection: close". It reads r's body.
func RawRequest(r *http.Request) ([]byte, error) {
	r = r.Clone(context.Background())
	r.Close = true
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		return nil, fmt.Errorf("testkit: serialise request: %w", err)
	}
	return b.Bytes(), nil
}
