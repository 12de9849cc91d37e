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
// websocket) get 400 and never reach the upstream. Unless the route
// preserves the Host, an Origin equal to the request's public origin is
// sent as the upstream's origin on upgrades and on methods other than
// GET, HEAD, OPTIONS and TRACE, so panels that compare Origin with Host
// accept same-origin requests; any other Origin passes unchanged
// (origin.go). An upgrade the upstream answers with another status than
// 101 is logged as a refusal. On the way down it
// rewrites Location and Refresh headers that point at the upstream's own
// origin to the public origin (like nginx "proxy_redirect default"),
// never into a URL a browser would read as another host, and drops any
// Set-Cookie a browser could store as one of the gateway's cookies (their
// names in any letter case, and nameless cookies).
//
// Upstream URLs with a path. An upstream URL with a path, even just "/",
// replaces the matched PathPrefix, like nginx "location P { proxy_pass
// http://u/B; }", on the canonical path (the one Match used; nothing is
// decoded again): with P "/mnt" and upstream http://u/ the path /mnt/x
// goes to /x, /mnt/ to / and /mnt to /; with P "/" and http://u/base,
// /x goes to /base/x; with P "/app" and http://u/base, /app/x goes to
// /base/x and /app to /base. A trailing slash on P or B makes no
// difference (both are compared on whole segments), and where nginx
// would send "//x" (location /netdata without slash, proxy_pass
// http://u/) the upstream gets "/x". The canonical path has no dot
// segments, so the mapped path never leaves B. An upstream without a
// path (http://u) receives the canonical path unchanged.
//
// When the path is mapped, the way back is mapped too: Location and
// Refresh values on the upstream's origin, and path-absolute ones
// ("/B/..."), under B are mapped back under P (other path-absolute
// values pass unchanged); the Path of every Set-Cookie is mapped the
// same way, where B itself (and "/" for B "/") becomes P, so a panel's
// "Path=/" under /netdata becomes "Path=/netdata", sent by browsers for
// /netdata and /netdata/..., the requests that reach the panel's "/".
// A Path outside B becomes P too, so browsers do not send a panel's
// cookie to routes outside P; a cookie without Path gets the mapped form
// of the default path the panel meant. "__Host-" cookies keep their Path=/,
// which browsers require.
//
// Upstream health. Every proxied request is recorded per route: the
// latency to the response headers and the status, or the transport
// failure (the ErrorHandler path; a client that went away is counted as
// such, not held against the upstream). Requests of the last five
// minutes are counted by status class (1xx to 5xx) and transport errors
// in a ring of 10-second buckets behind one mutex per route.
// StartProbes adds active checks: every interval a GET of each route's
// upstream path, on a keep-alive-less clone of the route's transport
// (see StartProbes for why), without user identity, 5 s timeout; probes
// have their own last result and are not counted. Proxy.Health reports
// these measurements, not a verdict, per route in route order, with
// short error texts safe to show to operators. Options.Now injects the
// clock.
package proxy
