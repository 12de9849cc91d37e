package branding

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><script>alert(1)</script><rect width="1" height="1"/></svg>`

func get(t *testing.T, l *Logo, method, target string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	l.ServeHTTP(w, r)
	return w
}

func TestLogoHeaders(t *testing.T) {
	for _, ct := range []string{"image/png", "image/jpeg", "image/webp", "image/svg+xml"} {
		t.Run(ct, func(t *testing.T) {
			l := NewLogo([]byte(svg), ct)
			w := get(t, l, "GET", LogoPath, nil)
			if w.Code != http.StatusOK || w.Body.String() != svg {
				t.Fatalf("status %d, body %q", w.Code, w.Body)
			}
			want := map[string]string{
				"Content-Type":            ct,
				"X-Content-Type-Options":  "nosniff",
				"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
				"ETag":                    l.ETag(),
				"Cache-Control":           "no-cache",
				"Set-Cookie":              "",
			}
			for k, v := range want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestLogoETagAndVersion(t *testing.T) {
	a := NewLogo([]byte("one"), "image/png")
	b := NewLogo([]byte("two"), "image/png")
	if a.ETag() == b.ETag() || a.URL() == b.URL() {
		t.Fatal("different logos share an ETag or URL")
	}
	if c := NewLogo([]byte("one"), "image/png"); c.ETag() != a.ETag() || c.URL() != a.URL() {
		t.Fatal("the same logo got another ETag or URL (instances must agree)")
	}
	if !strings.HasPrefix(a.URL(), LogoPath+"?v=") || !strings.HasPrefix(a.ETag(), `"`) || !strings.HasSuffix(a.ETag(), `"`) {
		t.Fatalf("URL %q, ETag %s", a.URL(), a.ETag())
	}
	// The URL pages use may be kept for good.
	if w := get(t, a, "GET", a.URL(), nil); w.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("versioned Cache-Control = %q", w.Header().Get("Cache-Control"))
	}
	// An old version's URL (after a reload) gets the new logo, revalidated.
	if w := get(t, a, "GET", b.URL(), nil); w.Header().Get("Cache-Control") != "no-cache" || w.Body.String() != "one" {
		t.Errorf("stale version: Cache-Control %q, body %q", w.Header().Get("Cache-Control"), w.Body)
	}
}

func TestLogoNotModified(t *testing.T) {
	l := NewLogo([]byte(svg), "image/svg+xml")
	for name, inm := range map[string]string{"exact": l.ETag(), "weak": "W/" + l.ETag(), "list": `"x", ` + l.ETag(), "any": "*"} {
		t.Run(name, func(t *testing.T) {
			w := get(t, l, "GET", LogoPath, http.Header{"If-None-Match": {inm}})
			if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
				t.Fatalf("status %d, %d bytes", w.Code, w.Body.Len())
			}
			if w.Header().Get("ETag") != l.ETag() {
				t.Errorf("304 without the ETag")
			}
		})
	}
	if w := get(t, l, "GET", LogoPath, http.Header{"If-None-Match": {`"other"`}}); w.Code != http.StatusOK {
		t.Fatalf("another ETag: status %d", w.Code)
	}
}

func TestLogoMethods(t *testing.T) {
	l := NewLogo([]byte("img"), "image/png")
	if w := get(t, l, "HEAD", LogoPath, nil); w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "3" {
		t.Fatalf("HEAD: status %d, %d bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		w := get(t, l, m, LogoPath, nil)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d, Allow %q", m, w.Code, w.Header().Get("Allow"))
		}
		if w.Header().Get("Content-Type") == "image/png" {
			t.Errorf("%s: error sent as an image", m)
		}
	}
}
