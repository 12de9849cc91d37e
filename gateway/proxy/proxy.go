package proxy

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/middleware"
)

// ErrUnknownRoute is passed to the ErrorHandler when Forward is given a
// route this Proxy was not built with.
var ErrUnknownRoute = errors.New("proxy: unknown route")

// Options configures New.
type Options struct {
	Routes []Route
	// StripHeaders names extra identity headers to remove from every
	// request, on top of the built-in list and every route's identity
	// headers.
	StripHeaders []string
	// StripCookies names the gateway's own cookies. They are removed from
	// the Cookie header sent upstream (other cookies are kept), together
	// with their "__Host-" and "__Secure-" prefixed forms. Upstream
	// Set-Cookie headers for any of these names (in any letter case) and
	// for nameless cookies are dropped.
	StripCookies []string
	// ErrorHandler renders the gateway's 502 page when an upstream cannot
	// be reached. Default: plain-text 502 "Bad Gateway". It must not show
	// err to the client.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Logger is used when the request context carries no zerolog logger.
	Logger zerolog.Logger
	// Now is the clock for health records (latencies, result times and
	// the 5-minute counts); default time.Now.
	Now func() time.Time
	// Transport tuning; zero values take the defaults shown.
	DialTimeout           time.Duration // 10s
	TLSHandshakeTimeout   time.Duration // 10s
	ResponseHeaderTimeout time.Duration // 2m; negative: none
	IdleConnTimeout       time.Duration // 90s
	// MaxIdleConnsPerHost is how many idle keep-alive connections to an
	// upstream are kept; below the number of concurrent clients, busy
	// periods open and close upstream connections for every burst.
	MaxIdleConnsPerHost int // 1024
	// Observer receives every forwarded request's outcome (metrics);
	// nil: none.
	Observer Observer
}

// defaultMaxIdlePerHost keeps a connection for every client of a busy
// panel (idle ones still close after IdleConnTimeout): an upstream
// connection costs ~25 KiB, a new one per request costs far more CPU.
const defaultMaxIdlePerHost = 1024

// Proxy routes and forwards requests. It is safe for concurrent use.
type Proxy struct {
	routes       []routeProxy
	byName       map[string]int
	strip        map[string]struct{} // normalised names of request headers stripClientHeaders removes
	stripCookies map[string]struct{}
	errorHandler func(http.ResponseWriter, *http.Request, error)
	logger       zerolog.Logger
	now          func() time.Time
	start        time.Time      // slot 0 of the health buckets
	probes       sync.WaitGroup // StartProbes loops
	obs          Observer       // nil: none
}

type routeProxy struct {
	route     Route
	rp        *httputil.ReverseProxy
	transport *http.Transport
	stats     *routeStats
}

// builtinIdentityHeaders are always stripped from client requests: the
// names gateways and apps commonly trust for the signed-in user.
var builtinIdentityHeaders = []string{
	"Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name",
	"X-Remote-User", "X-Remote-Group", "X-Remote-Groups", "X-Remote-Email",
	"X-Forwarded-User", "X-Forwarded-Groups", "X-Forwarded-Email",
	"X-Forwarded-Preferred-Username",
	"X-Auth-Request-User", "X-Auth-Request-Groups", "X-Auth-Request-Email",
	"X-Auth-Request-Preferred-Username",
	"X-Webauth-User", "X-Authenticated-User",
}

// gatewayOwnedHeaders are request headers only the gateway may send
// upstream, stripped from client requests in every spelling like the
// identity headers. ReverseProxy removes the canonical X-Forwarded-For,
// -Host, -Proto and Forwarded itself, but not "X-Forwarded_For" or
// "x-real_ip": those reached the panel next to the gateway's own values,
// and CGI-style servers (PHP, Perl, Python under CGI/FastCGI) read
// either spelling as HTTP_X_FORWARDED_FOR. X-Original-URL and
// X-Rewrite-URL make some servers and frameworks (IIS URL Rewrite,
// Symfony, Zend, Laravel) serve another path than the request line's,
// one the gateway never matched or authorised; they are dropped on
// every route, bypass routes included.
var gatewayOwnedHeaders = []string{
	"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip",
	"X-Original-Url", "X-Rewrite-Url",
}

