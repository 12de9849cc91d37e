package useradmin

import (
	"errors"
	"net/http"
	"time"

	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
)

// The control protocol: JSON over HTTP on the unix socket. Every request
// and response body is JSON; a failure is a non-2xx status with a
// wireError body whose code maps back to a sentinel error.
const (
	pathAdd         = "/v1/users/add"
	pathSetPassword = "/v1/users/set-password"
	pathDelete      = "/v1/users/delete"
	pathList        = "/v1/users"
	pathImport      = "/v1/users/import"
	pathPage        = "/v1/users/page"
	pathDisable2FA  = "/v1/users/disable-2fa"
	pathResetPass   = "/v1/users/reset-password"
	pathSetRole     = "/v1/users/role"
	pathSessions    = "/v1/users/sessions"
	pathRevoke      = "/v1/users/revoke-sessions"
	pathSettings    = "/v1/settings"
	pathSetMode     = "/v1/settings/mode"
	pathSetIssuer   = "/v1/settings/issuer"
	pathAudit       = "/v1/audit"

	// maxRequestBody caps a request (an import of ~100k htpasswd lines).
	maxRequestBody = 16 << 20
)

type addRequest struct {
	Name         string   `json:"name"`
	PasswordHash string   `json:"password_hash"`
	Role         string   `json:"role"`
	Groups       []string `json:"groups,omitempty"`
}

type setPasswordRequest struct {
	Name         string `json:"name"`
	PasswordHash string `json:"password_hash"`
}

type deleteRequest struct {
	Name string `json:"name"`
}

type importRequest struct {
	Entries []ImportEntry `json:"entries"`
}

type pageRequest struct {
	Filter Filter `json:"filter"`
}

type namesRequest struct {
	Names []string `json:"names"`
}

type namesResponse struct {
	Names []string `json:"names"`
}

type nameRequest struct {
	Name string `json:"name"`
}

type roleRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type sessionsResponse struct {
	Sessions []SessionInfo `json:"sessions"`
}

type countResponse struct {
	Count int `json:"count"`
}

type modeRequest struct {
	Mode string `json:"mode"`
}

type issuerRequest struct {
	Issuer string `json:"issuer"`
}

type auditRequest struct {
	// View is "" (AuditChanges) when omitted.
	View  AuditView `json:"view,omitempty"`
	Since time.Time `json:"since,omitzero"`
	Limit int       `json:"limit,omitempty"`
}

type auditResponse struct {
	Events []store.AuditEvent `json:"events"`
}

type okResponse struct {
	OK bool `json:"ok"`
}

type listResponse struct {
	Users []UserInfo `json:"users"`
}

type importResponse struct {
	Result ImportResult `json:"result"`
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type errorResponse struct {
	Error wireError `json:"error"`
	// Result is set for a failed import: what was done before the error.
	Result *ImportResult `json:"result,omitempty"`
}

// Error codes.
const (
	codeInvalid    = "invalid"
	codeExists     = "exists"
	codeNotFound   = "not_found"
	codeConflict   = "conflict"
	codeLastAdmin  = "last_admin"
	codeBadRequest = "bad_request"
	codeInternal   = "internal"
)

// sentinels maps codes to the errors they stand for, in the order errors
// are classified.
var sentinels = []struct {
	code   string
	status int
	err    error
}{
	{codeInvalid, http.StatusBadRequest, ErrInvalid},
	{codeInvalid, http.StatusBadRequest, settings.ErrInvalid},
	{codeLastAdmin, http.StatusConflict, ErrLastAdmin},
	{codeExists, http.StatusConflict, store.ErrExists},
	{codeNotFound, http.StatusNotFound, store.ErrNotFound},
	{codeConflict, http.StatusConflict, store.ErrConflict},
}

func classify(err error) (code string, status int) {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code, s.status
		}
	}
	return codeInternal, http.StatusInternalServerError
}

func sentinelFor(code string) error {
	for _, s := range sentinels {
		if s.code == code {
			return s.err
		}
	}
	return nil
}
