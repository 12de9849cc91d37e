package account

import (
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/passkey"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// Passkey paths: begin answers JSON to passkey.js; add, rename and
// remove are form posts.
const (
	PathPasskeyBegin  = "/.authgate/account/passkeys/begin"
	PathPasskeyAdd    = "/.authgate/account/passkeys/add"
	PathPasskeyRename = "/.authgate/account/passkeys/rename"
	PathPasskeyRemove = "/.authgate/account/passkeys/remove"
)

// Public messages of the passkey actions.
const (
	msgPasskeyName        = "Give the key a name of at most 64 characters."
	msgPasskeyNotAdded    = "The key could not be registered. Please try again."
	msgPasskeyExists      = "This key is already registered to your account."
	msgPasskeyGone        = "That key was not found. It may have been removed already."
	msgPasskeyLast        = "Two-factor authentication is required on this gateway and this key is your last second factor, so it cannot be removed. Set up another key or an authenticator app first."
	msgPasskeyUnavailable = "Passkeys are unavailable on this gateway."
)

// Registrar registers passkeys (a *passkey.Service).
type Registrar interface {
	BeginRegistration(u store.User, name string) (passkey.Begin, error)
	FinishRegistration(u store.User, sealed, answer []byte) (passkey.Registered, error)
}

// errNoPasskey: the key to remove is not the account's (any more).
var errNoPasskey = errors.New("account: no such passkey")

// passkeyBegin starts registering a key: it needs a session that passed
// the account's current second factor (or, for an account without one,
// any valid session). The challenge goes into the session.
func (h *Handler) passkeyBegin(w http.ResponseWriter, r *http.Request, c auth.Current) {
	if h.d.Passkeys == nil {
		web.JSONError(w, http.StatusNotFound, msgPasskeyUnavailable, "")
		return
	}
	if loc := auth.SecondFactorOwed(c, PathOverview); loc != "" && c.User.HasSecondFactor() {
		web.JSONError(w, http.StatusForbidden, "Confirm your second factor first.", loc)
		return
	}
	name, ok := passkey.CleanName(r.PostForm.Get("name"))
	if !ok {
		web.JSONError(w, http.StatusBadRequest, msgPasskeyName, "")
		return
	}
	b, err := h.d.Passkeys.BeginRegistration(c.User, name)
	if err != nil {
		h.log(r).Error().Err(err).Str("user", c.User.Name).Msg("account: passkey registration not started")
		web.JSONError(w, http.StatusServiceUnavailable, msgUnavailable, "")
		return
	}
	s := c.Session
	s.PasskeyChallenge = b.State
	if err := h.d.SessionManager.Save(r.Context(), s); err != nil {
		h.log(r).Warn().Err(err).Str("user", c.User.Name).Msg("account: passkey challenge not stored")
		web.JSONError(w, http.StatusServiceUnavailable, msgUnavailable, "/.authgate/login")
		return
	}
	web.JSON(w, http.StatusOK, b.Options)
}

// passkeyAdd finishes a registration: the answer is checked against the
// challenge in this session, and the key is stored as part of moving the
// session on (which spends the challenge, moves the account's epoch on
// and so signs its other sessions out, as any change of factor does).
// The first second factor of an account comes with recovery codes.
func (h *Handler) passkeyAdd(w http.ResponseWriter, r *http.Request, c auth.Current) {
	if h.d.Passkeys == nil {
		h.renderOverview(w, r, c, http.StatusNotFound, "", msgPasskeyUnavailable)
		return
	}
	if c.User.HasSecondFactor() && h.needSecondFactor(w, r, c, PathOverview) {
		return
	}
	reg, err := h.d.Passkeys.FinishRegistration(c.User, c.Session.PasskeyChallenge, passkey.Answer(r.PostForm.Get("passkey")))
	if err != nil {
		h.log(r).Info().Err(err).Str("user", c.User.Name).Msg("account: passkey registration refused")
		msg := msgPasskeyNotAdded
		if errors.Is(err, passkey.ErrExists) {
			msg = msgPasskeyExists
		}
		h.renderOverview(w, r, c, http.StatusUnprocessableEntity, "", msg)
		return
	}
	ns, u, nf, ok := h.addSecondFactor(w, r, c, func(x *store.User) error { return passkey.Add(x, reg) },
		func(s *store.Session) { s.PasskeyChallenge = nil })
	if !ok {
		return
	}
	n, err := h.revokeOtherSessions(r.Context(), u.Name, ns.IDHash)
	if err != nil {
		h.log(r).Error().Err(err).Str("user", u.Name).Msg("account: other sessions not all deleted after adding a passkey (they are void anyway)")
	}
	kind := "security key"
	if reg.Key.Discoverable {
		kind = "passkey"
	}
	h.record(r, c, audit.PasskeyAdded, kind+" "+quote(reg.Key.Name)+"; "+plural(n, "other session")+" signed out")
	h.showFirstCodes(w, r, c, ns, u, nf, "with the first passkey", "passkey-added")
}

// passkeyRemove removes one of the account's keys. It needs a session
// that passed a second factor; in mode required the last second factor
// stays. Removing the last factor also ends the recovery codes (they
// stand in for a factor the account no longer has).
func (h *Handler) passkeyRemove(w http.ResponseWriter, r *http.Request, c auth.Current) {
	id, ok := h.keyToChange(w, r, c)
	if !ok {
		return
	}
	vals, err := h.d.Settings.Current(r.Context())
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	if vals.Mode == settings.ModeRequired && !c.User.HasTOTP() && len(c.User.Passkeys) == 1 {
		h.renderOverview(w, r, c, http.StatusConflict, "", msgPasskeyLast)
		return
	}
	name := c.User.Passkeys[c.User.PasskeyIndex(id)].Name
	ns, u, ok := h.removeSecondFactor(w, r, c, func(x *store.User) error {
		i := x.PasskeyIndex(id)
		if i < 0 {
			return errNoPasskey
		}
		x.Passkeys = append(x.Passkeys[:i:i], x.Passkeys[i+1:]...)
		if len(x.Passkeys) == 0 {
			x.Passkeys = nil
		}
		return nil
	}, func(s *store.Session) { s.PasskeyChallenge = nil })
	if !ok {
		return
	}
	n, err := h.revokeOtherSessions(r.Context(), u.Name, ns.IDHash)
	if err != nil {
		h.log(r).Error().Err(err).Str("user", u.Name).Msg("account: other sessions not all deleted after removing a passkey (they are void anyway)")
	}
	h.record(r, c, audit.PasskeyRemoved, quote(name)+"; "+plural(n, "other session")+" signed out")
	redirectDone(w, r, "passkey-removed")
}

// passkeyRename gives one of the account's keys a new name. A name is
// only a label (nothing signs in by it), so renaming neither moves the
// account's epoch nor signs other sessions out; like every change to the
// account's keys it needs a session that passed a second factor, and it
// is made only if the account is still at this session's epoch.
func (h *Handler) passkeyRename(w http.ResponseWriter, r *http.Request, c auth.Current) {
	id, ok := h.keyToChange(w, r, c)
	if !ok {
		return
	}
	name, ok := passkey.CleanName(r.PostForm.Get("name"))
	if !ok {
		h.renderOverview(w, r, c, http.StatusBadRequest, "", msgPasskeyName)
		return
	}
	var old string
	_, err := h.d.Users.UpdateUser(r.Context(), c.User.Name, func(x *store.User) error {
		if x.AuthEpoch != c.Session.UserEpoch {
			return errAccountMoved
		}
		i := x.PasskeyIndex(id)
		if i < 0 {
			return errNoPasskey
		}
		old = x.Passkeys[i].Name
		x.Passkeys[i].Name = name
		x.UpdatedAt = h.now()
		return nil
	})
	switch {
	case errors.Is(err, errNoPasskey):
		h.renderOverview(w, r, c, http.StatusNotFound, "", msgPasskeyGone)
		return
	case h.accountMoved(w, r, c, err):
		return
	case err != nil:
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	if old != name {
		h.record(r, c, audit.PasskeyRenamed, quote(old)+" to "+quote(name))
	}
	redirectDone(w, r, "passkey-renamed")
}

// keyToChange returns the id of the account's key a form names (field
// "id"), once the session has passed a second factor. Otherwise it
// answers the request (404 for a key that is not the account's, the
// step-up for a session that owes a factor) and reports false.
func (h *Handler) keyToChange(w http.ResponseWriter, r *http.Request, c auth.Current) ([]byte, bool) {
	id, err := base64.RawURLEncoding.DecodeString(r.PostForm.Get("id"))
	if err != nil || c.User.PasskeyIndex(id) < 0 {
		h.renderOverview(w, r, c, http.StatusNotFound, "", msgPasskeyGone)
		return nil, false
	}
	if h.needSecondFactor(w, r, c, PathOverview) {
		return nil, false
	}
	return id, true
}

// passkeyRows lists u's keys for the overview.
func passkeyRows(u store.User) []templates.AccountPasskey {
	var out []templates.AccountPasskey
	for _, k := range u.Passkeys {
		out = append(out, templates.AccountPasskey{ID: base64.RawURLEncoding.EncodeToString(k.ID), Name: k.Name,
			CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, Discoverable: k.Discoverable})
	}
	return out
}

func quote(s string) string { return "\u201c" + s + "\u201d" }

// allowScript lets the overview load passkey.js when it offers keys.
func allowScript(w http.ResponseWriter, d *templates.AccountPage) {
	if d.PasskeysAvailable {
		d.PasskeyScript = true
		middleware.AllowOwnScript(w)
	}
}
