package auth

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestSafeRedirectRefusesPayloads(t *testing.T) {
	f, err := os.Open("testdata/openredirects.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, `"`) {
			if line, err = strconv.Unquote(line); err != nil {
				t.Fatalf("bad quoted line %q: %v", sc.Text(), err)
			}
		}
		n++
		if got := SafeRedirect(line, "gw.test", []string{"panel.gw.test"}); got != "/" {
			t.Errorf("SafeRedirect(%q) = %q, want /", line, got)
		}
	}
	if n < 200 {
		t.Fatalf("only %d payloads read", n)
	}
}

func TestSafeRedirectKeepsGoodTargets(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"/dashboard", "/dashboard"},
		{"/a/b?x=1&y=%2F", "/a/b?x=1&y=%2F"},
		{"/cpsess123/frontend/index.html#top", "/cpsess123/frontend/index.html#top"},
		{"https://gw.test/x", "https://gw.test/x"},
		{"http://GW.test/x", "http://GW.test/x"},
		{"https://panel.gw.test/", "https://panel.gw.test/"},
		{"", "/"},
		{"dashboard", "/"},
		{"../x", "/"},
	} {
		if got := SafeRedirect(tc.in, "gw.test", []string{"panel.gw.test"}); got != tc.want {
			t.Errorf("SafeRedirect(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/", "//evil", "https://gw.test/", "/\\evil", "https:evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SafeRedirect(s, "gw.test", nil)
		if got == "/" {
			return
		}
		// Whatever passes is same-origin: a single-slash path or gw.test.
		if strings.HasPrefix(got, "//") || strings.Contains(got, "\\") {
			t.Fatalf("SafeRedirect(%q) = %q", s, got)
		}
		if !strings.HasPrefix(got, "/") && !strings.HasPrefix(strings.ToLower(got), "https://gw.test") && !strings.HasPrefix(strings.ToLower(got), "http://gw.test") {
			t.Fatalf("SafeRedirect(%q) = %q escapes the origin", s, got)
		}
	})
}