// New validates the routes and builds one ReverseProxy and Transport per
// route. All route problems are returned at once.
func New(o Options) (*Proxy, error) {
	if len(o.Routes) == 0 {
		return nil, fmt.Errorf("%w: no routes", ErrInvalidRoute)
	}
	p := &Proxy{
		byName:       make(map[string]int, len(o.Routes)),
		strip:        make(map[string]struct{}),
		stripCookies: make(map[string]struct{}),
		errorHandler: o.ErrorHandler,
		logger:       o.Logger,
		now:          o.Now,
		obs:          o.Observer,
	}
	if p.errorHandler == nil {
		p.errorHandler = defaultErrorHandler
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.start = p.now()
	for _, h := range slices.Concat(builtinIdentityHeaders, gatewayOwnedHeaders) {
		p.strip[normalizeHeaderName(h)] = struct{}{}
	}
	for _, h := range o.StripHeaders {
		if h = strings.TrimSpace(h); h != "" {
			p.strip[normalizeHeaderName(h)] = struct{}{}
		}
	}
	for _, c := range o.StripCookies {
		if c = strings.TrimSpace(c); c != "" {
			p.stripCookies[c] = struct{}{}
			p.stripCookies["__Host-"+c] = struct{}{}
			p.stripCookies["__Secure-"+c] = struct{}{}
		}
	}

	var errs []error
	seen := make(map[[2]string]string)
	routes := make([]Route, 0, len(o.Routes))
	for i, r := range o.Routes {
		nr, err := normalizeRoute(r, i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := p.byName[nr.Name]; dup {
			errs = append(errs, fmt.Errorf("%w %q: duplicate name", ErrInvalidRoute, nr.Name))
			continue
		}
		key := [2]string{nr.Host, nr.PathPrefix}
		if other, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("%w %q: same host and path_prefix as %q", ErrInvalidRoute, nr.Name, other))
			continue
		}
		seen[key] = nr.Name
		p.byName[nr.Name] = len(routes)
		routes = append(routes, nr)
		p.strip[normalizeHeaderName(nr.UserHeader)] = struct{}{}
		p.strip[normalizeHeaderName(nr.GroupsHeader)] = struct{}{}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	tc := transportConfig{
		dial:           orDefault(o.DialTimeout, 10*time.Second),
		tlsHandshake:   orDefault(o.TLSHandshakeTimeout, 10*time.Second),
		responseHeader: orDefault(o.ResponseHeaderTimeout, 2*time.Minute),
		idle:           orDefault(o.IdleConnTimeout, 90*time.Second),
		maxIdlePerHost: o.MaxIdleConnsPerHost,
	}
	if tc.maxIdlePerHost <= 0 {
		tc.maxIdlePerHost = defaultMaxIdlePerHost
	}
	pool := newBufferPool()
	p.routes = make([]routeProxy, len(routes))
	for i, r := range routes {
		t, err := newTransport(r, tc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w %q: %w", ErrInvalidRoute, r.Name, err))
			continue
		}
		p.routes[i] = routeProxy{route: r, transport: t, stats: new(routeStats)}
		p.routes[i].rp = p.newReverseProxy(&p.routes[i], t, pool)
	}
	if len(errs) > 0 {
		p.Close()
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d < 0:
		return 0
	case d == 0:
		return def
	}
	return d
}

// Routes returns a copy of the normalised routes, in configuration order.
func (p *Proxy) Routes() []Route {
	out := make([]Route, len(p.routes))
	for i := range p.routes {
		out[i] = p.routes[i].route
	}
	return out
}

// Close closes idle upstream connections.
func (p *Proxy) Close() {
	for _, r := range p.routes {
		if r.transport != nil {
			r.transport.CloseIdleConnections()
		}
	}
}

// forwardKey carries per-request state from Forward to the ReverseProxy
// callbacks.
type forwardKey struct{}

type forwardState struct {
	in        *http.Request
	path      string // upstream path
	client    middleware.Client
	id        *Identity
	sentHost  string // Host header sent upstream
	routeName string
	start     time.Time       // when Forward handed the request to the ReverseProxy
	recorded  bool            // the outcome went into the route's health record
	out       *observedWriter // the client's writer when observed, else nil
}

// Forward sends r to rt's upstream asserting id (nil: no identity headers,
// e.g. bypass routes) and copies the response to w. rt must come from
// Match (or Routes) of this Proxy and r's path must lie under its
// PathPrefix, else ErrUnknownRoute goes to the ErrorHandler. The caller has already authorised the
// request. r's path is canonicalised again; a bad path gets 400. A
// request for a mapped route's prefix without its trailing slash is
// answered 308 to the prefix with it (slashRedirect), not forwarded.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, rt *Route, id *Identity) {
	if rt == nil {
		p.fail(w, r, "", fmt.Errorf("%w: nil route", ErrUnknownRoute))
		return
	}
	idx, ok := p.byName[rt.Name]
	if !ok {
		p.fail(w, r, rt.Name, fmt.Errorf("%w %q", ErrUnknownRoute, rt.Name))
		return
	}
	rp := &p.routes[idx]
	canon, err := CanonicalPath(r.URL)
	if err != nil {
		p.log(r.Context()).Info().Str("route", rp.route.Name).Err(err).Msg("proxy: rejected request path")
		http.Error(w, http.StatusText(http.StatusBadRequest), http.StatusBadRequest)
		return
	}
	if !hasSegmentPrefix(matchPath(canon), rp.route.PathPrefix) {
		p.fail(w, r, rp.route.Name, fmt.Errorf("%w: path outside the route's path_prefix", ErrUnknownRoute))
		return
	}
	if loc, ok := slashRedirect(&rp.route, canon); ok {
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		middleware.SetResult(r.Context(), "slash_redirect")
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusPermanentRedirect)
		return
	}
	if offer := refusedUpgrade(r.Header, rp.route.UpgradeProtocols); offer != "" {
		// Refused with 400 rather than forwarded without its Upgrade and
		// Connection tokens. Either way no tunnel opens (ReverseProxy also
		// refuses a 101 for an upgrade it did not send), but 400 fails
		// closed: the upstream never sees the request, so nothing depends
		// on how it treats what is left of a protocol switch (a stray
		// HTTP2-Settings header, a body meant for the new protocol), and
		// the client learns at once that the switch was refused instead
		// of getting an ordinary answer it did not ask for. Browsers only
		// ever upgrade to WebSocket, which is allowed by default.
		p.log(r.Context()).Info().Str("route", rp.route.Name).Str("upgrade", truncate(offer, 100)).
			Strs("upgrade_protocols", rp.route.UpgradeProtocols).
			Msg("proxy: refused upgrade to a protocol the route's upgrade_protocols does not list")
		http.Error(w, http.StatusText(http.StatusBadRequest), http.StatusBadRequest)
		return
	}
	st := &forwardState{
		in:        r,
		path:      upstreamPath(&rp.route, canon),
		client:    clientOf(r),
		id:        id,
		routeName: rp.route.Name,
		start:     p.now(),
	}
	if p.obs == nil {
		rp.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardKey{}, st)))
		return
	}
	// Latency is real elapsed time, whatever clock the health records use.
	st.out = &observedWriter{ResponseWriter: w, now: time.Now}
	began := time.Now()
	rp.rp.ServeHTTP(st.out, r.WithContext(context.WithValue(r.Context(), forwardKey{}, st)))
	var took time.Duration
	if st.out.status != 0 {
		took = st.out.at.Sub(began)
	}
	p.obs.ProxyResponse(rp.route.Name, st.out.status, took)
}

