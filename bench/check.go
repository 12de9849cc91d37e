package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// rawRequest is exactly what wrk sends: request line, Host, the extra
// headers, blank line.
func rawRequest(c *candidate, path string) string {
	req := "GET " + path + " HTTP/1.1\r\nHost: " + c.addr + "\r\n"
	if c.cookie != "" {
		req += "Cookie: " + c.cookie + "\r\n"
	}
	return req + "\r\n"
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// verify sends wrk's request over a fresh connection and checks that the
// answer is the upstream's: status 200 and the exact body (not the
// gateway's login redirect or an error page). It records the size of the
// whole response, which the wrk rounds compare their byte counts with.
func verify(c *candidate, want []byte) error {
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("verify %s: %w", c.name, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, rawRequest(c, "/")); err != nil {
		return fmt.Errorf("verify %s: %w", c.name, err)
	}
	cr := &countingReader{r: conn}
	br := bufio.NewReader(cr)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("verify %s: %w", c.name, err)
	}
	body, err := readAllLimit(res.Body, len(want)+1)
	res.Body.Close()
	if err != nil {
		return fmt.Errorf("verify %s: %w", c.name, err)
	}
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		return fmt.Errorf("verify %s: status %d with %d bytes, want 200 with the upstream's %d-byte body (Location %q)",
			c.name, res.StatusCode, len(body), len(want), res.Header.Get("Location"))
	}
	if res.ContentLength != int64(len(want)) {
		return fmt.Errorf("verify %s: Content-Length %d, want %d (a chunked answer would make the byte check meaningless)", c.name, res.ContentLength, len(want))
	}
	c.expectBytes = cr.n - br.Buffered()
	return nil
}
