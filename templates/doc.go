// Package templates holds authgate's HTML pages (login, verify, enroll,
// logout, error) embedded in FS, and the helpers that parse them.
//
// Every page is rendered through the shared layout:
//
//	pages, err := templates.ParsePages()        // once, at start
//	err = pages["login"].ExecuteTemplate(&buf, "layout", templates.LoginPage{…})
//
// The pages need no JavaScript and load no external assets: all CSS is
// inline in layout.html, which fits the gateway's Content-Security-Policy
// (style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self').
//
// The package imports nothing of ours.
package templates
