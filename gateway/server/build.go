package server

import (
	"cmp"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/account"
	"github.com/authgate/authgate/gateway/admin"
	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/branding"
	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/drift"
	"github.com/authgate/authgate/gateway/factor"
	"github.com/authgate/authgate/gateway/metrics"
	"github.com/authgate/authgate/gateway/passkey"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/regulation"
	"github.com/authgate/authgate/gateway/secretbox"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/signin"
	"github.com/authgate/authgate/gateway/totp"
	"github.com/authgate/authgate/gateway/users"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// core is what build makes once per process: the parts that do not
// depend on the keys a reload may change (routes, trusted_proxies,
// proxy.*, ui.*), and that every routing assembled later shares.
type core struct {
	box       *secretbox.Box
	renderer  *web.Renderer
	sessions  *session.Manager
	hasher    *password.Hasher
	hashSlots *password.Limiter
	settings  *settings.Source
	csrf      *middleware.CSRF
	recorder  *audit.Recorder
	regulator *regulation.Regulator
	totp      *factor.TOTP
	recovery  *factor.Recovery
	drift     *drift.Service
	account   *account.Handler
	// passkeys runs the passkey ceremonies; nil when passkeys are
	// unavailable (passkeysWhy says why).
	passkeys    *passkey.Service
	passkeysWhy string
}

// build makes the core, the first routing from s.cfg and the handler
// chain every request enters by.
func (s *Server) build(ctx context.Context) error {
	c, err := s.buildCore(ctx)
	if err != nil {
		return err
	}
	// Everything built from the keys Reload may change is assembled per
	// config, so a reload swaps it whole while sessions and the store
	// stay.
	s.assemble = func(cfg *config.Config, loadedAt time.Time) (*routing, error) {
		return s.assembleRouting(c, cfg, loadedAt)
	}
	live, err := s.assemble(s.cfg, s.loadedAt)
	if err != nil {
		return err
	}
	s.live.Store(live)

	recoverer := middleware.Recover(func(w http.ResponseWriter, r *http.Request) {
		securePages{c.renderer}.RenderError(w, r, errors.New("panic"))
	})
	s.handler = middleware.RequestID()(middleware.Logger(s.log)(recoverer(http.HandlerFunc(s.serveLive))))
	return nil
}

// buildCore opens the secret key and builds the parts shared by every
// routing: sessions, password hashing and its limits, the second
// factors, settings, CSRF, audit, brute-force regulation, drift and the
// account pages; it also makes the user-management service (s.admin).
func (s *Server) buildCore(ctx context.Context) (*core, error) {
	cfg := s.cfg
	key, err := LoadKey(cfg, s.log)
	if err != nil {
		return nil, err
	}
	c := &core{}
	if c.box, err = secretbox.New(key); err != nil {
		return nil, err
	}
	if err := checkKey(ctx, s.store, c.box); err != nil {
		return nil, err
	}
	pages, err := templates.ParsePages()
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if c.renderer, err = web.NewRenderer(pages); err != nil {
		return nil, err
	}
	c.sessions = session.New(s.store, session.Options{
		CookieName:  cfg.Session.CookieName,
		Domain:      cfg.Session.Domain,
		IdleTimeout: cfg.Session.IdleTimeout,
		MaxLifetime: cfg.Session.MaxLifetime,
	}, s.now, nil)
	c.hasher = password.NewHasher(password.Params{
		MemoryKiB:   cfg.Password.Argon2.MemoryKiB,
		Iterations:  cfg.Password.Argon2.Iterations,
		Parallelism: cfg.Password.Argon2.Parallelism,
	}, rand.Reader)
	// argon2id runs are bounded to password.max_concurrent and their
	// share of the CPU.
	c.hashSlots = password.NewLimiter(cfg.Password.MaxConcurrent, -1, 0)
	c.hashSlots.CollectAfterHash()
	c.hashSlots.SetShare(cfg.Password.CPUShare)
	if c.settings, err = s.openSettings(ctx); err != nil {
		return nil, err
	}
	if c.csrf, err = s.newCSRF(key, c.sessions, c.renderer); err != nil {
		return nil, err
	}
	c.recorder = audit.New(s.store, s.log, s.now)
	// Brute-force protection: attempts counted per user, address and
	// sign-in in the shared store.
	c.regulator = regulation.New(s.store, c.recorder, regulation.Options{
		MaxFailures: cfg.Regulation.MaxFailures, Window: cfg.Regulation.Window,
		Ban: cfg.Regulation.Ban, MaxBan: cfg.Regulation.MaxBan,
		SessionWindow: c.sessions.PendingLifetime(), Observer: s.metrics,
	}, s.now)
	if err := s.buildFactors(c, key); err != nil {
		return nil, err
	}
	s.metrics.ReadAtScrape(metrics.Sources{Sessions: s.store, Drift: c.drift, Clock: s.clock, Certificates: s.certSource()})
	s.startStreams()
	c.account = account.New(account.Deps{
		Users: s.store, Sessions: s.store, Regulator: c.regulator, Settings: c.settings,
		SessionManager: c.sessions, TOTP: c.totp, Recovery: c.recovery, Box: c.box,
		Passwords: password.NewLimited(c.hasher, c.hashSlots), Audit: c.recorder, Pages: c.renderer, CSRFToken: middleware.CSRFToken,
		Logger: s.log, Now: s.now, Resync: c.drift, Passkeys: c.accountPasskeys(),
	}, account.Options{DefaultIssuer: DefaultIssuer(cfg), PasskeysUnavailable: c.passkeysWhy, RedirectHosts: s.redirectHosts})
	s.admin = users.NewService(s.store, c.settings, c.recorder, DefaultIssuer(cfg), s.now)
	return c, nil
}

// buildFactors makes the TOTP checker (failed codes searched
// ±two_factor.drift_scan for clock drift evidence, never accepted, kept
// by s.driftRec), the drift service and the recovery codes.
func (s *Server) buildFactors(c *core, key secretbox.Key) error {
	cfg := s.cfg
	topts := totp.Options{
		Period:    uint(cfg.TwoFactor.Period),
		Digits:    cfg.TwoFactor.Digits,
		Algorithm: cfg.TwoFactor.Algorithm,
		Skew:      uint(cfg.TwoFactor.Skew),
	}
	if err := topts.Validate(); err != nil {
		return fmt.Errorf("two_factor: %w", err)
	}
	driftSteps := int(cfg.TwoFactor.DriftScan / (time.Duration(topts.Period) * time.Second))
	s.driftRec = drift.NewRecorder(s.store, s.log, drift.RecorderOptions{Period: topts.Period})
	c.totp = factor.NewTOTP(c.box, s.store, topts, s.now, nil, factor.WithDriftScan(driftSteps, s.driftObserver(s.driftRec)))
	c.drift = drift.NewService(s.store, c.totp, c.recorder, drift.Options{Period: topts.Period}, s.now)
	c.recovery = factor.NewRecovery(key[:], nil)
	pk := cfg.Passkeys()
	if !pk.Available {
		c.passkeysWhy = pk.Reason
		return nil
	}
	svc, err := passkey.New(passkey.Options{
		RPID: pk.RPID, RPName: cmp.Or(pk.RPName, cfg.UI.Title, DefaultIssuer(cfg)), Origins: pk.Origins,
		UserVerification: pk.UserVerification, Attestation: pk.Attestation,
		Passwordless: pk.Passwordless, Timeout: pk.Timeout,
	}, c.box, s.store, s.now, nil)
	if err != nil {
		return fmt.Errorf("webauthn: %w", err)
	}
	c.passkeys = svc
	return nil
}

// openSettings reads the run-time settings (2FA mode, Issuer). One rule:
// a value set on the Settings page or with the command line is stored
// and wins over the file, on every instance, until it is set again. The
// start says so when the file says otherwise.
func (s *Server) openSettings(ctx context.Context) (*settings.Source, error) {
	cfg := s.cfg
	src := settings.New(s.store, settings.Values{Mode: cfg.TwoFactor.Mode, Issuer: cfg.TwoFactor.Issuer}, 2*time.Second, s.now)
	vals, err := src.Current(ctx)
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if vals.Mode != cfg.TwoFactor.Mode {
		s.log.Warn().Str("file", cfg.TwoFactor.Mode).Str("effective", vals.Mode).
			Msg("two_factor.mode in the config file is overridden by the mode set on the admin Settings page or with `authgate 2fa mode` (stored, shared by every instance); change it there")
	}
	if vals.Issuer != cfg.TwoFactor.Issuer {
		s.log.Warn().Str("file", cfg.TwoFactor.Issuer).Str("effective", vals.Issuer).
			Msg("two_factor.issuer in the config file is overridden by the Issuer set on the admin Settings page (stored, shared by every instance); change it there")
	}
	return src, nil
}

// newCSRF protects the gateway's forms. Tokens are HMACs over the
// session id (over a pre-session cookie before sign-in) with a key
// derived from the secret key, so every instance sharing the store
// accepts every instance's forms.
func (s *Server) newCSRF(key secretbox.Key, sessions *session.Manager, renderer *web.Renderer) (*middleware.CSRF, error) {
	csrfKey, err := hkdf.Key(sha256.New, key[:], nil, "authgate csrf token key v1", 32)
	if err != nil {
		return nil, fmt.Errorf("csrf key: %w", err)
	}
	overHTTPS := func(r *http.Request) bool { c, _ := middleware.ClientFrom(r.Context()); return c.Scheme == "https" }
	return middleware.NewCSRF(middleware.CSRFOptions{
		CookieName:    "authgate_csrf",
		Secure:        overHTTPS,
		Key:           csrfKey,
		SessionCookie: func(r *http.Request) string { return sessions.CookieName(overHTTPS(r)) },
		Reject: func(w http.ResponseWriter, r *http.Request) {
			renderer.RenderError(w, r, web.Errorf(http.StatusForbidden, "Your form expired. Go back, reload the page and try again.", nil))
		},
	}), nil
}

// assembleRouting builds what a config's reloadable keys decide: the
// proxy and its routes, the gate, the sign-in pages, the admin area and
// the handler that dispatches between them.
func (s *Server) assembleRouting(c *core, cfg *config.Config, loadedAt time.Time) (*routing, error) {
	// The config's parser is the one Validate used: one reading of
	// trusted_proxies everywhere.
	trusted, err := cfg.TrustedPrefixes()
	if err != nil {
		return nil, err
	}
	routes, redirectHosts, err := proxyRoutes(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.PublicURL != "" {
		if u, err := url.Parse(cfg.PublicURL); err == nil && u.Hostname() != "" {
			redirectHosts = append(redirectHosts, strings.ToLower(u.Hostname()))
		}
	}
	logo, err := readLogo(cfg)
	if err != nil {
		return nil, err
	}
	px, err := proxy.New(proxy.Options{
		Routes:       routes,
		StripCookies: append(c.sessions.CookieNames(), c.csrf.CookieNames()...),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			securePages{c.renderer}.RenderError(w, r, upstreamError(err))
		},
		Logger:                s.log,
		Now:                   s.now,
		ResponseHeaderTimeout: cfg.Proxy.ResponseHeaderTimeout,
		Observer:              s.proxyObserver(),
	})
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	gate := auth.New(auth.Deps{
		Users:     s.store,
		Settings:  c.settings,
		Sessions:  c.sessions,
		Upstreams: px,
		Errors:    securePages{c.renderer},
		Streams:   s.authStreams(),
		Untouched: c.sessions.WithoutTouch(),
		Logger:    s.log,
	})
	logoURL := ""
	if logo != nil {
		logoURL = logo.URL()
	}
	pages := signin.New(signin.Deps{
		Users:        s.store,
		Settings:     c.settings,
		Sessions:     c.sessions,
		Loader:       gate,
		Passwords:    c.hasher,
		TOTP:         c.totp,
		Recovery:     c.recovery,
		Audit:        c.recorder,
		Pages:        securePages{c.renderer},
		Regulator:    c.regulator,
		Passkeys:     c.signinPasskeys(),
		PasskeyOwner: passkey.OwnerLookup(s.store),
		HashSlots:    c.hashSlots,
		Metrics:      s.loginMetrics(),
		CSRFToken:    middleware.CSRFToken,
		Logger:       s.log,
		Now:          s.now,
	}, signin.Options{
		DefaultIssuer: DefaultIssuer(cfg),
		RedirectHosts: redirectHosts,
		Title:         cfg.UI.Title,
		LogoURL:       logoURL,
		PublicHost:    publicHost(cfg),
	})
	adm := admin.New(admin.Deps{
		Users: s.admin, Bans: s.admin, Upstreams: px, Hasher: password.NewLimited(c.hasher, c.hashSlots),
		Pages: c.renderer, Now: s.now, Clock: s.clock, Drift: c.drift, Sessions: c.sessions, Box: c.box,
	}, admin.Options{ConfigPath: cfg.Path(), ConfigLoadedAt: loadedAt})
	root := s.dispatch(c, gate, pages.Handler(), adm.Handler(), logo)
	return &routing{cfg: cfg, proxy: px, loadedAt: loadedAt, handler: middleware.RealClient(trusted)(root), redirectHosts: redirectHosts}, nil
}

// readLogo reads ui.logo_file (nil without one). Validate checked it; it
// is read again at start and at every reload, and a file that went bad
// since fails the start or keeps the running config.
func readLogo(cfg *config.Config) (*branding.Logo, error) {
	if cfg.UI.LogoFile == "" {
		return nil, nil
	}
	l, err := config.ReadLogo(cfg.UI.LogoFile)
	if err != nil {
		return nil, fmt.Errorf("ui.logo_file: %w", err)
	}
	return branding.NewLogo(l.Data, l.ContentType), nil
}

// dispatch is the gateway's root handler: health and readiness, forward
// auth, the logo, the gateway's own pages (the sign-in flow, and behind
// a complete session the account pages and, role admin, the admin area)
// and, for everything else, the gate in front of the proxy.
func (s *Server) dispatch(c *core, gate *auth.Gate, signinPages, adminPages http.Handler, logo *branding.Logo) http.Handler {
	gwPages := http.NewServeMux()
	signedIn := gate.RequireUser(c.account.Handler())
	gwPages.Handle("/.authgate/account", signedIn)
	gwPages.Handle("/.authgate/account/", signedIn)
	adminArea := gate.RequireUser(adminPages)
	gwPages.Handle("/.authgate/admin", adminArea)
	gwPages.Handle("/.authgate/admin/", adminArea)
	gwPages.Handle("/", signinPages)
	// Everything under /.authgate/ gets its (small) body within
	// bodyReadTimeout; proxied requests get no body deadline.
	own := middleware.BodyDeadline(s.bodyReadTimeout)
	pagesChain := own(middleware.SecurityHeaders()(middleware.MaxBody(maxFormBytes)(c.csrf.Middleware()(gwPages))))
	health := own(http.HandlerFunc(s.health))
	ready := own(http.HandlerFunc(s.ready))
	forwardAuth := own(http.HandlerFunc(gate.ForwardAuth))
	var logoHandler http.Handler
	if logo != nil {
		logoHandler = own(logo)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := proxy.CanonicalPath(r.URL)
		switch {
		case err != nil:
			gate.ServeHTTP(w, r) // renders the 400 page
		case p == HealthPath:
			health.ServeHTTP(w, r)
		case p == ReadyPath:
			ready.ServeHTTP(w, r)
		case p == auth.ForwardAuthPath:
			// Forward auth for an existing proxy: any method (nginx's
			// auth_request keeps the original one), no CSRF, no body.
			forwardAuth.ServeHTTP(w, r)
		case p == branding.LogoPath && logoHandler != nil:
			// Shown on the sign-in pages: no session, no CSRF cookie
			// (a cached image must not set one), headers of its own.
			logoHandler.ServeHTTP(w, r)
		case auth.IsGatewayPath(p):
			pagesChain.ServeHTTP(w, r)
		default:
			gate.ServeHTTP(w, r)
		}
	})
}

// signinPasskeys is c.passkeys for the sign-in pages: a nil interface
// (not a typed nil) when passkeys are unavailable.
func (c *core) signinPasskeys() signin.Passkeys {
	if c.passkeys == nil {
		return nil
	}
	return c.passkeys
}

// accountPasskeys is c.passkeys for the account pages (see
// signinPasskeys).
func (c *core) accountPasskeys() account.Registrar {
	if c.passkeys == nil {
		return nil
	}
	return c.passkeys
}

// redirectHosts are the hosts of the routing in force that an rd may
// name in full (the account pages follow reloads through it).
func (s *Server) redirectHosts() []string {
	if rt := s.live.Load(); rt != nil {
		return rt.redirectHosts
	}
	return nil
}
