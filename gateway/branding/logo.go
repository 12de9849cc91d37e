package branding

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"
)

// LogoPath is where the gateway serves the logo, to anyone (the sign-in
// pages show it before there is a session).
const LogoPath = "/.authgate/logo"

// LogoCSP is the Content-Security-Policy of the logo response. An SVG is
// a document that could carry scripts and load other resources; pages
// only show it through <img>, which runs neither, and this policy keeps
// it inert when opened on its own too. Sent for every image type.
const LogoCSP = "default-src 'none'; style-src 'unsafe-inline'"

// Cache-Control values: a URL naming the current version (URL) may be
// kept for good, any other must be revalidated (ETag).
const (
	cacheVersioned  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// Logo is one logo image, ready to serve.
type Logo struct {
	data        []byte
	contentType string
	etag        string
	version     string
}

// NewLogo takes the image and its content type (config.ReadLogo detects
// it from the content; it is never taken from the file name).
func NewLogo(data []byte, contentType string) *Logo {
	sum := sha256.Sum256(data)
	v := hex.EncodeToString(sum[:16])
	return &Logo{data: data, contentType: contentType, etag: `"` + v + `"`, version: v}
}

// URL is the path pages link the logo with: LogoPath with the content's
// version, so browsers may cache it for good and a new logo (after a
// reload) gets a new URL.
func (l *Logo) URL() string { return LogoPath + "?v=" + l.version }

// ETag is the logo's entity tag (quoted, from a hash of the content).
func (l *Logo) ETag() string { return l.etag }

// ServeHTTP answers GET and HEAD with the image: its content type,
// nosniff, LogoCSP, an ETag (If-None-Match gets 304) and caching for good
// when the request names the current version.
func (l *Logo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.Set("Content-Type", l.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", LogoCSP)
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("ETag", l.etag)
	if r.URL.Query().Get("v") == l.version {
		h.Set("Cache-Control", cacheVersioned)
	} else {
		h.Set("Cache-Control", cacheRevalidate)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(l.data))
}
