// Package branding serves the logo of the sign-in pages (ui.logo_file)
// at LogoPath: no session needed, cacheable, and an SVG logo under a
// policy that lets it run nothing.
package branding
