package middleware

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

const goodToken = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 43 base64url chars

func TestCSRF(t *testing.T) {
	otherToken := strings.Repeat("B", 43)
	tests := []struct {
		name       string
		method     string
		cookie     string // cookie value for authgate_csrf ("" = none)
		field      string // form field value ("" = none)
		header     map[string]string
		viaProxy   bool // request from trusted proxy: public origin https://public.example
		wantStatus int
		wantErr    error
		wantNewCk  bool
	}{
		{name: "GET without cookie issues one", method: "GET", wantStatus: 200, wantNewCk: true},
		{name: "GET with cookie keeps it", method: "GET", cookie: goodToken, wantStatus: 200},
		{name: "GET with malformed cookie replaces it", method: "GET", cookie: "short", wantStatus: 200, wantNewCk: true},
		{name: "HEAD is safe", method: "HEAD", wantStatus: 200, wantNewCk: true},
		{name: "OPTIONS is safe", method: "OPTIONS", cookie: goodToken, wantStatus: 200},
		{name: "POST ok", method: "POST", cookie: goodToken, field: goodToken, wantStatus: 200},
		{name: "POST ok via header", method: "POST", cookie: goodToken,
			header: map[string]string{CSRFHeader: goodToken}, wantStatus: 200},
		{name: "POST missing cookie", method: "POST", field: goodToken, wantStatus: 403, wantErr: ErrCSRFMissingCookie, wantNewCk: true},
		{name: "POST malformed cookie", method: "POST", cookie: "short", field: "short", wantStatus: 403, wantErr: ErrCSRFMissingCookie, wantNewCk: true},
		{name: "POST missing field", method: "POST", cookie: goodToken, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "POST mismatch", method: "POST", cookie: goodToken, field: otherToken, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "POST prefix of token", method: "POST", cookie: goodToken, field: goodToken[:42], wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "POST wrong header beats right field", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{CSRFHeader: otherToken}, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "PUT without token", method: "PUT", cookie: goodToken, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "PATCH with header", method: "PATCH", cookie: goodToken, header: map[string]string{CSRFHeader: goodToken}, wantStatus: 200},
		{name: "DELETE without token", method: "DELETE", cookie: goodToken, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "Origin matches", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Origin": "http://gate.example"}, wantStatus: 200},
		{name: "Origin with default port matches", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Origin": "HTTP://Gate.Example:80"}, wantStatus: 200},
		{name: "Origin other host", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Origin": "http://evil.example"}, wantStatus: 403, wantErr: ErrCSRFBadOrigin},
		{name: "Origin sibling subdomain", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Origin": "http://evil.gate.example"}, wantStatus: 403, wantErr: ErrCSRFBadOrigin},
		{name: "Origin other scheme", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Origin": "https://gate.example"}, wantStatus: 403, wantErr: ErrCSRFBadOrigin},
		{name: "Origin other port", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Origin": "http://gate.example:8080"}, wantStatus: 403, wantErr: ErrCSRFBadOrigin},
		{name: "Origin null", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Origin": "null"}, wantStatus: 403, wantErr: ErrCSRFBadOrigin},
		{name: "Origin with userinfo", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Origin": "http://gate.example@evil.example"}, wantStatus: 403, wantErr: ErrCSRFBadOrigin},
		{name: "Sec-Fetch-Site cross-site", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: 403, wantErr: ErrCSRFCrossSite},
		{name: "Sec-Fetch-Site same-site", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Sec-Fetch-Site": "same-site"}, wantStatus: 403, wantErr: ErrCSRFCrossSite},
		{name: "Sec-Fetch-Site same-origin", method: "POST", cookie: goodToken, field: goodToken,
			header: map[string]string{"Sec-Fetch-Site": "same-origin"}, wantStatus: 200},
		{name: "behind proxy: public Origin matches", method: "POST", viaProxy: true,
			cookie: goodToken, field: goodToken, header: map[string]string{"Origin": "https://public.example"}, wantStatus: 200},
		{name: "behind proxy: internal Origin rejected", method: "POST", viaProxy: true,
			cookie: goodToken, field: goodToken, header: map[string]string{"Origin": "http://gate.example"}, wantStatus: 403, wantErr: ErrCSRFBadOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rejectedErr error
			csrf := NewCSRF(CSRFOptions{Reject: func(w http.ResponseWriter, r *http.Request) {
				rejectedErr = CSRFFailure(r)
				if CSRFToken(r) == "" {
					t.Error("no token available to the reject page")
				}
				w.WriteHeader(http.StatusForbidden)
			}})
			var seenToken string
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seenToken = CSRFToken(r)
			})
			base, logs := newTestLogger()
			mw := []func(http.Handler) http.Handler{Logger(base)}
			if tt.viaProxy {
				mw = append(mw, RealClient([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}))
			}
			h := chain(next, append(mw, csrf.Middleware())...)

			var body io.Reader
			if tt.field != "" {
				body = strings.NewReader(url.Values{"csrf_token": {tt.field}}.Encode())
			}
			req := httptest.NewRequest(tt.method, "http://gate.example/.authgate/login", body)
			if body != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "authgate_csrf", Value: tt.cookie})
			}
			if tt.viaProxy {
				req.RemoteAddr = "10.0.0.2:1"
				req.Header.Set("X-Forwarded-Proto", "https")
				req.Header.Set("X-Forwarded-Host", "public.example")
				// The proxy's scheme is https, so the cookie is __Host-.
				req.Header.Del("Cookie")
				req.AddCookie(&http.Cookie{Name: "__Host-authgate_csrf", Value: tt.cookie})
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if !errors.Is(rejectedErr, tt.wantErr) || (tt.wantErr == nil && rejectedErr != nil) {
				t.Errorf("reject reason %v, want %v", rejectedErr, tt.wantErr)
			}
			cks := rec.Result().Cookies()
			if tt.wantNewCk != (len(cks) == 1) {
				t.Fatalf("cookies set: %v, want new=%v", cks, tt.wantNewCk)
			}
			if tt.wantStatus == 200 {
				want := tt.cookie
				if tt.wantNewCk {
					want = cks[0].Value
				}
				if seenToken != want || !validCSRFToken(seenToken) {
					t.Errorf("CSRFToken = %q, want %q", seenToken, want)
				}
			}
			if tt.wantErr != nil {
				acc := logs.requestEvents(t)
				if len(acc) != 1 || acc[0]["result"] != "csrf_rejected" {
					t.Errorf("access log %v", acc)
				}
				if strings.Contains(logs.String(), goodToken) {
					t.Error("token leaked into the log")
				}
			}
		})
	}
}

func TestCSRFCookieAttributes(t *testing.T) {
	tests := []struct {
		name       string
		opts       CSRFOptions
		tls        bool
		wantName   string
		wantPath   string
		wantSecure bool
	}{
		{"plain http", CSRFOptions{}, false, "authgate_csrf", "/.authgate/", false},
		{"https gets __Host- and Path=/", CSRFOptions{}, true, "__Host-authgate_csrf", "/", true},
		{"custom name and Secure func", CSRFOptions{CookieName: "x", Secure: func(*http.Request) bool { return true }},
			false, "__Host-x", "/", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewCSRF(tt.opts).Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			req := httptest.NewRequest("GET", "/.authgate/login", nil)
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			cks := rec.Result().Cookies()
			if len(cks) != 1 {
				t.Fatalf("cookies %v", cks)
			}
			c := cks[0]
			if c.Name != tt.wantName || c.Path != tt.wantPath || c.Secure != tt.wantSecure ||
				!c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Domain != "" || !validCSRFToken(c.Value) {
				t.Errorf("cookie %+v", c)
			}
		})
	}
}

// TestCSRFRoundTrip drives a real server with a cookie jar: fetch the form,
// post the token back, and try a forged post without it.
func TestCSRFRoundTrip(t *testing.T) {
	csrf := NewCSRF(CSRFOptions{FieldName: "tok"})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.authgate/login", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, CSRFToken(r))
	})
	mux.HandleFunc("POST /.authgate/login", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok "+r.PostFormValue("username"))
	})
	srv := httptest.NewServer(chain(mux, RealClient(nil), csrf.Middleware()))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	cl := srv.Client()
	cl.Jar = jar

	resp, err := cl.Get(srv.URL + "/.authgate/login")
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	post := func(form url.Values, origin string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/.authgate/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(url.Values{"tok": {string(tok)}, "username": {"alice"}}, srv.URL); code != 200 || body != "ok alice" {
		t.Fatalf("legit post: %d %q", code, body)
	}
	if code, _ := post(url.Values{"username": {"alice"}}, ""); code != 403 {
		t.Fatalf("forged post without token: %d", code)
	}
	if code, _ := post(url.Values{"tok": {string(tok)}}, "http://evil.example"); code != 403 {
		t.Fatalf("cross-origin post: %d", code)
	}
	// The plain-http cookie is scoped to /.authgate/ only.
	u, _ := url.Parse(srv.URL + "/app/")
	if len(jar.Cookies(u)) != 0 {
		t.Errorf("csrf cookie sent outside /.authgate/: %v", jar.Cookies(u))
	}
}

func TestCSRFCookieNames(t *testing.T) {
	got := NewCSRF(CSRFOptions{}).CookieNames()
	if strings.Join(got, ",") != "authgate_csrf,__Host-authgate_csrf" {
		t.Fatalf("CookieNames = %v", got)
	}
	if NewCSRF(CSRFOptions{}).FieldName() != "csrf_token" {
		t.Fatal("default field name")
	}
}
