package server

import (
	"net/http"

	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
)

// securePages renders the gateway's pages with its security headers (CSP
// with frame-ancestors 'none', nosniff, Referrer-Policy, X-Frame-Options)
// also where the /.authgate/ middleware chain does not run: the error
// pages served in place of a proxied response (bad path, no route, not
// allowed, store or upstream down) and the recovery page after a panic.
// Proxied responses themselves keep the upstream's headers.
type securePages struct{ *web.Renderer }

// withSecurityHeaders sets the headers of SecurityHeaders and serves
// nothing.
var withSecurityHeaders = middleware.SecurityHeaders()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

func (p securePages) Render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	// A page that loads passkey.js chose its CSP already
	// (middleware.AllowOwnScript); keep that choice.
	script := w.Header().Get("Content-Security-Policy") == middleware.ScriptCSP
	withSecurityHeaders.ServeHTTP(w, r)
	if script {
		middleware.AllowOwnScript(w)
	}
	p.Renderer.Render(w, r, status, name, data)
}

func (p securePages) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	withSecurityHeaders.ServeHTTP(w, r)
	p.Renderer.RenderError(w, r, err)
}
