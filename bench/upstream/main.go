// Command upstream is the benchmark's stand-in for an admin panel: it
// answers every request with the same fixed-size body and counts the TCP
// connections it accepts, so the harness can tell how well each proxy
// reuses its upstream connections.
//
// The counters are served as JSON on a second listener (-stats), so that
// reading them opens no connection on the measured one.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Stats is what GET /stats on the stats listener returns.
type Stats struct {
	// NewConns counts connections accepted on the serving listener.
	NewConns int64 `json:"new_conns"`
	// Requests counts requests answered on the serving listener.
	Requests int64 `json:"requests"`
}

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "address to serve the fixed body on")
	statsAddr := flag.String("stats", "127.0.0.1:0", "address to serve the counters on (GET /stats)")
	size := flag.Int("body", 1024, "body size in bytes")
	flag.Parse()
	if err := run(*addr, *statsAddr, *size); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

// body returns the deterministic body of n bytes the upstream serves.
func body(n int) []byte {
	b := make([]byte, n)
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	if n > 0 {
		b[n-1] = '\n'
	}
	return b
}

func run(addr, statsAddr string, size int) error {
	var newConns, requests atomic.Int64
	payload := body(size)
	length := strconv.Itoa(len(payload))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			requests.Add(1)
			h := w.Header()
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["Content-Length"] = []string{length}
			_, _ = w.Write(payload)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				newConns.Add(1)
			}
		},
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	sln, err := net.Listen("tcp", statsAddr)
	if err != nil {
		return err
	}
	stats := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(Stats{NewConns: newConns.Load(), Requests: requests.Load()})
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = stats.Serve(sln) }()
	// The harness reads the two addresses from this line.
	fmt.Printf("listening %s stats %s\n", ln.Addr(), sln.Addr())
	return srv.Serve(ln)
}
