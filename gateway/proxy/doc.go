// Package proxy owns routing and forwarding for authgate: it canonicalises
// request paths (CanonicalPath), picks the route for a host and path
// (Proxy.Match) and forwards an already-authorised request to the route's
// upstream through an httputil.ReverseProxy built with Rewrite
// (Proxy.Forward).
//
// It does not authenticate. The caller decides, using the matched Route's
// Policy and Allow lists, whether a request may pass, and hands Forward the
// Identity to assert upstream (or nil for bypass routes).
//
// On the way up Forward strips every client-supplied copy of the identity
// headers, of the forwarded headers it sets itself and of X-Original-URL
// and X-Rewrite-URL (each in any spelling: case, "_" for "-"), sets the
// route's identity headers, removes the gateway's own cookies, and
// rebuilds X-Forwarded-For/-Proto/-Host and X-Real-IP from the trusted
// middleware.Client. Upgrade requests ("Connection: Upgrade") for a
// protocol the route's UpgradeProtocols does not list (default: only
// websocket) get 400 and never reach the upstream. On the way down it
// rewrites Location and Refresh headers that point at the upstream's own
// origin to the public origin (like nginx "proxy_redirect default"),
// never into a URL a browser would read as another host, and drops any
// Set-Cookie a browser could store as one of the gateway's cookies (their
// names in any letter case, and nameless cookies).
//
// Upstream URLs with a path. A route with PathPrefix P and upstream
// http://u/B (B not "/") forwards like nginx "location P { proxy_pass
// http://u/B; }": the matched prefix is replaced by B, so /P/x goes to
// /B/x, /P to /B and /P/ to /B/. Redirects back from the upstream under B
// (absolute to the upstream origin, or path-absolute "/B/...") are mapped
// back to P. An upstream without a path (or with "/") receives the
// canonical path unchanged and only the origin of its redirects is
// rewritten.
//
// Upstream health. Every proxied request is recorded per route: the
// latency to the response headers, the status, and transport failures
// (the ErrorHandler path; a client that went away is not held against
// the upstream). Counts of requests and errors (transport errors and 5xx)
// over the last five minutes live in a ring of 10-second buckets, one
// atomic word each, so Forward takes no lock. StartProbes adds active
// checks: every interval a HEAD (GET if HEAD gets 405 or 501) of each
// route's upstream path through the route's own transport, without user
// identity, 5 s timeout; probes update the last observation but not the
// counts. Proxy.Health reports both, per route in route order, with short
// error texts safe to show to operators. Options.Now injects the clock.
package proxy
