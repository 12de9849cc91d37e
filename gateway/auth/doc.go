// Package auth is the decision in front of every protected route: whether
// a request may pass, made from its session, its user and the route's
// policy. It renders no page besides the error page, through an
// interface (the sign-in pages that create sessions are gateway/signin,
// which depends on this package, never the other way round).
//
// One Gate answers three callers with one policy decision, authorize:
// ServeHTTP (the built-in proxy: forward, redirect a browser to the
// login, verify, enrol or password page, 401 for anything else),
// ForwardAuth (/.authgate/auth, for an existing nginx, Traefik or Caddy:
// only how the request is named and how the answer is written differ)
// and RequireUser (the account and admin pages: a complete session of
// an existing user, in the context as Current). SignedIn, the one session
// loader, is shared with the second-factor pages.
//
// Any error denies; a session short of what the route needs is
// challenged, never allowed. Reasons go to the log only.
package auth
