package templates

import "html/template"

// Product is the value pages expect in Common.Product.
const Product = "authgate"

// Common holds the fields every page shows. Empty strings are hidden.
type Common struct {
	Title     string // page heading and <title>
	CSRFToken string // hidden csrf_token field of every POST form
	Error     string // shown in role="alert"; the same text for every login failure
	Notice    string // shown in role="status"
	Product   string // "authgate"
	// Brand is the header of the sign-in pages (title, host, logo); nil
	// shows Product instead.
	Brand *Brand
	// PasskeyScript loads PasskeyScriptPath, the one script of the
	// gateway's pages; the handler must send the page with a CSP that
	// allows it (middleware.ScriptCSP).
	PasskeyScript bool
}

// PasskeyScriptPath is where the gateway serves passkey.js.
const PasskeyScriptPath = "/.authgate/passkey.js"

// Brand is what the sign-in pages show above their heading: the title
// (ui.title, by default the Issuer), "Sign in to <Host>" and the logo.
// Empty strings are hidden.
type Brand struct {
	Title string
	// Host is the public host being signed into, as the gateway resolved
	// it for the request.
	Host string
	// LogoURL is the gateway's own path of the logo image, shown with
	// <img> only (an SVG logo is never inlined).
	LogoURL string
}

// LoginPage is the data for "login".
type LoginPage struct {
	Common
	Username string // prefill
	RD       string // where to go after sign-in (hidden field "rd")
	// Passwordless offers "Sign in with a passkey" (webauthn.passwordless).
	Passwordless bool
}

// VerifyPage is the data for "verify" (second factor).
type VerifyPage struct {
	Common
	User string
	RD   string
	// TOTP offers the code form (the account has an authenticator app).
	TOTP bool
	// Passkey offers "Use your security key or passkey".
	Passkey bool
	// StepUp: a signed-in session proving its second factor again.
	StepUp bool
}

// EnrollPage is the data for "enroll" (TOTP setup).
type EnrollPage struct {
	Common
	User   string
	Issuer string
	// QRDataURI is a "data:image/png;base64,…" URI. It must be a
	// template.URL: html/template replaces data: URIs given as plain
	// strings with "#ZgotmplZ". Only pass URIs the gateway built itself.
	QRDataURI template.URL
	// KeyGrouped is the base32 secret in groups of four ("ABCD EFGH …").
	KeyGrouped string
	// OTPAuthURL is the otpauth://totp/… URL; template.URL for the same
	// reason as QRDataURI.
	OTPAuthURL template.URL
	Digits     int
	Period     int // seconds
	RD         string
	// Passkey offers registering a passkey or security key instead.
	Passkey bool
}

// LogoutPage is the data for "logout" (confirmation).
type LogoutPage struct {
	Common
	User string
}

// ErrorPage is the data for "error".
type ErrorPage struct {
	Common
	Status    int
	Message   string
	RequestID string // shown as "Reference: …"
	BackURL   string // optional link back; unsafe schemes are neutralised
}

// Nav is the header of signed-in pages (template "nav" in _nav.html).
type Nav struct {
	User    string
	IsAdmin bool
	// Active names the current tab: account, settings, users, upstreams,
	// audit.
	Active string
}
