package middleware

import "net/http"

// ContentSecurityPolicy is the CSP SecurityHeaders sends: no scripts at
// all, inline styles, images from the gateway or data: URIs (the TOTP QR
// code), forms posting only to the gateway, never framed.
const ContentSecurityPolicy = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ScriptCSP is ContentSecurityPolicy for a page that loads the
// gateway's one script (/.authgate/passkey.js): scripts and fetches from
// the gateway's own origin only, still nothing inline.
const ScriptCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// AllowOwnScript switches a gateway page's CSP (set by SecurityHeaders)
// to ScriptCSP. Call it before writing the header.
func AllowOwnScript(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", ScriptCSP)
}

// HSTS is the Strict-Transport-Security value sent over https.
const HSTS = "max-age=31536000"

// SecurityHeaders sets the headers for the gateway's own pages (not for
// proxied responses): the CSP above, X-Frame-Options DENY,
// X-Content-Type-Options nosniff, Referrer-Policy same-origin (no-referrer would make
// browsers send "Origin: null" on our own form posts, which the CSRF
// Origin check must refuse),
// Cache-Control no-store, and Strict-Transport-Security when the client's
// scheme (from Client, else r.TLS) is https.
//
// Note form-action 'self': browsers apply it to redirects after a form
// POST too, so a POST handler may only redirect to the gateway's own
// origin.
func SecurityHeaders() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", ContentSecurityPolicy)
			h.Set("X-Frame-Options", "DENY")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "same-origin")
			h.Set("Cache-Control", "no-store")
			if schemeOf(r) == "https" {
				h.Set("Strict-Transport-Security", HSTS)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// schemeOf returns the client's scheme: from Client if RealClient ran,
// else from the connection.
func schemeOf(r *http.Request) string {
	if c, ok := ClientFrom(r.Context()); ok && c.Scheme != "" {
		return c.Scheme
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
