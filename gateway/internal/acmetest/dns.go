package acmetest

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// DNS is a tiny authoritative DNS server for tests: every name has the
// A record 127.0.0.1 and no AAAA record. It answers over TCP (what
// Pebble's validation authority uses) and UDP on one loopback port.
type DNS struct {
	addr string

	mu      sync.Mutex
	lookups map[string]int
}

// StartDNS starts the server; it stops at test cleanup.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	d := &DNS{lookups: map[string]int{}}
	handler := dns.HandlerFunc(d.answer)
	var tcp net.Listener
	var udp net.PacketConn
	for attempt := 0; ; attempt++ {
		var err error
		if tcp, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatalf("acmetest: dns listen: %v", err)
		}
		// The same port for UDP; another process may hold it, then retry.
		if udp, err = net.ListenPacket("udp", tcp.Addr().String()); err == nil {
			break
		}
		_ = tcp.Close()
		if attempt == 20 {
			t.Fatalf("acmetest: dns listen udp: %v", err)
		}
	}
	d.addr = tcp.Addr().String()
	servers := []*dns.Server{
		{Listener: tcp, Handler: handler, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
		{PacketConn: udp, Handler: handler},
	}
	for _, s := range servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return d
}

// Addr is the server's host:port (TCP and UDP).
func (d *DNS) Addr() string { return d.addr }

// Lookups counts the A and AAAA questions asked for name (any case, with
// or without the final dot).
func (d *DNS) Lookups(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups[dns.Fqdn(strings.ToLower(name))]
}

func (d *DNS) answer(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
				A:   net.IPv4(127, 0, 0, 1),
			})
			d.count(name)
		case dns.TypeAAAA:
			d.count(name) // exists, but has no IPv6 address
		}
	}
	_ = w.WriteMsg(m)
}

func (d *DNS) count(name string) {
	d.mu.Lock()
	d.lookups[name]++
	d.mu.Unlock()
}
