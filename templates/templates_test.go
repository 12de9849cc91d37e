package templates

import (
	"bytes"
	"html/template"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

const (
	token = "tok_Abc123-xyz_TOKEN_VALUE_0123456789abcdef"
	xss   = `<script>alert("x")</script>`
)

func common(title string) Common {
	return Common{Title: title, CSRFToken: token, Product: Product}
}

// samples returns representative data for every page.
func samples() map[string]any {
	return map[string]any{
		PageLogin:  LoginPage{Common: common("Sign in"), Username: "alice", RD: "/admin/?tab=1"},
		PageVerify: VerifyPage{Common: common("Two-factor authentication"), User: "alice", RD: "/admin/", TOTP: true},
		PageEnroll: EnrollPage{
			Common: common("Set up two-factor authentication"), User: "alice", Issuer: "Legacy Admin",
			QRDataURI:  template.URL("data:image/png;base64,iVBORw0KGgo="),
			KeyGrouped: "JBSW Y3DP EHPK 3PXP",
			OTPAuthURL: template.URL("otpauth://totp/Legacy%20Admin:alice?secret=JBSWY3DPEHPK3PXP&issuer=Legacy%20Admin&digits=6&period=30"),
			Digits:     6, Period: 30, RD: "/admin/",
		},
		PageLogout: LogoutPage{Common: common("Sign out"), User: "alice"},
		PageError: ErrorPage{Common: common("Something went wrong"), Status: 502,
			Message: "The application is not reachable.", RequestID: "REQ7ID", BackURL: "/admin/"},
	}
}

func render(t *testing.T, pages map[string]*template.Template, name string, data any) string {
	t.Helper()
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, LayoutName, data); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	return buf.String()
}

func mustPages(t *testing.T) map[string]*template.Template {
	t.Helper()
	pages, err := ParsePages()
	if err != nil {
		t.Fatalf("ParsePages: %v", err)
	}
	return pages
}

func TestParsePages(t *testing.T) {
	pages := mustPages(t)
	if len(pages) != len(PageNames) {
		t.Fatalf("got %d pages, want %d", len(pages), len(PageNames))
	}
	for _, n := range PageNames {
		if pages[n] == nil || pages[n].Lookup(LayoutName) == nil || pages[n].Lookup("content") == nil {
			t.Errorf("page %s incomplete", n)
		}
	}
	if _, err := Parse(); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

// Pages must not bleed into each other: each one renders its own content
// (the reason pages are parsed separately).
func TestPagesAreDistinct(t *testing.T) {
	pages := mustPages(t)
	marks := map[string]string{
		PageLogin:  `action="/.authgate/login"`,
		PageVerify: `action="/.authgate/verify"`,
		PageEnroll: `action="/.authgate/enroll"`,
		PageLogout: `action="/.authgate/logout"`,
		PageError:  `Reference: <code>REQ7ID</code>`,
	}
	for name, data := range samples() {
		out := render(t, pages, name, data)
		for other, m := range marks {
			if has := strings.Contains(out, m); has != (other == name) {
				t.Errorf("page %s: contains %q = %v", name, m, has)
			}
		}
	}
}

var (
	formRe   = regexp.MustCompile(`(?s)<form\b[^>]*>.*?</form>`)
	inputRe  = regexp.MustCompile(`<input\b[^>]*>`)
	idRe     = regexp.MustCompile(`\bid="([^"]+)"`)
	typeRe   = regexp.MustCompile(`\btype="([^"]+)"`)
	assetRe  = regexp.MustCompile(`(?i)\b(src|href|action|srcset|poster|data)\s*=\s*"?\s*(https?:)?//`)
	csrfHTML = `<input type="hidden" name="csrf_token" value="` + token + `">`
)

func TestPagesCommonStructure(t *testing.T) {
	pages := mustPages(t)
	for name, data := range samples() {
		t.Run(name, func(t *testing.T) {
			out := render(t, pages, name, data)
			for _, want := range []string{
				"<!doctype html>", `<html lang="en">`, `<meta name="viewport"`, "<style>",
				`<p class="brand">authgate</p>`, "· authgate</title>", ":focus-visible",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("missing %q", want)
				}
			}
			// No JavaScript, no external assets.
			if strings.Contains(strings.ToLower(out), "<script") {
				t.Error("page contains a script element")
			}
			if m := assetRe.FindString(out); m != "" {
				t.Errorf("external or protocol-relative reference: %q", m)
			}
			if strings.Contains(out, "http://") || strings.Contains(out, "https://") {
				t.Error("page mentions an http(s):// URL")
			}
			// Every POST form carries the CSRF token.
			forms := formRe.FindAllString(out, -1)
			for _, f := range forms {
				if !strings.Contains(f, `method="post"`) {
					t.Errorf("form without method=post: %s", f)
				}
				if !strings.Contains(f, csrfHTML) {
					t.Errorf("POST form without csrf_token field: %s", f)
				}
				if !strings.Contains(f, `action="/.authgate/`) {
					t.Errorf("form posts outside /.authgate/: %s", f)
				}
			}
			if name != PageError && len(forms) != 1 {
				t.Errorf("%d forms, want 1", len(forms))
			}
			// Every visible input has a <label for>.
			for _, in := range inputRe.FindAllString(out, -1) {
				if tm := typeRe.FindStringSubmatch(in); tm != nil && tm[1] == "hidden" {
					continue
				}
				im := idRe.FindStringSubmatch(in)
				if im == nil {
					t.Errorf("input without id: %s", in)
					continue
				}
				if !strings.Contains(out, `<label for="`+im[1]+`">`) {
					t.Errorf("input %q has no <label for>", im[1])
				}
			}
			// Empty messages are hidden.
			if strings.Contains(out, `role="alert"`) || strings.Contains(out, `role="status"`) {
				t.Error("empty Error/Notice rendered")
			}
		})
	}
}

