package middleware

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
)

// CSRF failure reasons, logged at warn level by CSRF.Middleware.
var (
	ErrCSRFMissingCookie = errors.New("csrf: neither a session nor a token cookie")
	ErrCSRFBadToken      = errors.New("csrf: token missing or not this session's")
	ErrCSRFCrossOrigin   = errors.New("csrf: cross-origin request")
)

// CSRFField is the form field that carries the token.
const CSRFField = "csrf_token"

// CSRFHeader is the header an unsafe request may carry the token in
// instead of the form field.
const CSRFHeader = "X-CSRF-Token"

const (
	csrfCookieBytes = 32
	csrfCookieLen   = 43 // base64.RawURLEncoding of 32 bytes
	csrfPlainPath   = "/.authgate/"
	// The token is an HMAC-SHA256 (32 bytes) over one of these labels
	// and the value it is bound to, so a session id and a token cookie
	// with the same text never give the same token.
	csrfBindSession    = "authgate csrf v2 session\x00"
	csrfBindPreSession = "authgate csrf v2 pre-session\x00"
)

// CSRFOptions configures NewCSRF.
type CSRFOptions struct {
	// CookieName is the token cookie's base name (default "authgate_csrf").
	// When Secure(r) is true the cookie is named "__Host-" + CookieName.
	CookieName string
	// Secure reports whether the request reached the gateway over https
	// (then the cookie is Secure and __Host- prefixed). Default: the
	// Client scheme (or r.TLS) is https.
	Secure func(r *http.Request) bool
	// Reject writes the response for a rejected request (default: a
	// plain-text 403). The reason is in the log.
	Reject func(w http.ResponseWriter, r *http.Request)
	// Key is the secret the tokens are derived from (HMAC-SHA256). Every
	// instance serving the same users needs the same key, or a form
	// rendered by one fails on another. Default: a random key, so tokens
	// hold only within this process.
	Key []byte
	// SessionCookie returns the name of the session cookie r would carry
	// (nil: there is none). A request carrying it gets tokens bound to
	// its value; see CSRF.
	SessionCookie func(r *http.Request) string
}

// CSRF protects the gateway's forms with a token bound to the session:
// every unsafe request (POST, PUT, PATCH, DELETE) must carry, in the form
// field or the X-CSRF-Token header, HMAC-SHA256(Key, the session cookie's
// value). A request without a session cookie (the login page) uses a
// random pre-session value from an HttpOnly, SameSite=Strict token cookie
// instead. A cookie and token an attacker made up, planted or got for
// their own session therefore never pass for the victim's session: the
// token cannot be computed without Key, and one minted for another
// session, or before sign-in, does not match. Signing in, and every
// session rotation, changes the token; pages rendered in the response
// that sets the new session cookie already carry the new one (CSRFToken
// reads the response's pending Set-Cookie).
//
// Before the token, the standard library's http.CrossOriginProtection
// rejects an unsafe request whose Sec-Fetch-Site says it came from another
// origin or, from a browser that does not send Sec-Fetch-Site, whose
// Origin host is not the gateway's public host (from Client, so it holds
// behind a proxy).
//
// Cookie scope: over http the token cookie is "<CookieName>" with
// Path=/.authgate/. Over https it is "__Host-<CookieName>", Secure, and —
// because browsers only accept __Host- cookies with Path=/ — Path=/, so
// the proxy must strip it from upstream requests (see CookieNames).
type CSRF struct {
	cookieName    string
	secure        func(r *http.Request) bool
	reject        func(w http.ResponseWriter, r *http.Request)
	key           []byte
	sessionCookie func(r *http.Request) string
	crossOrigin   *http.CrossOriginProtection
}

type csrfKey struct{}

// csrfState is what CSRFToken reads for one request.
type csrfState struct {
	c *CSRF
	// session is the session cookie's name for this request ("" if none)
	// and sessionID its value in the request ("" if absent).
	session, sessionID string
	// preSession is the token cookie's value: the one the request sent,
	// or the one this response sets.
	preSession string
	// header is the response's header, for a session cookie the handler
	// sets or clears.
	header http.Header
	err    error
}

// NewCSRF returns a CSRF protector; zero options take the defaults above.
func NewCSRF(opts CSRFOptions) *CSRF {
	c := &CSRF{
		cookieName:    opts.CookieName,
		secure:        opts.Secure,
		reject:        opts.Reject,
		key:           append([]byte(nil), opts.Key...),
		sessionCookie: opts.SessionCookie,
		crossOrigin:   http.NewCrossOriginProtection(),
	}
	if len(c.key) == 0 {
		c.key = make([]byte, 32)
		_, _ = rand.Read(c.key) // never fails (crypto/rand, Go ≥ 1.24)
	}
	if c.cookieName == "" {
		c.cookieName = "authgate_csrf"
	}
	if c.secure == nil {
		c.secure = func(r *http.Request) bool { return schemeOf(r) == "https" }
	}
	if c.reject == nil {
		c.reject = func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "403 forbidden", http.StatusForbidden)
		}
	}
	return c
}

