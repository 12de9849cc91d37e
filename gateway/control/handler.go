package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/users"
)

// NewSocketHandler serves a over the control protocol (JSON over HTTP),
// for the unix socket made by ListenSocket. Every request acts as
// audit.ActorCLI: a users.Service records each change with that actor. The
// socket's 0600 mode is the access control: whoever can connect is the
// server's own user (or root).
//
// opts add operations that are not user administration (WithBackup).
func NewSocketHandler(a users.Admin, logger zerolog.Logger, opts ...SocketOption) http.Handler {
	h := &handler{admin: a, log: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathAdd, h.add)
	mux.HandleFunc("POST "+pathSetPassword, h.setPassword)
	mux.HandleFunc("POST "+pathDelete, h.delete)
	mux.HandleFunc("GET "+pathList, h.list)
	mux.HandleFunc("POST "+pathImport, h.importUsers)
	mux.HandleFunc("POST "+pathPage, h.page)
	mux.HandleFunc("POST "+pathDisable2FA, h.disableTwoFactor)
	mux.HandleFunc("POST "+pathResetPass, h.resetPassword)
	mux.HandleFunc("POST "+pathSetRole, h.setRole)
	mux.HandleFunc("POST "+pathSessions, h.sessions)
	mux.HandleFunc("POST "+pathRevoke, h.revokeSessions)
	mux.HandleFunc("GET "+pathSettings, h.settings)
	mux.HandleFunc("POST "+pathSetMode, h.setMode)
	mux.HandleFunc("POST "+pathSetIssuer, h.setIssuer)
	mux.HandleFunc("POST "+pathAudit, h.audit)
	mux.HandleFunc("GET "+pathBans, h.bans)
	mux.HandleFunc("POST "+pathLiftBan, h.liftBan)
	for _, o := range opts {
		o(mux, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeJSON(w, http.StatusNotFound, errorResponse{Error: wireError{
			Code: codeBadRequest, Message: fmt.Sprintf("control: no operation %s %s", r.Method, r.URL.Path),
		}})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(audit.WithActor(r.Context(), audit.ActorCLI, "")))
	})
}

type handler struct {
	admin users.Admin
	log   zerolog.Logger
}

func (h *handler) add(w http.ResponseWriter, r *http.Request) {
	var req addRequest
	if !h.decode(w, r, &req) {
		return
	}
	err := h.admin.Add(r.Context(), req.Name, req.PasswordHash, req.Role, req.Groups)
	h.reply(w, okResponse{OK: true}, err, nil)
}

func (h *handler) setPassword(w http.ResponseWriter, r *http.Request) {
	var req setPasswordRequest
	if !h.decode(w, r, &req) {
		return
	}
	err := h.admin.SetPassword(r.Context(), req.Name, req.PasswordHash)
	h.reply(w, okResponse{OK: true}, err, nil)
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	var req deleteRequest
	if !h.decode(w, r, &req) {
		return
	}
	err := h.admin.Delete(r.Context(), req.Name)
	h.reply(w, okResponse{OK: true}, err, nil)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	list, err := h.admin.List(r.Context())
	if list == nil {
		list = []users.UserInfo{}
	}
	h.reply(w, listResponse{Users: list}, err, nil)
}

func (h *handler) importUsers(w http.ResponseWriter, r *http.Request) {
	var req importRequest
	if !h.decode(w, r, &req) {
		return
	}
	res, err := h.admin.Import(r.Context(), req.Entries)
	h.reply(w, importResponse{Result: res}, err, &res)
}

func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	var req pageRequest
	if !h.decode(w, r, &req) {
		return
	}
	p, err := h.admin.Page(r.Context(), req.Filter)
	if p.Users == nil {
		p.Users = []users.UserInfo{}
	}
	h.reply(w, p, err, nil)
}

func (h *handler) disableTwoFactor(w http.ResponseWriter, r *http.Request) {
	var req namesRequest
	if !h.decode(w, r, &req) {
		return
	}
	names, err := h.admin.DisableTwoFactor(r.Context(), req.Names)
	if names == nil {
		names = []string{}
	}
	h.reply(w, namesResponse{Names: names}, err, nil)
}

