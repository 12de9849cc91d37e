package middleware

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
)

var testTrusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("192.168.1.1/32"),
	netip.MustParsePrefix("fd00::/8"),
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestResolveClient(t *testing.T) {
	tests := []struct {
		name   string
		remote string
		host   string
		tls    bool
		header map[string][]string
		want   Client
	}{
		{
			name:   "untrusted peer, headers ignored",
			remote: "203.0.113.7:4000", host: "Gate.Example",
			header: map[string][]string{
				"X-Forwarded-For":   {"1.1.1.1"},
				"X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host":  {"evil.example"},
			},
			want: Client{IP: netip.MustParseAddr("203.0.113.7"), Peer: netip.MustParseAddr("203.0.113.7"), Scheme: "http", Host: "gate.example"},
		},
		{
			name:   "untrusted peer, garbage headers ignored too",
			remote: "203.0.113.7:4000", host: "gate.example",
			header: map[string][]string{"X-Forwarded-For": {"garbage"}, "X-Forwarded-Proto": {"gopher"}, "X-Forwarded-Host": {"a b"}},
			want:   Client{IP: netip.MustParseAddr("203.0.113.7"), Peer: netip.MustParseAddr("203.0.113.7"), Scheme: "http", Host: "gate.example"},
		},
		{
			name:   "untrusted peer over TLS, default port dropped",
			remote: "203.0.113.7:4000", host: "gate.example:443", tls: true,
			want: Client{IP: netip.MustParseAddr("203.0.113.7"), Peer: netip.MustParseAddr("203.0.113.7"), Scheme: "https", Host: "gate.example"},
		},
		{
			name:   "non-default port kept",
			remote: "203.0.113.7:4000", host: "gate.example:8443", tls: true,
			want: Client{IP: netip.MustParseAddr("203.0.113.7"), Peer: netip.MustParseAddr("203.0.113.7"), Scheme: "https", Host: "gate.example:8443"},
		},
		{
			name:   "empty Host (HTTP/1.0) stays empty",
			remote: "203.0.113.7:4000", host: "",
			want: Client{IP: netip.MustParseAddr("203.0.113.7"), Peer: netip.MustParseAddr("203.0.113.7"), Scheme: "http"},
		},
		{
			name:   "IPv4-mapped peer is unmapped and trusted",
			remote: "[::ffff:10.0.0.2]:4000", host: "gate.example",
			header: map[string][]string{"X-Forwarded-For": {"198.51.100.1"}},
			want: Client{IP: netip.MustParseAddr("198.51.100.1"), Peer: netip.MustParseAddr("10.0.0.2"), ViaTrustedProxy: true,
				ForwardedFor: addrs("198.51.100.1"), Scheme: "http", Host: "gate.example"},
		},
		{
			name:   "trusted proxy, no forwarded headers",
			remote: "10.0.0.2:4000", host: "gate.example",
			want: Client{IP: netip.MustParseAddr("10.0.0.2"), Peer: netip.MustParseAddr("10.0.0.2"), ViaTrustedProxy: true, Scheme: "http", Host: "gate.example"},
		},
		{
			name:   "right-most untrusted wins over spoofed left entries",
			remote: "10.0.0.2:4000", host: "internal:8080",
			header: map[string][]string{
				"X-Forwarded-For":   {"6.6.6.6, 198.51.100.1, 10.0.0.9"},
				"X-Forwarded-Proto": {"https"},
				"X-Forwarded-Host":  {"Gate.Example:443"},
			},
			want: Client{IP: netip.MustParseAddr("198.51.100.1"), Peer: netip.MustParseAddr("10.0.0.2"), ViaTrustedProxy: true,
				ForwardedFor: addrs("6.6.6.6", "198.51.100.1", "10.0.0.9"), Scheme: "https", Host: "gate.example"},
		},
		{
			name:   "several header instances form one chain",
			remote: "192.168.1.1:4000", host: "gate.example",
			header: map[string][]string{"X-Forwarded-For": {"6.6.6.6", "2001:db8::5,\t10.1.1.1", "fd00::1"}},
			want: Client{IP: netip.MustParseAddr("2001:db8::5"), Peer: netip.MustParseAddr("192.168.1.1"), ViaTrustedProxy: true,
				ForwardedFor: addrs("6.6.6.6", "2001:db8::5", "10.1.1.1", "fd00::1"), Scheme: "http", Host: "gate.example"},
		},
		{
			name:   "all hops trusted: left-most",
			remote: "10.0.0.2:4000", host: "gate.example",
			header: map[string][]string{"X-Forwarded-For": {"10.9.9.9, 10.8.8.8"}},
			want: Client{IP: netip.MustParseAddr("10.9.9.9"), Peer: netip.MustParseAddr("10.0.0.2"), ViaTrustedProxy: true,
				ForwardedFor: addrs("10.9.9.9", "10.8.8.8"), Scheme: "http", Host: "gate.example"},
		},
		{
			name:   "trusted proxy says http over a TLS hop",
			remote: "10.0.0.2:4000", host: "gate.example", tls: true,
			header: map[string][]string{"X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"[2001:DB8::1]:80"}},
			want: Client{IP: netip.MustParseAddr("10.0.0.2"), Peer: netip.MustParseAddr("10.0.0.2"), ViaTrustedProxy: true,
				Scheme: "http", Host: "[2001:db8::1]"},
		},
		{
			name:   "IPv6 peer in trusted prefix, IPv4 host with port",
			remote: "[fd00::7]:4000", host: "192.0.2.10:8080",
			header: map[string][]string{"X-Forwarded-For": {"::ffff:198.51.100.2"}},
			want: Client{IP: netip.MustParseAddr("198.51.100.2"), Peer: netip.MustParseAddr("fd00::7"), ViaTrustedProxy: true,
				ForwardedFor: addrs("198.51.100.2"), Scheme: "http", Host: "192.0.2.10:8080"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr, req.Host = tt.remote, tt.host
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			for k, vs := range tt.header {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			got, err := ResolveClient(req, testTrusted)
			if err != nil {
				t.Fatalf("ResolveClient: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// readPayloads reads a testdata payload list (see the files' headers).
func readPayloads(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case line == "<empty>":
			line = ""
		case line == "<long>":
			line = strings.TrimSuffix(strings.Repeat("198.51.100.1,", MaxForwardedFor+1), ",")
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no payloads in %s", name)
	}
	return out
}

// TestRealClientFailsClosed feeds spoofed/garbage forwarded headers from a
// trusted proxy: every one must be a 400 that never reaches the handler.
func TestRealClientFailsClosed(t *testing.T) {
	type attack struct {
		name    string
		remote  string
		host    string
		header  map[string][]string
		wantErr error
	}
	var attacks []attack
	for _, p := range readPayloads(t, "bad_forwarded_for.txt") {
		attacks = append(attacks, attack{"XFF " + p, "10.0.0.2:1", "gate.example",
			map[string][]string{"X-Forwarded-For": {p}}, ErrInvalidForwardedFor})
		// A bad element anywhere in any instance poisons the whole chain.
		attacks = append(attacks, attack{"XFF second instance " + p, "10.0.0.2:1", "gate.example",
			map[string][]string{"X-Forwarded-For": {"198.51.100.1", p}}, ErrInvalidForwardedFor})
	}
	for _, p := range readPayloads(t, "bad_forwarded_host.txt") {
		attacks = append(attacks, attack{"XFH " + p, "10.0.0.2:1", "gate.example",
			map[string][]string{"X-Forwarded-Host": {p}}, ErrInvalidForwardedHost})
	}
	for _, p := range readPayloads(t, "bad_forwarded_proto.txt") {
		attacks = append(attacks, attack{"XFP " + p, "10.0.0.2:1", "gate.example",
			map[string][]string{"X-Forwarded-Proto": {p}}, ErrInvalidForwardedProto})
	}
	attacks = append(attacks,
		attack{"two XFP instances", "10.0.0.2:1", "gate.example",
			map[string][]string{"X-Forwarded-Proto": {"https", "https"}}, ErrInvalidForwardedProto},
		attack{"two XFH instances", "10.0.0.2:1", "gate.example",
			map[string][]string{"X-Forwarded-Host": {"a.example", "a.example"}}, ErrInvalidForwardedHost},
		attack{"unparsable RemoteAddr", "not-an-addr", "gate.example", nil, ErrInvalidRemoteAddr},
		attack{"RemoteAddr without port", "10.0.0.2", "gate.example", nil, ErrInvalidRemoteAddr},
		attack{"unix socket RemoteAddr", "@", "gate.example", nil, ErrInvalidRemoteAddr},
		attack{"bad Host from untrusted peer", "203.0.113.1:1", "evil.example/x", nil, ErrInvalidHost},
		attack{"bad Host from trusted peer without XFH", "10.0.0.2:1", "a b", nil, ErrInvalidHost},
	)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr, req.Host = a.remote, a.host
			for k, vs := range a.header {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			if _, err := ResolveClient(req, testTrusted); !errors.Is(err, a.wantErr) {
				t.Errorf("ResolveClient err = %v, want %v", err, a.wantErr)
			}
			reached := false
			h := RealClient(testTrusted)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusBadRequest || reached {
				t.Errorf("status %d, handler reached %v; want 400 and not reached", rec.Code, reached)
			}
		})
	}
}

func TestRealClientStoresClient(t *testing.T) {
	var got Client
	var ok bool
	h := RealClient(testTrusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok = ClientFrom(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "10.0.0.2:1"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !ok || got.IP != netip.MustParseAddr("198.51.100.1") || !got.ViaTrustedProxy {
		t.Fatalf("ClientFrom = %+v, %v", got, ok)
	}
}

func TestNormalizeHost(t *testing.T) {
	tests := []struct{ in, scheme, want string }{
		{"Gate.Example", "http", "gate.example"},
		{"gate.example:80", "http", "gate.example"},
		{"gate.example:443", "http", "gate.example:443"},
		{"gate.example:443", "https", "gate.example"},
		{"gate.example:80", "https", "gate.example:80"},
		{"under_score.example", "http", "under_score.example"},
		{"localhost:8080", "http", "localhost:8080"},
		{"127.0.0.1", "http", "127.0.0.1"},
		{"[::1]:8443", "https", "[::1]:8443"},
		{"[2001:DB8::1]", "https", "[2001:db8::1]"},
		{"xn--bcher-kva.example", "https", "xn--bcher-kva.example"},
		{"1password.example", "https", "1password.example"},
	}
	for _, tt := range tests {
		got, err := NormalizeHost(tt.in, tt.scheme)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeHost(%q, %q) = %q, %v; want %q", tt.in, tt.scheme, got, err, tt.want)
		}
	}
}

func FuzzParseForwardedFor(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4, ::1", "", ",", "::ffff:1.2.3.4", "fe80::1%eth0"} {
		f.Add(s, "10.0.0.1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		chain, err := ParseForwardedFor([]string{a, b})
		if err != nil {
			if !errors.Is(err, ErrInvalidForwardedFor) || chain != nil {
				t.Fatalf("bad error shape: %v %v", chain, err)
			}
			return
		}
		if len(chain) == 0 || len(chain) > MaxForwardedFor {
			t.Fatalf("chain length %d", len(chain))
		}
		for _, ad := range chain {
			if !ad.IsValid() || ad.Zone() != "" || ad.Is4In6() {
				t.Fatalf("bad address %v", ad)
			}
		}
		// What was accepted must parse again identically.
		parts := make([]string, len(chain))
		for i, ad := range chain {
			parts[i] = ad.String()
		}
		again, err := ParseForwardedFor([]string{strings.Join(parts, ", ")})
		if err != nil || !reflect.DeepEqual(again, chain) {
			t.Fatalf("round trip: %v %v", again, err)
		}
	})
}

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"gate.example", "gate.example:443", "[::1]:80", "1.2.3", "a..b", "[fe80::1%x]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, scheme := range []string{"http", "https"} {
			h, err := NormalizeHost(in, scheme)
			if err != nil {
				continue
			}
			if strings.ContainsAny(h, "/?#@ \t\r\n\\%,") || h != strings.ToLower(h) {
				t.Fatalf("accepted dangerous host %q from %q", h, in)
			}
			// Normal form is a fixed point.
			if again, err := NormalizeHost(h, scheme); err != nil || again != h {
				t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, h, again, err)
			}
		}
	})
}