// CookieNames returns both names the token cookie can have (plain and
// __Host-), so the proxy can strip them from upstream requests.
func (c *CSRF) CookieNames() []string {
	return []string{c.cookieName, "__Host-" + c.cookieName}
}

// Middleware issues the token cookie when the request has no valid one,
// makes the token available to CSRFToken, and rejects unsafe requests
// that fail the checks (the reason is logged and the access log's result
// set to "csrf_rejected").
func (c *CSRF) Middleware() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			secure := c.secure(r)
			name := c.cookieName
			if secure {
				name = "__Host-" + name
			}
			st := &csrfState{c: c, header: w.Header()}
			if c.sessionCookie != nil {
				st.session = c.sessionCookie(r)
				if ck, err := r.Cookie(st.session); err == nil {
					st.sessionID = ck.Value
				}
			}
			cookieToken := ""
			if ck, err := r.Cookie(name); err == nil && validCSRFCookie(ck.Value) {
				cookieToken = ck.Value
				st.preSession = cookieToken
			} else {
				st.preSession = newCSRFCookieValue()
				http.SetCookie(w, c.cookie(name, st.preSession, secure))
			}
			w.Header().Add("Vary", "Cookie")
			r = r.WithContext(context.WithValue(r.Context(), csrfKey{}, st))

			if isUnsafeMethod(r.Method) {
				if err := c.check(r, st.sessionID, cookieToken); err != nil {
					st.err = err
					LoggerFrom(r.Context()).Warn().Err(err).Msg("csrf check failed")
					SetResult(r.Context(), "csrf_rejected")
					c.reject(w, r)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (c *CSRF) cookie(name, token string, secure bool) *http.Cookie {
	ck := &http.Cookie{
		Name:     name,
		Value:    token,
		Path:     csrfPlainPath,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
	if secure {
		ck.Path = "/" // required by the __Host- prefix
		ck.Secure = true
	}
	return ck
}

// check runs the cross-origin check, then compares the sent token with
// the one bound to the request's session (sessionID) or, without one, to
// its token cookie.
func (c *CSRF) check(r *http.Request, sessionID, cookieToken string) error {
	public := r.WithContext(r.Context()) // a shallow copy with the public host
	if cl, ok := ClientFrom(r.Context()); ok {
		public.Host = cl.Host
	}
	if err := c.crossOrigin.Check(public); err != nil {
		return fmt.Errorf("%w: %w", ErrCSRFCrossOrigin, err)
	}
	var want []byte
	switch {
	case sessionID != "":
		want = c.mac(csrfBindSession, sessionID)
	case cookieToken != "":
		want = c.mac(csrfBindPreSession, cookieToken)
	default:
		return ErrCSRFMissingCookie
	}
	sent := r.Header.Get(CSRFHeader)
	if sent == "" {
		sent = r.PostFormValue(CSRFField)
	}
	got, err := base64.RawURLEncoding.DecodeString(sent)
	if err != nil || !hmac.Equal(got, want) {
		return ErrCSRFBadToken
	}
	return nil
}

// mac is HMAC-SHA256(key, label || value).
func (c *CSRF) mac(label, value string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(label))
	m.Write([]byte(value))
	return m.Sum(nil)
}

// token is the form token for the session this response leaves the
// browser with: a session cookie the handler set (or cleared) wins over
// the one the request carried.
func (st *csrfState) token() string {
	id := st.sessionID
	if st.session != "" {
		if v, ok := pendingCookie(st.header, st.session); ok {
			id = v
		}
	}
	if id != "" {
		return base64.RawURLEncoding.EncodeToString(st.c.mac(csrfBindSession, id))
	}
	return base64.RawURLEncoding.EncodeToString(st.c.mac(csrfBindPreSession, st.preSession))
}

// pendingCookie returns the value of the last Set-Cookie for name in h,
// "" when that one deletes the cookie; ok is false when h sets none.
func pendingCookie(h http.Header, name string) (value string, ok bool) {
	for _, line := range h.Values("Set-Cookie") {
		ck, err := http.ParseSetCookie(line)
		if err != nil || ck.Name != name {
			continue
		}
		value, ok = ck.Value, true
		if ck.MaxAge < 0 {
			value = ""
		}
	}
	return value, ok
}

// CSRFToken returns the token for r's forms (put it in a hidden field
// named CSRFField), or "" if CSRF.Middleware did not run. Call it after
// setting or clearing the session cookie: the token is bound to the
// session the response leaves the browser with.
func CSRFToken(r *http.Request) string {
	if st, ok := r.Context().Value(csrfKey{}).(*csrfState); ok {
		return st.token()
	}
	return ""
}

func isUnsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// newCSRFCookieValue is a random pre-session value for the token cookie.
func newCSRFCookieValue() string {
	b := make([]byte, csrfCookieBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

func validCSRFCookie(s string) bool {
	if len(s) != csrfCookieLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
