package middleware

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// CSRF failure reasons, logged at warn level by CSRF.Middleware and
// available to Reject through CSRFFailure.
var (
	ErrCSRFMissingCookie = errors.New("csrf: no token cookie")
	ErrCSRFBadToken      = errors.New("csrf: token missing or mismatched")
	ErrCSRFBadOrigin     = errors.New("csrf: Origin is not the gateway's origin")
	ErrCSRFCrossSite     = errors.New("csrf: Sec-Fetch-Site is not same-origin")
)

// CSRFHeader is the header an unsafe request may carry the token in
// instead of the form field.
const CSRFHeader = "X-CSRF-Token"

const (
	csrfTokenBytes = 32
	csrfTokenLen   = 43 // base64.RawURLEncoding of 32 bytes
	csrfPlainPath  = "/.authgate/"
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
	// FieldName is the form field carrying the token (default
	// "csrf_token").
	FieldName string
	// Reject writes the response for a rejected request (default: a
	// plain-text 403). CSRFFailure(r) tells why.
	Reject func(w http.ResponseWriter, r *http.Request)
}

// CSRF protects the gateway's forms with a double-submit token: a random
// token in an HttpOnly, SameSite=Strict cookie that every unsafe request
// (POST, PUT, PATCH, DELETE) must echo in the form field or X-CSRF-Token
// header. On top of that, an unsafe request is rejected when its Origin
// header (if present) is not the gateway's public origin (scheme and host
// from Client) or when Sec-Fetch-Site (if present) says the request came
// from another origin. The token is not bound to the session.
//
// Cookie scope: over http the cookie is "<CookieName>" with
// Path=/.authgate/. Over https it is "__Host-<CookieName>", Secure, and —
// because browsers only accept __Host- cookies with Path=/ — Path=/, so
// the proxy must strip it from upstream requests (see CookieNames).
type CSRF struct {
	cookieName string
	secure     func(r *http.Request) bool
	field      string
	reject     func(w http.ResponseWriter, r *http.Request)
}

type csrfKey struct{}

type csrfState struct {
	token string
	err   error
}

// NewCSRF returns a CSRF protector; zero options take the defaults above.
func NewCSRF(opts CSRFOptions) *CSRF {
	c := &CSRF{
		cookieName: opts.CookieName,
		secure:     opts.Secure,
		field:      opts.FieldName,
		reject:     opts.Reject,
	}
	if c.cookieName == "" {
		c.cookieName = "authgate_csrf"
	}
	if c.secure == nil {
		c.secure = func(r *http.Request) bool { return schemeOf(r) == "https" }
	}
	if c.field == "" {
		c.field = "csrf_token"
	}
	if c.reject == nil {
		c.reject = func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "403 forbidden", http.StatusForbidden)
		}
	}
	return c
}

// FieldName returns the form field name the token is expected in.
func (c *CSRF) FieldName() string { return c.field }

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
			st := &csrfState{}
			cookieToken := ""
			if ck, err := r.Cookie(name); err == nil && validCSRFToken(ck.Value) {
				cookieToken = ck.Value
				st.token = cookieToken
			} else {
				st.token = newCSRFToken()
				http.SetCookie(w, c.cookie(name, st.token, secure))
			}
			w.Header().Add("Vary", "Cookie")
			r = r.WithContext(context.WithValue(r.Context(), csrfKey{}, st))

			if isUnsafeMethod(r.Method) {
				if err := c.check(r, cookieToken); err != nil {
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

func (c *CSRF) check(r *http.Request, cookieToken string) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return ErrCSRFCrossSite
	}
	if origins := r.Header.Values("Origin"); len(origins) > 0 {
		if len(origins) != 1 || !sameOrigin(origins[0], r) {
			return ErrCSRFBadOrigin
		}
	}
	if cookieToken == "" {
		return ErrCSRFMissingCookie
	}
	sent := r.Header.Get(CSRFHeader)
	if sent == "" {
		sent = r.PostFormValue(c.field)
	}
	if len(sent) != len(cookieToken) || subtle.ConstantTimeCompare([]byte(sent), []byte(cookieToken)) != 1 {
		return ErrCSRFBadToken
	}
	return nil
}

// sameOrigin reports whether the Origin header value is the request's
// public origin (scheme and host from Client, default ports elided).
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return false
	}
	host, err := NormalizeHost(u.Host, scheme)
	if err != nil {
		return false
	}
	wantScheme, wantHost := schemeOf(r), ""
	if cl, ok := ClientFrom(r.Context()); ok {
		wantHost = cl.Host
	} else if h, err := NormalizeHost(r.Host, wantScheme); err == nil {
		wantHost = h
	}
	return wantHost != "" && scheme == wantScheme && host == wantHost
}

// CSRFToken returns the token for r's forms (put it in a hidden field
// named FieldName), or "" if CSRF.Middleware did not run.
func CSRFToken(r *http.Request) string {
	if st, ok := r.Context().Value(csrfKey{}).(*csrfState); ok {
		return st.token
	}
	return ""
}

// CSRFFailure returns why CSRF.Middleware rejected r (one of the ErrCSRF
// errors), or nil. Reject callbacks may use it.
func CSRFFailure(r *http.Request) error {
	if st, ok := r.Context().Value(csrfKey{}).(*csrfState); ok {
		return st.err
	}
	return nil
}

func isUnsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

func newCSRFToken() string {
	b := make([]byte, csrfTokenBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

func validCSRFToken(s string) bool {
	if len(s) != csrfTokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}
