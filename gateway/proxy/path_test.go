package proxy

import (
	"bufio"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
)

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		raw     string // request-target as a client sends it
		want    string
		wantErr bool
	}{
		{raw: "", want: "/"},
		{raw: "/", want: "/"},
		{raw: "/a/b", want: "/a/b"},
		{raw: "/a/../b", want: "/b"},
		{raw: "/a//b", want: "/a/b"},
		{raw: "//a///b//", want: "/a/b/"},
		{raw: "/%2e%2e/x", want: "/x"},
		{raw: "/a/%2E%2e/x", want: "/x"},
		{raw: "/../../x", want: "/x"},
		{raw: "/a/./b", want: "/a/b"},
		{raw: "/a/b/", want: "/a/b/"},
		{raw: "/a/b/.", want: "/a/b/"},
		{raw: "/a/b/..", want: "/a/"},
		{raw: "/a/..", want: "/"},
		{raw: "/a%20b", want: "/a b"},
		{raw: "/caf%C3%A9", want: "/café"},
		{raw: "/a%3Fb", want: "/a?b"},
		{raw: "/a%25b", want: "/a%b"},
		{raw: "/a;jsessionid=1/b", want: "/a;jsessionid=1/b"},
		{raw: "/a?x=/../admin", want: "/a"},
		// Decoded once only: a double-encoded dot stays a literal name.
		{raw: "/p/%252e%252e/../admin", want: "/p/admin"},
		{raw: "/a%2fb", wantErr: true},
		{raw: "/a%2Fb", wantErr: true},
		{raw: "/a%5cb", wantErr: true},
		{raw: "/a%5Cb", wantErr: true},
		{raw: "/a%00b", wantErr: true},
		{raw: "/a%0d%0ab", wantErr: true},
		{raw: "/a%7fb", wantErr: true},
		{raw: "/a/..;/b", wantErr: true},
		{raw: "/a/.;x/b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			u := &url.URL{}
			if tt.raw != "" {
				var err error
				// The server parses request targets with ParseRequestURI.
				if u, err = url.ParseRequestURI(tt.raw); err != nil {
					t.Fatalf("parse %q: %v", tt.raw, err)
				}
			}
			got, err := CanonicalPath(u)
			if tt.wantErr {
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("CanonicalPath(%q) = %q, %v; want ErrBadPath", tt.raw, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("CanonicalPath(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
			}
		})
	}
}

// URLs that url.Parse would refuse can still arrive hand-built; the
// decoder must refuse them itself.
func TestCanonicalPathHandBuilt(t *testing.T) {
	tests := []struct {
		name string
		u    *url.URL
		want string
		err  bool
	}{
		// RawPath is only a hint: an invalid one is ignored and Path (the
		// decoded form) is authoritative, so "%zz" is a literal percent.
		{name: "invalid RawPath hint", u: &url.URL{Path: "/a%zz", RawPath: "/a%zz"}, want: "/a%zz"},
		{name: "literal backslash", u: &url.URL{Path: `/a\b`}, err: true},
		{name: "literal NUL", u: &url.URL{Path: "/a\x00b"}, err: true},
		{name: "literal tab", u: &url.URL{Path: "/a\tb"}, err: true},
		{name: "opaque", u: &url.URL{Scheme: "http", Opaque: "x"}, err: true},
		{name: "relative", u: &url.URL{Path: "a/b"}, err: true},
		{name: "nil", u: nil, err: true},
		{name: "literal percent in Path", u: &url.URL{Path: "/a%2fb"}, want: "/a%2fb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalPath(tt.u)
			if tt.err != (err != nil) || (!tt.err && got != tt.want) {
				t.Fatalf("got %q, %v; want %q, err=%v", got, err, tt.want, tt.err)
			}
			if err != nil && !errors.Is(err, ErrBadPath) {
				t.Fatalf("error %v is not ErrBadPath", err)
			}
		})
	}
}

func readLines(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// Every payload either fails canonicalisation or is routed to the admin
// route: none may reach the upstream's /admin through the bypass route.
func TestPathBypassPayloads(t *testing.T) {
	p := mustNew(t, Options{Routes: []Route{
		{Name: "root", PathPrefix: "/", Upstream: mustURL(t, "http://up.invalid")},
		{Name: "public", PathPrefix: "/public", Upstream: mustURL(t, "http://up.invalid"), Policy: "bypass"},
		{Name: "admin", PathPrefix: "/admin", Upstream: mustURL(t, "http://up.invalid")},
	}})
	for _, raw := range readLines(t, "testdata/path_bypass.txt") {
		t.Run(raw, func(t *testing.T) {
			u, err := url.ParseRequestURI(raw)
			if err != nil {
				return // net/http answers 400 before any handler runs
			}
			canon, err := CanonicalPath(u)
			if err != nil {
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("error %v is not ErrBadPath", err)
				}
				return
			}
			rt, ok := p.Match("any.example", canon)
			if !ok || rt.Name != "admin" {
				t.Fatalf("%q canonicalised to %q and matched %v; want rejection or the admin route", raw, canon, rt)
			}
		})
	}
}

func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/a//b/", "/%2e%2e/x", "/a%2fb", "/a;b/..;/c", "/caf%C3%A9/./"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return
		}
		got, err := CanonicalPath(u)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "/") || strings.Contains(got, "//") || strings.Contains(got, `\`) {
			t.Fatalf("%q -> %q: not canonical", raw, got)
		}
		for seg := range strings.SplitSeq(got, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q -> %q: dot segment left", raw, got)
			}
		}
		for _, c := range []byte(got) {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("%q -> %q: control byte", raw, got)
			}
		}
		// What is forwarded upstream canonicalises to itself.
		again, err := CanonicalPath(&url.URL{Path: got})
		if err != nil || again != got {
			t.Fatalf("%q -> %q -> %q, %v: not idempotent", raw, got, again, err)
		}
	})
}

func TestDecodePathInvalidEscapes(t *testing.T) {
	for _, esc := range []string{"/a%", "/a%2", "/a%zz", "/a%2g", "/%%32%65"} {
		if _, err := decodePath(esc); !errors.Is(err, ErrBadPath) {
			t.Errorf("decodePath(%q) error = %v; want ErrBadPath", esc, err)
		}
	}
}

func TestRestAfter(t *testing.T) {
	tests := []struct {
		canon string
		n     int
		want  string
	}{
		{"/app/x", 1, "/x"},
		{"/app", 1, ""},
		{"/app/", 1, "/"},
		{"/app;js=1/x", 1, ";js=1/x"},
		{"/a/b/c", 2, "/c"},
		{"/a;p/b;q/c", 2, ";q/c"},
		{"/x", 0, "/x"},
		{"/a", 3, ""}, // shorter than the prefix: no panic
	}
	for _, tt := range tests {
		if got := restAfter(tt.canon, tt.n); got != tt.want {
			t.Errorf("restAfter(%q, %d) = %q; want %q", tt.canon, tt.n, got, tt.want)
		}
	}
}
