package templates

// Admin page names (files admin_*.html).
const (
	PageAdminSettings     = "admin_settings"
	PageAdminUsers        = "admin_users"
	PageAdminUpstreams    = "admin_upstreams"
	PageAdminAudit        = "admin_audit"
	PageAdminTempPassword = "admin_temp_password"
	PageAdminForbidden    = "admin_forbidden"
	PageConfirm           = "confirm"
)

// AdminSettingsPage is the data for "admin_settings".
type AdminSettingsPage struct {
	Common
	Nav   Nav
	Modes []AdminMode
	// ModeSource says where the mode in force comes from.
	ModeSource string
	// Issuer is the value as set ("" = the default).
	Issuer string
	// DefaultIssuer is what an empty Issuer means (shown as placeholder);
	// empty when it is the request's host name.
	DefaultIssuer string
	// Clock is the "Server clock" block (partial _clock.html).
	Clock ClockStatus
	// Drift is the "Clock drift evidence" block (partial _drift.html).
	Drift DriftSummary
}

// AdminMode is one choice of the 2FA mode radio group.
type AdminMode struct {
	Value   string // off, on, required
	Label   string
	Help    string
	Checked bool
}

// AdminUsersPage is the data for "admin_users".
type AdminUsersPage struct {
	Common
	Nav Nav
	// Query and Status are the current filter (form values).
	Query  string
	Status string
	// Statuses are the filter's choices (value "" = all).
	Statuses []AdminOption
	Users    []AdminUserRow
	// Total is the number of users matching the filter; From and To
	// number the rows shown (1-based; 0 when none).
	Total    int
	From, To int
	Page     int
	Pages    int
	// PrevURL and NextURL link to the neighbouring pages ("" = none).
	PrevURL string
	NextURL string
	// Back is the query string of this view, posted back by every form
	// (field "back") so an action returns to the same page and filter.
	Back string
}

// AdminOption is one <option> of a select.
type AdminOption struct {
	Value    string
	Label    string
	Selected bool
}

// AdminUserRow is one row of the users table. Times are preformatted;
// empty means never.
type AdminUserRow struct {
	Name    string
	Role    string
	IsAdmin bool
	Groups  []string
	// TwoFactor: the user has a second factor, an authenticator app or a
	// passkey; Factors names each kind ("Authenticator app",
	// "2 passkeys"). TOTP: an authenticator app, which EnrolledAt,
	// LastUsedAt and the clock resync are about.
	TwoFactor          bool
	TOTP               bool
	Factors            []string
	EnrolledAt         string
	LastUsedAt         string
	RecoveryLeft       int
	Sessions           int
	MustChangePassword bool
	// IsSelf marks the signed-in admin's own row.
	IsSelf bool
	// Drift is the user's clock note (drift_data.go).
	Drift DriftNote
}

// AdminUpstreamsPage is the data for "admin_upstreams".
type AdminUpstreamsPage struct {
	Common
	Nav    Nav
	Routes []AdminRoute
	// ConfigPath and ConfigLoadedAt say where the routes come from.
	ConfigPath     string
	ConfigLoadedAt string
	// HealthWindow describes the request-count window ("5 minutes").
	HealthWindow string
}

// AdminRoute is one configured route with its health. Host, PathPrefix,
// Upstream, CAFile and ServerName are split into the pieces a line may
// break between (before "/", ".", "?", after "//" ...): the page joins
// them with <wbr> so long URLs wrap where a reader expects, never inside
// a host name label or a path segment unless that alone is too long.
type AdminRoute struct {
	Name               string
	Host               []string // nil = any host
	PathPrefix         []string
	Upstream           []string
	UpstreamURL        string // Upstream whole, for the title
	Policy             string
	AllowUsers         []string
	AllowGroups        []string
	CAFile             []string
	InsecureSkipVerify bool
	ServerName         []string
	PreserveHost       bool
	Health             AdminHealth
}

// AdminHealth is what was measured of a route's upstream: no verdict,
// since a 404 or 400 may be what the panel answers. Times and latencies
// are preformatted.
type AdminHealth struct {
	// Known is false before the first probe or proxied request.
	Known bool
	// Unreachable: the latest result (probe or proxied request) was a
	// transport error, no response at all.
	Unreachable bool
	// Probe is the last active probe (a GET of the upstream path).
	Probe AdminResult
	// LastRequest is the last proxied request's result.
	LastRequest AdminResult
	// Proxied requests over the window, by outcome.
	Requests                                   int
	Status1xx, Status2xx, Status3xx, Status4xx int
	Status5xx, TransportErrors, ClientGone     int
}

// AdminResult is one request's outcome as shown.
type AdminResult struct {
	Seen    bool   // false: none yet
	Status  int    // 0: no response, see Error
	Error   string // the transport error
	Latency string
	// Ago is how long ago it was ("12s ago"); At the time itself, in
	// UTC to the second, and ISOTime the same in RFC 3339.
	Ago     string
	At      string
	ISOTime string
}

// AdminAuditPage is the data for "admin_audit".
type AdminAuditPage struct {
	Common
	Nav    Nav
	Events []AdminAuditRow
	// View is the view shown (the filter form posts it back); Views link
	// the page's views (sign-ins and changes, failures, all), the one
	// shown marked Current, keeping the filter.
	View  string
	Views []AdminAuditView
	// Intro says what the view shown lists.
	Intro string
	// User and Event are the filter (form values; "" = any). EventChoices
	// and Sizes are the choices of the event and page-size selects.
	User         string
	Event        string
	EventChoices []AdminOption
	Sizes        []AdminOption
	// Filtered is true when a user or event filter is set; ResetURL shows
	// the view unfiltered.
	Filtered bool
	ResetURL string
	// Page is the page shown (1 = newest); From and To number its events
	// (1-based; 0 when none).
	Page     int
	From, To int
	// NewerURL and OlderURL link to the neighbouring pages ("" = none).
	NewerURL string
	OlderURL string
}

// AdminAuditView is one view of the audit page.
type AdminAuditView struct {
	Label   string
	URL     string
	Current bool
}

// AdminAuditRow is one audit event as shown.
type AdminAuditRow struct {
	Time     string
	ISOTime  string
	Actor    string
	Action   string
	Target   string
	IP       string
	Detail   string
	Recovery bool // a sign-in with a recovery code: flagged
	Failure  bool // a failed attempt
}

// AdminTempPasswordPage is the data for "admin_temp_password": the one
// time a reset password is shown (the page a reset redirects to). An
// empty Password means there is nothing (more) to show.
type AdminTempPasswordPage struct {
	Common
	Nav      Nav
	User     string
	Password string
	BackURL  string
	// ShownFor is how many minutes after the reset the password can be
	// shown (once).
	ShownFor int
}

// AdminForbiddenPage is the data for "admin_forbidden" (403 for signed-in
// users without the admin role).
type AdminForbiddenPage struct {
	Common
	Nav Nav
}
