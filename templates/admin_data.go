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
	Name               string
	Role               string
	IsAdmin            bool
	Groups             []string
	TwoFactor          bool
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
	// HealthWindow describes the error-count window ("5 minutes").
	HealthWindow string
}

// AdminRoute is one configured route with its health.
type AdminRoute struct {
	Name               string
	Host               string // "" = any host
	PathPrefix         string
	Upstream           string
	Policy             string
	AllowUsers         []string
	AllowGroups        []string
	CAFile             string
	InsecureSkipVerify bool
	ServerName         string
	PreserveHost       bool
	Health             AdminHealth
}

// AdminHealth is a route's live health as shown.
type AdminHealth struct {
	// Known is false before the first request or check.
	Known      bool
	Healthy    bool
	LastStatus int // 0 = no response
	Latency    string
	LastCheck  string
	Requests   int
	Errors     int
	LastError  string
}

// AdminAuditPage is the data for "admin_audit".
type AdminAuditPage struct {
	Common
	Nav    Nav
	Events []AdminAuditRow
	// Limit is how many events the page shows at most.
	Limit int
	// Views link the page's views (sign-ins and changes, failures, all),
	// the one shown marked Current.
	Views []AdminAuditView
	// Intro says what the view shown lists.
	Intro string
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
// time a reset password is shown.
type AdminTempPasswordPage struct {
	Common
	Nav      Nav
	User     string
	Password string
	BackURL  string
}

// AdminForbiddenPage is the data for "admin_forbidden" (403 for signed-in
// users without the admin role).
type AdminForbiddenPage struct {
	Common
	Nav Nav
}