func (p *Proxy) newReverseProxy(rp *routeProxy, t http.RoundTripper, pool httputil.BufferPool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			p.rewrite(pr, &rp.route)
		},
		Transport:  t,
		BufferPool: pool,
		ErrorLog:   log.New(logWriter{l: p.logger, route: rp.route.Name}, "", 0),
		ModifyResponse: func(res *http.Response) error {
			p.observeUpgrade(res)
			p.noteRefusedUpgrade(res, &rp.route)
			p.recordResponse(rp, res)
			return p.modifyResponse(res, &rp.route)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			in := r
			if st, ok := r.Context().Value(forwardKey{}).(*forwardState); ok {
				in = st.in
				if p.obs != nil && !st.recorded && st.in.Context().Err() == nil {
					p.obs.UpstreamError(rp.route.Name)
				}
				p.recordFailure(rp, st, err)
			}
			p.fail(w, in, rp.route.Name, err)
		},
	}
}

// fail logs err with the route name and renders the error page. A client
// that has gone away gets nothing.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, route string, err error) {
	l := p.log(r.Context())
	if r.Context().Err() != nil {
		l.Debug().Str("route", route).Err(err).Msg("proxy: client went away")
		return
	}
	l.Error().Str("route", route).Err(err).Msg("proxy: upstream request failed")
	p.errorHandler(w, r, err)
}