func TestPageFields(t *testing.T) {
	pages := mustPages(t)
	codeAttrs := []string{
		`name="code"`, `autocomplete="one-time-code"`, `inputmode="numeric"`,
		`pattern="[0-9 ]*"`, `maxlength="10"`, "autofocus",
	}
	want := map[string][]string{
		PageLogin: {
			`name="username"`, `value="alice"`, `autocomplete="username"`,
			`name="password"`, `type="password"`, `autocomplete="current-password"`,
			`<input type="hidden" name="rd" value="/admin/?tab=1">`,
		},
		PageVerify: append([]string{
			`action="/.authgate/verify"`, "<strong>alice</strong>",
			`<input type="hidden" name="rd" value="/admin/">`,
			`<a href="/.authgate/logout">Sign in as someone else</a>`,
		}, codeAttrs...),
		PageEnroll: append([]string{
			`action="/.authgate/enroll"`,
			`src="data:image/png;base64,iVBORw0KGgo="`,
			`<code class="key" id="totp-key" aria-label="Setup key">JBSW Y3DP EHPK 3PXP</code>`,
			`href="otpauth://totp/Legacy%20Admin:alice?secret=JBSWY3DPEHPK3PXP&amp;issuer=Legacy%20Admin&amp;digits=6&amp;period=30">Open in authenticator app</a>`,
			"<dd>Legacy Admin</dd>", "<dd>6</dd>", "<dd>30 seconds</dd>", "Install an authenticator app",
			`<input type="hidden" name="rd" value="/admin/">`,
		}, codeAttrs...),
		PageLogout: {`action="/.authgate/logout"`, "<strong>alice</strong>", `<button type="submit">Sign out</button>`},
		PageError:  {"The application is not reachable.", "Error 502", "Reference: <code>REQ7ID</code>", `<a href="/admin/">Go back</a>`},
	}
	s := samples()
	for name, frags := range want {
		t.Run(name, func(t *testing.T) {
			out := render(t, pages, name, s[name])
			for _, f := range frags {
				if !strings.Contains(out, f) {
					t.Errorf("missing %q", f)
				}
			}
			if strings.Contains(out, "ZgotmplZ") {
				t.Error("a value was rejected by html/template")
			}
		})
	}
}

func TestErrorAndNotice(t *testing.T) {
	pages := mustPages(t)
	c := common("Sign in")
	c.Error, c.Notice = "Wrong username or password.", "You have been signed out."
	out := render(t, pages, PageLogin, LoginPage{Common: c})
	for _, f := range []string{
		`<div id="form-error" class="msg error" role="alert">Wrong username or password.</div>`,
		`<div id="form-notice" class="msg notice" role="status">You have been signed out.</div>`,
		`aria-describedby="form-error"`, `aria-invalid="true"`,
	} {
		if !strings.Contains(out, f) {
			t.Errorf("missing %q", f)
		}
	}
	// Empty username: autofocus on the username field, not the password.
	if !regexp.MustCompile(`id="username"[^>]*autofocus`).MatchString(out) ||
		regexp.MustCompile(`id="password"[^>]*autofocus`).MatchString(out) {
		t.Error("autofocus should be on username when it is empty")
	}
}

