// Package auth is the challenge in front of every protected route: the
// gate that decides whether a proxied request passes, and the login,
// second-factor, enrolment and logout pages under /.authgate/.
//
// Gate (the built-in proxy) and ForwardAuth (/.authgate/auth, for an
// existing nginx, Traefik or Caddy) share one policy decision, authorize:
// only how the request is named and how the answer is written differ.
//
// Every failure is answered with one public message per step ("The
// username or password is incorrect.", "The security code is invalid.");
// the reason goes to the log only.
package auth
