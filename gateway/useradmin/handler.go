package useradmin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/rs/zerolog"
)

// NewSocketHandler serves a over the control protocol (JSON over HTTP),
// for the unix socket made by ListenSocket. Every change is audit-logged
// with logger (see Audited). The socket's 0600 mode is the access
// control: whoever can connect is the server's own user (or root).
func NewSocketHandler(a Admin, logger zerolog.Logger) http.Handler {
	h := &handler{admin: Audited(a, logger), log: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathAdd, h.add)
	mux.HandleFunc("POST "+pathSetPassword, h.setPassword)
	mux.HandleFunc("POST "+pathDelete, h.delete)
	mux.HandleFunc("GET "+pathList, h.list)
	mux.HandleFunc("POST "+pathImport, h.importUsers)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeJSON(w, http.StatusNotFound, errorResponse{Error: wireError{
			Code: codeBadRequest, Message: fmt.Sprintf("useradmin: no operation %s %s", r.Method, r.URL.Path),
		}})
	})
	return mux
}

type handler struct {
	admin Admin
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
	users, err := h.admin.List(r.Context())
	if users == nil {
		users = []UserInfo{}
	}
	h.reply(w, listResponse{Users: users}, err, nil)
}

func (h *handler) importUsers(w http.ResponseWriter, r *http.Request) {
	var req importRequest
	if !h.decode(w, r, &req) {
		return
	}
	res, err := h.admin.Import(r.Context(), req.Entries)
	h.reply(w, importResponse{Result: res}, err, &res)
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
			Code: codeBadRequest, Message: "useradmin: bad request: " + err.Error(),
		}})
		return false
	}
	return true
}

// reply writes ok on success, else the error with its code; partial is
// the result of a failed import.
func (h *handler) reply(w http.ResponseWriter, ok any, err error, partial *ImportResult) {
	if err == nil {
		h.writeJSON(w, http.StatusOK, ok)
		return
	}
	code, status := classify(err)
	if code == codeInternal {
		h.log.Error().Err(err).Msg("control socket: operation failed")
	}
	h.writeJSON(w, status, errorResponse{
		Error:  wireError{Code: code, Message: err.Error()},
		Result: partial,
	})
}

func (h *handler) writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		h.log.Error().Err(err).Msg("control socket: encode response")
		http.Error(w, `{"error":{"code":"internal","message":"useradmin: encode response"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