func (p *Proxy) log(ctx context.Context) *zerolog.Logger {
	if l := zerolog.Ctx(ctx); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &p.logger
}

func defaultErrorHandler(w http.ResponseWriter, _ *http.Request, _ error) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	http.Error(w, http.StatusText(http.StatusBadGateway), http.StatusBadGateway)
}

// rewrite builds the outbound request. ReverseProxy has already removed
// hop-by-hop headers (keeping Upgrade/Connection for upgrades), Forwarded
// and X-Forwarded-*.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest, rt *Route) {
	st, _ := pr.In.Context().Value(forwardKey{}).(*forwardState)
	if st == nil {
		// Unreachable (only Forward serves through rp), but never forward
		// an uncanonicalised path or unverified identity.
		st = &forwardState{in: pr.In, path: "/", client: clientOf(pr.In), routeName: rt.Name}
	}
	out := pr.Out

	out.URL.Scheme = rt.Upstream.Scheme
	out.URL.Host = rt.Upstream.Host
	out.URL.Path = st.path
	out.URL.RawPath = ""
	// RawQuery is forwarded as received (ReverseProxy only drops
	// unparsable parameters).
	if rt.PreserveHost {
		out.Host = pr.In.Host
	} else {
		out.Host = ""
	}
	st.sentHost = out.Host
	if st.sentHost == "" {
		st.sentHost = rt.Upstream.Host
	}

	p.stripClientHeaders(out.Header)
	if st.id != nil {
		out.Header.Set(rt.UserHeader, st.id.User)
		if len(st.id.Groups) > 0 {
			out.Header.Set(rt.GroupsHeader, strings.Join(st.id.Groups, ","))
		}
	}
	p.filterCookies(out.Header)
	setForwarded(out.Header, st.client)
	rewriteOrigin(out, pr.In, rt, st.client)
}

// setForwarded sets X-Forwarded-For (the validated incoming chain only
// when the peer is a trusted proxy, then the peer), X-Forwarded-Proto,
// X-Forwarded-Host and X-Real-IP from the trusted client info. The
// client's own copies, in any spelling, are already gone
// (stripClientHeaders).
func setForwarded(h http.Header, c middleware.Client) {
	peer := ""
	if c.Peer.IsValid() {
		peer = c.Peer.String()
	}
	if c.ViaTrustedProxy && len(c.ForwardedFor) > 0 {
		var b strings.Builder
		for _, a := range c.ForwardedFor {
			if a.IsValid() {
				if b.Len() > 0 {
					b.WriteString(", ")
				}
				b.WriteString(a.String())
			}
		}
		if peer != "" {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(peer)
		}
		if b.Len() > 0 {
			h.Set("X-Forwarded-For", b.String())
		}
	} else if peer != "" {
		h.Set("X-Forwarded-For", peer)
	}
	if c.IP.IsValid() {
		ip := peer
		if c.IP != c.Peer {
			ip = c.IP.String()
		}
		h.Set("X-Real-Ip", ip)
	}
	if c.Scheme != "" {
		h.Set("X-Forwarded-Proto", c.Scheme)
	}
	if c.Host != "" {
		h.Set("X-Forwarded-Host", c.Host)
	}
}

// clientOf returns the middleware's Client, or one derived only from the
// connection when the middleware did not run.
func clientOf(r *http.Request) middleware.Client {
	if c, ok := middleware.ClientFrom(r.Context()); ok {
		if c.Scheme == "" {
			c.Scheme = schemeOf(r)
		}
		if c.Host == "" {
			c.Host = publicHost(r.Host, c.Scheme)
		}
		return c
	}
	c := middleware.Client{Scheme: schemeOf(r)}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		c.Peer = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		c.Peer = a.Unmap()
	}
	c.IP = c.Peer
	c.Host = publicHost(r.Host, c.Scheme)
	return c
}

func schemeOf(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// publicHost lower-cases host and drops the scheme's default port.
func publicHost(host, scheme string) string {
	host = strings.ToLower(host)
	return stripDefaultPort(host, scheme)
}

func stripDefaultPort(host, scheme string) string {
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	}
	return host
}

// logWriter routes ReverseProxy's own log lines (body copy errors and the
// like) to zerolog at warn level.
type logWriter struct {
	l     zerolog.Logger
	route string
}

func (w logWriter) Write(b []byte) (int, error) {
	w.l.Warn().Str("route", w.route).Msg(strings.TrimSpace(string(b)))
	return len(b), nil
}
