package templates

import (
	"strings"
	"testing"
)

// The sign-in pages show the title, the host being signed into and the
// logo (through <img> only), all escaped.
func TestBrandHeader(t *testing.T) {
	pages := mustPages(t)
	brand := &Brand{Title: `Acme <Panel> & "Co"`, Host: "panel.example.com:8443", LogoURL: "/.authgate/logo?v=0123abcd"}
	for _, name := range []string{PageLogin, PageVerify, PageEnroll, PageLogout} {
		t.Run(name, func(t *testing.T) {
			data := withBrand(samples()[name], brand)
			out := render(t, pages, name, data)
			for _, want := range []string{
				`<header class="brand-head">`,
				`<img class="brand-logo" src="/.authgate/logo?v=0123abcd" alt="">`,
				`<p class="brand">Acme &lt;Panel&gt; &amp; &#34;Co&#34;</p>`,
				`<p class="signin-host">Sign in to <strong>panel.example.com:8443</strong></p>`,
				`· Acme &lt;Panel&gt; &amp; &#34;Co&#34;</title>`,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("missing %q in\n%.1500s", want, out)
				}
			}
			if strings.Contains(out, `<p class="brand">authgate</p>`) || strings.Contains(out, "<svg") {
				t.Error("product brand or inline SVG shown")
			}
		})
	}
}

func TestBrandHeaderParts(t *testing.T) {
	pages := mustPages(t)
	tests := []struct {
		name  string
		brand *Brand
		want  []string
		not   []string
	}{
		{"no logo", &Brand{Title: "Panel", Host: "h.example"},
			[]string{`<p class="brand">Panel</p>`, "Sign in to <strong>h.example</strong>"}, []string{"<img"}},
		{"no host", &Brand{Title: "Panel", LogoURL: "/.authgate/logo?v=1"},
			[]string{`<p class="brand">Panel</p>`, `src="/.authgate/logo?v=1"`}, []string{"Sign in to"}},
		{"no title", &Brand{Host: "h.example"},
			[]string{`<p class="brand">authgate</p>`, "Sign in to <strong>h.example</strong>", "· authgate</title>"}, nil},
		// A host is escaped like any text (the gateway validates it,
		// but the page must not rely on that).
		{"hostile host", &Brand{Title: "Panel", Host: xss},
			[]string{"Sign in to <strong>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</strong>"}, []string{"<script"}},
		// A URL the gateway did not build cannot become a script.
		{"hostile logo URL", &Brand{Title: "Panel", LogoURL: "javascript:alert(1)"},
			[]string{`src="#ZgotmplZ"`}, []string{"javascript:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := samples()[PageLogin].(LoginPage)
			d.Brand = tt.brand
			out := render(t, pages, PageLogin, d)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("contains %q", n)
				}
			}
		})
	}
}

// withBrand returns a sample page's data with b as its Brand.
func withBrand(data any, b *Brand) any {
	switch d := data.(type) {
	case LoginPage:
		d.Brand = b
		return d
	case VerifyPage:
		d.Brand = b
		return d
	case EnrollPage:
		d.Brand = b
		return d
	case LogoutPage:
		d.Brand = b
		return d
	}
	panic("no Brand for this page")
}
