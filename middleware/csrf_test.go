package middleware

import (
	"crypto/hmac"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// goodCookie is a well-formed token cookie (43 base64url chars).
const goodCookie = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// testKey is the HMAC key of the CSRFs under test.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// tokenFor is the form token bound to value under label, with key.
func tokenFor(key []byte, label, value string) string {
	return base64.RawURLEncoding.EncodeToString(NewCSRF(CSRFOptions{Key: key}).mac(label, value))
}

func TestCSRF(t *testing.T) {
	otherCookie := strings.Repeat("B", 43)
	const sessA, sessB = "session-a-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "session-b-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	preTok := tokenFor(testKey, csrfBindPreSession, goodCookie)
	sessTok := tokenFor(testKey, csrfBindSession, sessA)
	tests := []struct {
		name       string
		method     string
		cookie     string // cookie value for authgate_csrf ("" = none)
		session    string // cookie value for test_session ("" = none)
		field      string // form field value ("" = none)
		header     map[string]string
		viaProxy   bool // request from trusted proxy: public origin https://public.example
		wantStatus int
		wantErr    error
		wantNewCk  bool
	}{
		{name: "GET without cookie issues one", method: "GET", wantStatus: 200, wantNewCk: true},
		{name: "GET with cookie keeps it", method: "GET", cookie: goodCookie, wantStatus: 200},
		{name: "GET with malformed cookie replaces it", method: "GET", cookie: "short", wantStatus: 200, wantNewCk: true},
		{name: "GET with a session", method: "GET", cookie: goodCookie, session: sessA, wantStatus: 200},
		{name: "HEAD is safe", method: "HEAD", wantStatus: 200, wantNewCk: true},
		{name: "OPTIONS is safe", method: "OPTIONS", cookie: goodCookie, wantStatus: 200},
		{name: "POST ok", method: "POST", cookie: goodCookie, field: preTok, wantStatus: 200},
		{name: "POST ok via header", method: "POST", cookie: goodCookie,
			header: map[string]string{CSRFHeader: preTok}, wantStatus: 200},
		{name: "POST missing cookie", method: "POST", field: preTok, wantStatus: 403, wantErr: ErrCSRFMissingCookie, wantNewCk: true},
		{name: "POST malformed cookie", method: "POST", cookie: "short", field: "short", wantStatus: 403, wantErr: ErrCSRFMissingCookie, wantNewCk: true},
		{name: "POST missing field", method: "POST", cookie: goodCookie, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "POST token of another cookie", method: "POST", cookie: goodCookie, field: tokenFor(testKey, csrfBindPreSession, otherCookie), wantStatus: 403, wantErr: ErrCSRFBadToken},
		// Regression: the cookie used to be the token (plain double
		// submit), so a cookie an attacker planted plus the same value in
		// the form passed.
		{name: "POST cookie value echoed as the token", method: "POST", cookie: goodCookie, field: goodCookie, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "POST token made with another key", method: "POST", cookie: goodCookie, field: tokenFor([]byte("another key"), csrfBindPreSession, goodCookie), wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "POST pre-session value under the session label", method: "POST", cookie: goodCookie, field: tokenFor(testKey, csrfBindSession, goodCookie), wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "POST prefix of token", method: "POST", cookie: goodCookie, field: preTok[:42], wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "POST token with padding", method: "POST", cookie: goodCookie, field: preTok + "=", wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "POST wrong header beats right field", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{CSRFHeader: tokenFor(testKey, csrfBindPreSession, otherCookie)}, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "PUT without token", method: "PUT", cookie: goodCookie, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "PATCH with header", method: "PATCH", cookie: goodCookie, header: map[string]string{CSRFHeader: preTok}, wantStatus: 200},
		{name: "DELETE without token", method: "DELETE", cookie: goodCookie, wantStatus: 403, wantErr: ErrCSRFBadToken},
		// With a session the token is bound to it, not to the cookie.
		{name: "session: its token", method: "POST", cookie: goodCookie, session: sessA, field: sessTok, wantStatus: 200},
		{name: "session: its token without the token cookie", method: "POST", session: sessA, field: sessTok, wantStatus: 200, wantNewCk: true},
		{name: "session: another session's token", method: "POST", cookie: goodCookie, session: sessB, field: sessTok, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "session: the token from before sign-in", method: "POST", cookie: goodCookie, session: sessA, field: preTok, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "session: the session id as the token", method: "POST", cookie: goodCookie, session: sessA, field: sessA, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "session: no token", method: "POST", session: sessA, wantStatus: 403, wantErr: ErrCSRFBadToken, wantNewCk: true},
		{name: "Origin matches", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Origin": "http://gate.example"}, wantStatus: 200},
		{name: "Origin with a default port browsers never send", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Origin": "HTTP://Gate.Example:80"}, wantStatus: 403, wantErr: ErrCSRFCrossOrigin},
		{name: "Origin other host", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Origin": "http://evil.example"}, wantStatus: 403, wantErr: ErrCSRFCrossOrigin},
		{name: "Origin sibling subdomain", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Origin": "http://evil.gate.example"}, wantStatus: 403, wantErr: ErrCSRFCrossOrigin},
		// The standard library compares hosts only when a browser sends no
		// Sec-Fetch-Site (older than 2023); the token still decides.
		{name: "Origin other scheme, old browser", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Origin": "https://gate.example"}, wantStatus: 200},
		{name: "Origin other scheme, old browser, no token", method: "POST", cookie: goodCookie,
			header: map[string]string{"Origin": "https://gate.example"}, wantStatus: 403, wantErr: ErrCSRFBadToken},
		{name: "Origin other scheme, modern browser", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Origin": "https://gate.example", "Sec-Fetch-Site": "cross-site"}, wantStatus: 403, wantErr: ErrCSRFCrossOrigin},
		{name: "Origin other port", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Origin": "http://gate.example:8080"}, wantStatus: 403, wantErr: ErrCSRFCrossOrigin},
		{name: "Origin null", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Origin": "null"}, wantStatus: 403, wantErr: ErrCSRFCrossOrigin},
		{name: "Origin with userinfo", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Origin": "http://gate.example@evil.example"}, wantStatus: 403, wantErr: ErrCSRFCrossOrigin},
		{name: "Sec-Fetch-Site cross-site", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}, wantStatus: 403, wantErr: ErrCSRFCrossOrigin},
		{name: "Sec-Fetch-Site same-site", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Sec-Fetch-Site": "same-site"}, wantStatus: 403, wantErr: ErrCSRFCrossOrigin},
		{name: "Sec-Fetch-Site same-origin", method: "POST", cookie: goodCookie, field: preTok,
			header: map[string]string{"Sec-Fetch-Site": "same-origin"}, wantStatus: 200},
		{name: "behind proxy: public Origin matches", method: "POST", viaProxy: true,
			cookie: goodCookie, field: preTok, header: map[string]string{"Origin": "https://public.example"}, wantStatus: 200},
		{name: "behind proxy: internal Origin rejected", method: "POST", viaProxy: true,
			cookie: goodCookie, field: preTok, header: map[string]string{"Origin": "http://gate.example"}, wantStatus: 403, wantErr: ErrCSRFCrossOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rejectedErr error
			csrf := NewCSRF(CSRFOptions{
				Key:           testKey,
				SessionCookie: func(*http.Request) string { return "test_session" },
				Reject: func(w http.ResponseWriter, r *http.Request) {
					rejectedErr = r.Context().Value(csrfKey{}).(*csrfState).err
					if CSRFToken(r) == "" {
						t.Error("no token available to the reject page")
					}
					w.WriteHeader(http.StatusForbidden)
				},
			})
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
			csrfName := "authgate_csrf"
			if tt.viaProxy {
				req.RemoteAddr = "10.0.0.2:1"
				req.Header.Set("X-Forwarded-Proto", "https")
				req.Header.Set("X-Forwarded-Host", "public.example")
				// The proxy's scheme is https, so the cookie is __Host-.
				csrfName = "__Host-authgate_csrf"
			}
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: csrfName, Value: tt.cookie})
			}
			if tt.session != "" {
				req.AddCookie(&http.Cookie{Name: "test_session", Value: tt.session})
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
				want := tokenFor(testKey, csrfBindPreSession, tt.cookie)
				switch {
				case tt.session != "":
					want = sessTok
					if tt.session != sessA {
						want = tokenFor(testKey, csrfBindSession, tt.session)
					}
				case tt.wantNewCk:
					want = tokenFor(testKey, csrfBindPreSession, cks[0].Value)
				}
				if seenToken != want {
					t.Errorf("CSRFToken = %q, want %q", seenToken, want)
				}
			}
			if tt.wantErr != nil {
				acc := logs.requestEvents(t)
				if len(acc) != 1 || acc[0]["result"] != "csrf_rejected" {
					t.Errorf("access log %v", acc)
				}
				for _, secret := range []string{goodCookie, preTok, sessTok, sessA} {
					if strings.Contains(logs.String(), secret) {
						t.Errorf("token, cookie or session id leaked into the log: %s", logs.String())
					}
				}
			}
		})
	}
}

// TestCSRFTokenFollowsTheResponseSession: a page rendered in the response
// that signs in (or rotates the session id, or signs out) carries the
// token of the session the browser is left with, not the one it came
// with.
func TestCSRFTokenFollowsTheResponseSession(t *testing.T) {
	csrf := NewCSRF(CSRFOptions{Key: testKey, SessionCookie: func(*http.Request) string { return "test_session" }})
	const oldID, newID = "old-session-id", "new-session-id"
	tests := []struct {
		name    string
		session string // the request's session cookie
		set     func(w http.ResponseWriter)
		want    string
	}{
		{"signs in", "", func(w http.ResponseWriter) {
			http.SetCookie(w, &http.Cookie{Name: "test_session", Value: newID, Path: "/", HttpOnly: true})
		}, tokenFor(testKey, csrfBindSession, newID)},
		{"rotates", oldID, func(w http.ResponseWriter) {
			http.SetCookie(w, &http.Cookie{Name: "test_session", Value: newID, Path: "/", HttpOnly: true})
		}, tokenFor(testKey, csrfBindSession, newID)},
		{"rotates twice", oldID, func(w http.ResponseWriter) {
			http.SetCookie(w, &http.Cookie{Name: "test_session", Value: "first", Path: "/"})
			http.SetCookie(w, &http.Cookie{Name: "test_session", Value: newID, Path: "/"})
		}, tokenFor(testKey, csrfBindSession, newID)},
		{"signs out", oldID, func(w http.ResponseWriter) {
			http.SetCookie(w, &http.Cookie{Name: "test_session", Path: "/", MaxAge: -1})
		}, tokenFor(testKey, csrfBindPreSession, goodCookie)},
		{"other cookies do not count", oldID, func(w http.ResponseWriter) {
			http.SetCookie(w, &http.Cookie{Name: "test_session_x", Value: newID, Path: "/"})
		}, tokenFor(testKey, csrfBindSession, oldID)},
		{"unchanged", oldID, func(http.ResponseWriter) {}, tokenFor(testKey, csrfBindSession, oldID)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			h := csrf.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tt.set(w)
				got = CSRFToken(r)
			}))
			req := httptest.NewRequest("GET", "http://gate.example/.authgate/login", nil)
			req.AddCookie(&http.Cookie{Name: "authgate_csrf", Value: goodCookie})
			if tt.session != "" {
				req.AddCookie(&http.Cookie{Name: "test_session", Value: tt.session})
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if got != tt.want {
				t.Errorf("CSRFToken = %q, want %q", got, tt.want)
			}
		})
	}
}

// Without a Key every CSRF has its own random one.
func TestCSRFRandomKey(t *testing.T) {
	a, b := NewCSRF(CSRFOptions{}), NewCSRF(CSRFOptions{})
	if hmac.Equal(a.mac(csrfBindPreSession, goodCookie), b.mac(csrfBindPreSession, goodCookie)) {
		t.Fatal("two CSRFs without a Key share their tokens")
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
				!c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Domain != "" || !validCSRFCookie(c.Value) {
				t.Errorf("cookie %+v", c)
			}
		})
	}
}

// TestCSRFRoundTrip drives a real server with a cookie jar: fetch the form,
// post the token back, and try a forged post without it.
func TestCSRFRoundTrip(t *testing.T) {
	csrf := NewCSRF(CSRFOptions{})
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
	if code, body := post(url.Values{CSRFField: {string(tok)}, "username": {"alice"}}, srv.URL); code != 200 || body != "ok alice" {
		t.Fatalf("legit post: %d %q", code, body)
	}
	if code, _ := post(url.Values{"username": {"alice"}}, ""); code != 403 {
		t.Fatalf("forged post without token: %d", code)
	}
	if code, _ := post(url.Values{CSRFField: {string(tok)}}, "http://evil.example"); code != 403 {
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
}

// TestCSRFSessionRoundTrip drives a real server with two browsers (cookie
// jars): a token works only for the session it was rendered for, and the
// one from before sign-in stops working once the browser has a session.
func TestCSRFSessionRoundTrip(t *testing.T) {
	csrf := NewCSRF(CSRFOptions{Key: testKey, SessionCookie: func(*http.Request) string { return "sid" }})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.authgate/login", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, CSRFToken(r))
	})
	n := 0
	mux.HandleFunc("POST /.authgate/login", func(w http.ResponseWriter, r *http.Request) {
		// Sign in: a new session, and a page with its token at once.
		n++
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: fmt.Sprintf("session-%d", n), Path: "/", HttpOnly: true})
		_, _ = io.WriteString(w, CSRFToken(r))
	})
	mux.HandleFunc("POST /.authgate/act", func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie("sid")
		_, _ = io.WriteString(w, "ok "+c.Value)
	})
	srv := httptest.NewServer(chain(mux, RealClient(nil), csrf.Middleware()))
	defer srv.Close()

	type browser struct{ cl *http.Client }
	newBrowser := func() browser {
		jar, _ := cookiejar.New(nil)
		cl := *srv.Client()
		cl.Jar = jar
		return browser{&cl}
	}
	do := func(b browser, method, path, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(url.Values{"csrf_token": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	signIn := func(b browser) (before, after string) {
		t.Helper()
		_, before = do(b, "GET", "/.authgate/login", "")
		code, after := do(b, "POST", "/.authgate/login", before)
		if code != 200 || after == before {
			t.Fatalf("sign-in: %d, token before %q, after %q", code, before, after)
		}
		return before, after
	}
	a, b := newBrowser(), newBrowser()
	preA, tokA := signIn(a)
	_, tokB := signIn(b)
	if code, body := do(a, "POST", "/.authgate/act", tokA); code != 200 || body != "ok session-1" {
		t.Fatalf("a with its token: %d %q", code, body)
	}
	if code, _ := do(a, "POST", "/.authgate/act", preA); code != 403 {
		t.Errorf("a with the token from before sign-in: %d, want 403", code)
	}
	if code, _ := do(a, "POST", "/.authgate/act", tokB); code != 403 {
		t.Errorf("a with b's token: %d, want 403", code)
	}
	if code, body := do(b, "POST", "/.authgate/act", tokB); code != 200 || body != "ok session-2" {
		t.Errorf("b with its token: %d %q", code, body)
	}
	// An attacker who can plant cookies (a sibling subdomain over http)
	// plants a token cookie of their choosing and echoes it: refused.
	u, _ := url.Parse(srv.URL + "/.authgate/")
	c := newBrowser()
	c.cl.Jar.SetCookies(u, []*http.Cookie{{Name: "authgate_csrf", Value: goodCookie, Path: "/.authgate/"}})
	if code, _ := do(c, "POST", "/.authgate/login", goodCookie); code != 403 {
		t.Errorf("planted cookie echoed as the token: %d, want 403", code)
	}
}