func (h *handler) resetPassword(w http.ResponseWriter, r *http.Request) {
	var req setPasswordRequest
	if !h.decode(w, r, &req) {
		return
	}
	err := h.admin.ResetPassword(r.Context(), req.Name, req.PasswordHash)
	h.reply(w, okResponse{OK: true}, err, nil)
}

func (h *handler) setRole(w http.ResponseWriter, r *http.Request) {
	var req roleRequest
	if !h.decode(w, r, &req) {
		return
	}
	err := h.admin.SetRole(r.Context(), req.Name, req.Role)
	h.reply(w, okResponse{OK: true}, err, nil)
}

func (h *handler) sessions(w http.ResponseWriter, r *http.Request) {
	var req nameRequest
	if !h.decode(w, r, &req) {
		return
	}
	ss, err := h.admin.Sessions(r.Context(), req.Name)
	if ss == nil {
		ss = []users.SessionInfo{}
	}
	h.reply(w, sessionsResponse{Sessions: ss}, err, nil)
}

func (h *handler) revokeSessions(w http.ResponseWriter, r *http.Request) {
	var req nameRequest
	if !h.decode(w, r, &req) {
		return
	}
	n, err := h.admin.RevokeSessions(r.Context(), req.Name)
	h.reply(w, countResponse{Count: n}, err, nil)
}

func (h *handler) settings(w http.ResponseWriter, r *http.Request) {
	v, err := h.admin.Settings(r.Context())
	h.reply(w, v, err, nil)
}

func (h *handler) setMode(w http.ResponseWriter, r *http.Request) {
	var req modeRequest
	if !h.decode(w, r, &req) {
		return
	}
	err := h.admin.SetMode(r.Context(), req.Mode)
	h.reply(w, okResponse{OK: true}, err, nil)
}

func (h *handler) setIssuer(w http.ResponseWriter, r *http.Request) {
	var req issuerRequest
	if !h.decode(w, r, &req) {
		return
	}
	err := h.admin.SetIssuer(r.Context(), req.Issuer)
	h.reply(w, okResponse{OK: true}, err, nil)
}

func (h *handler) audit(w http.ResponseWriter, r *http.Request) {
	var req auditRequest
	if !h.decode(w, r, &req) {
		return
	}
	evs, err := h.admin.Audit(r.Context(), req.View, req.Since, req.Limit)
	if evs == nil {
		evs = []store.AuditEvent{}
	}
	h.reply(w, auditResponse{Events: evs}, err, nil)
}

func (h *handler) bans(w http.ResponseWriter, r *http.Request) {
	bs, err := h.admin.Bans(r.Context())
	if bs == nil {
		bs = []users.BanInfo{}
	}
	h.reply(w, bansResponse{Bans: bs}, err, nil)
}

func (h *handler) liftBan(w http.ResponseWriter, r *http.Request) {
	var req liftBanRequest
	if !h.decode(w, r, &req) {
		return
	}
	bs, err := h.admin.LiftBan(r.Context(), req.Target)
	if bs == nil {
		bs = []users.BanInfo{}
	}
	h.reply(w, bansResponse{Bans: bs}, err, nil)
}

// decode reads the JSON body strictly; on failure it answers and returns
// false.
func (h *handler) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("trailing data after the JSON body")
	}
	if err != nil {
		h.log.Warn().Err(err).Str("path", r.URL.Path).Msg("control socket: bad request")
		h.writeJSON(w, http.StatusBadRequest, errorResponse{Error: wireError{
			Code: codeBadRequest, Message: "control: bad request: " + err.Error(),
		}})
		return false
	}
	return true
}

// reply writes ok on success, else the error with its code; partial is
// the result of a failed import.
func (h *handler) reply(w http.ResponseWriter, ok any, err error, partial *users.ImportResult) {
	if err == nil {
		h.writeJSON(w, http.StatusOK, ok)
		return
	}
	e, status := toWire(err)
	if e.Code == codeInternal {
		h.log.Error().Err(err).Msg("control socket: operation failed")
	} else {
		h.log.Warn().Err(err).Str("code", e.Code).Msg("control socket: operation refused")
	}
	h.writeJSON(w, status, errorResponse{Error: e, Result: partial})
}

func (h *handler) writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		h.log.Error().Err(err).Msg("control socket: encode response")
		http.Error(w, `{"error":{"code":"internal","message":"control: encode response"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