func TestEscapesUserInput(t *testing.T) {
	pages := mustPages(t)
	evil := Common{Title: xss, CSRFToken: `"><script>`, Error: xss, Notice: xss, Product: Product}
	tests := []struct {
		name string
		data any
	}{
		{PageLogin, LoginPage{Common: evil, Username: xss, RD: `"><script>alert(1)</script>`}},
		{PageVerify, VerifyPage{Common: evil, User: xss, RD: xss, TOTP: true, Passkey: true}},
		{PageEnroll, EnrollPage{Common: evil, User: xss, Issuer: xss, KeyGrouped: xss, RD: xss,
			QRDataURI: "data:image/png;base64,AAAA", OTPAuthURL: "otpauth://totp/x"}},
		{PageLogout, LogoutPage{Common: evil, User: xss}},
		{PageError, ErrorPage{Common: evil, Message: xss, RequestID: xss, BackURL: "javascript:alert(1)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := render(t, pages, tt.name, tt.data)
			if strings.Contains(strings.ToLower(out), "<script") {
				t.Errorf("unescaped script element in output")
			}
			if !strings.Contains(out, "&lt;script&gt;") {
				t.Errorf("escaped payload not found")
			}
			if strings.Contains(out, `href="javascript:`) {
				t.Errorf("javascript: URL rendered")
			}
		})
	}
	// A javascript: BackURL is neutralised.
	out := render(t, pages, PageError, ErrorPage{Common: common("x"), BackURL: "javascript:alert(1)"})
	if !strings.Contains(out, `href="#ZgotmplZ"`) {
		t.Errorf("javascript: BackURL not neutralised")
	}
}

// Plain-string data: URIs would be rejected, which is why EnrollPage uses
// template.URL; with a map, a missing key is an error, not a blank.
func TestMapDataMissingKey(t *testing.T) {
	pages := mustPages(t)
	err := pages[PageLogout].ExecuteTemplate(&bytes.Buffer{}, LayoutName, map[string]any{"Title": "x"})
	if err == nil {
		t.Fatal("missing keys in map data were not reported")
	}
}

func TestTemplateFilesHaveNoExternalReferences(t *testing.T) {
	files, err := fs.Glob(FS, "*.html")
	partials, _ := fs.Glob(FS, "_*.html")
	if err != nil || len(files) != len(PageNames)+1+len(partials) {
		t.Fatalf("embedded files %v, %v", files, err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(FS, f)
		if err != nil {
			t.Fatal(err)
		}
		// The one script of the gateway's pages: its own passkey.js,
		// loaded by the layout when a page asks for it.
		s := strings.Replace(string(b), `<script src="/.authgate/passkey.js" defer></script>`, "", 1)
		if strings.Contains(s, "http://") || strings.Contains(s, "https://") || strings.Contains(s, "@import") ||
			strings.Contains(strings.ToLower(s), "<script") || strings.Contains(s, "url(") {
			t.Errorf("%s references external resources or scripts", f)
		}
	}
}

// The layout loads passkey.js only for pages that ask for it: every
// other page stays script-free under the gateway's default CSP.
func TestPasskeyScriptOnlyWhenAsked(t *testing.T) {
	pages, err := ParsePages()
	if err != nil {
		t.Fatal(err)
	}
	for _, asked := range []bool{false, true} {
		var buf strings.Builder
		d := VerifyPage{Common: Common{Title: "t", PasskeyScript: asked}, User: "alice", TOTP: true, Passkey: asked}
		if err := pages[PageVerify].ExecuteTemplate(&buf, LayoutName, d); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(buf.String(), `src="`+PasskeyScriptPath+`"`); got != asked {
			t.Errorf("PasskeyScript %v: script tag present = %v", asked, got)
		}
	}
	if !strings.Contains(string(PasskeyScript()), "navigator.credentials") {
		t.Error("PasskeyScript() is not passkey.js")
	}
}
