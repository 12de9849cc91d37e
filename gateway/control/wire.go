package control

import (
	"errors"
	"net/http"
	"time"

	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
)

// The control protocol: JSON over HTTP on the unix socket. Every request
// and response body is JSON; a failure is a non-2xx status with a
// wireError body whose code maps back to a sentinel error and whose
// details rebuild the service's typed errors (users.InvalidError,
// users.UnknownUsersError).
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
	pathBans        = "/v1/bans"
	pathLiftBan     = "/v1/bans/lift"
	// pathBackup streams a consistent copy of the embedded store's file.
	pathBackup = "/v1/backup"

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
	Entries []users.ImportEntry `json:"entries"`
}

type pageRequest struct {
	Filter users.Filter `json:"filter"`
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
	Sessions []users.SessionInfo `json:"sessions"`
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
	View  users.AuditView `json:"view,omitempty"`
	Since time.Time       `json:"since,omitzero"`
	Limit int             `json:"limit,omitempty"`
}

type auditResponse struct {
	Events []store.AuditEvent `json:"events"`
}

type bansResponse struct {
	Bans []users.BanInfo `json:"bans"`
}

type liftBanRequest struct {
	Target string `json:"target"`
}

type okResponse struct {
	OK bool `json:"ok"`
}

type listResponse struct {
	Users []users.UserInfo `json:"users"`
}

type importResponse struct {
	Result users.ImportResult `json:"result"`
}

// wireError is a failed operation: the code of the sentinel the error
// matches, its message unchanged, and the fields of a typed error.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Invalid is a users.InvalidError's (code invalid).
	Invalid *invalidDetail `json:"invalid,omitempty"`
	// UnknownUsers are a users.UnknownUsersError's names (code not_found).
	UnknownUsers []string `json:"unknown_users,omitempty"`
}

type invalidDetail struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type errorResponse struct {
	Error wireError `json:"error"`
	// Result is set for a failed import: what was done before the error.
	Result *users.ImportResult `json:"result,omitempty"`
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
	{codeInvalid, http.StatusBadRequest, users.ErrInvalid},
	{codeLastAdmin, http.StatusConflict, users.ErrLastAdmin},
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

// toWire describes err for the client, with the HTTP status to send.
func toWire(err error) (wireError, int) {
	code, status := classify(err)
	e := wireError{Code: code, Message: err.Error()}
	if ie, ok := errors.AsType[*users.InvalidError](err); ok && code == codeInvalid {
		e.Invalid = &invalidDetail{Field: ie.Field, Message: ie.Message}
	}
	if ue, ok := errors.AsType[*users.UnknownUsersError](err); ok && code == codeNotFound {
		e.UnknownUsers = ue.Names
	}
	return e, status
}

// remoteError is an error reported by the server: its message unchanged,
// matching what the server's error matched (kind: the sentinel of its
// code, or the typed error rebuilt from the details).
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

// fromWire is the client's error for e: errors.Is and errors.As find in
// it what they find in the server's.
func fromWire(e wireError) error {
	kind := sentinelFor(e.Code)
	switch {
	case e.Code == codeInvalid && e.Invalid != nil:
		kind = &users.InvalidError{Field: e.Invalid.Field, Message: e.Invalid.Message}
	case e.Code == codeNotFound && len(e.UnknownUsers) > 0:
		kind = &users.UnknownUsersError{Names: e.UnknownUsers}
	}
	return &remoteError{msg: e.Message, kind: kind}
}
