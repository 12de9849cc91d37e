package signin

import (
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/middleware"
)

const maxUsernameLen = 128
const maxPasswordLen = 1024

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	// An already complete session goes straight on.
	if _, s, err := h.d.Sessions.FromRequest(r, secure(r)); err == nil && s.Stage == "full" {
		http.Redirect(w, r, h.redirectTarget(r, r.URL.Query().Get("rd")), http.StatusSeeOther)
		return
	}
	d := h.loginData(w, r, "", h.redirectTarget(r, r.URL.Query().Get("rd")))
	if r.URL.Query().Get("signed_out") == "1" {
		d.Notice = "You have been signed out."
	}
	h.d.Pages.Render(w, r, http.StatusOK, "login", d)
}

// loginData is the login page's data; it offers a passkey sign-in when
// the server allows one (and then lets the page load passkey.js).
func (h *Handler) loginData(w http.ResponseWriter, r *http.Request, username, rd string) loginData {
	d := loginData{Common: h.common(r, "Sign in"), Username: username, RD: rd}
	if h.d.Passkeys != nil && h.d.Passkeys.Passwordless() {
		d.Passwordless = true
		d.PasskeyScript = true
		middleware.AllowOwnScript(w)
	}
	return d
}

func (h *Handler) loginFailed(w http.ResponseWriter, r *http.Request, username, rd, msg string, status int) {
	d := h.loginData(w, r, username, rd)
	d.Error = msg
	h.d.Pages.Render(w, r, status, "login", d)
}

func (h *Handler) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.loginFailed(w, r, "", "/", msgBadLogin, http.StatusBadRequest)
		return
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	pw := r.PostForm.Get("password")
	rd := h.redirectTarget(r, r.PostForm.Get("rd"))
	shown := username
	if len(username) > maxUsernameLen || !utf8.ValidString(username) {
		shown = ""
	}
	ctx := r.Context()

	// A hashing slot first: under a flood of sign-ins most requests are
	// answered "busy" here without a write to the store. Then the attempt
	// is reserved (refused during a ban or past the limit, without
	// looking at the password); every path below hashes once.
	page := func(status int, msg string) { h.loginFailed(w, r, shown, rd, msg, status) }
	release, got := h.hashSlot(w, r, page)
	if !got {
		return
	}
	defer release()
	a := h.reserve(w, r, factorPassword, shown, nil, page)
	if a == nil {
		return
	}

	if username == "" || pw == "" || len(username) > maxUsernameLen || len(pw) > maxPasswordLen || !utf8.ValidString(username) {
		h.d.Passwords.VerifyDummy(pw[:min(len(pw), maxPasswordLen)])
		h.decision(r, "", "", "deny", "malformed_credentials")
		h.attempt(factorPassword, resultFailure)
		if !h.failed(w, r, a, page) {
			h.loginFailed(w, r, shown, rd, msgBadLogin, http.StatusUnauthorized)
		}
		return
	}
	u, err := h.d.Users.GetUser(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.d.Passwords.VerifyDummy(pw)
		h.decision(r, username, "", "deny", "unknown_user")
		h.attempt(factorPassword, resultFailure)
		h.audit(r, audit.LoginFailed, username, "unknown user")
		if !h.failed(w, r, a, page) {
			h.loginFailed(w, r, shown, rd, msgBadLogin, http.StatusUnauthorized)
		}
		return
	case err != nil:
		h.d.Passwords.VerifyDummy(pw)
		_ = a.Cancel(ctx)
		h.log(r).Error().Err(err).Msg("login: user lookup failed")
		h.attempt(factorPassword, resultError)
		h.loginFailed(w, r, shown, rd, msgUnavailable, http.StatusServiceUnavailable)
		return
	}
	ok, err := h.d.Passwords.Verify(u.PasswordHash, pw)
	if err != nil || !ok {
		reason := "wrong_password"
		if err != nil {
			reason = "unusable_password_hash"
			h.log(r).Error().Err(err).Str("user", username).Msg("login: stored password hash unusable")
		}
		h.decision(r, username, "", "deny", reason)
		h.attempt(factorPassword, resultFailure)
		h.audit(r, audit.LoginFailed, username, strings.ReplaceAll(reason, "_", " "))
		if !h.failed(w, r, a, page) {
			h.loginFailed(w, r, shown, rd, msgBadLogin, http.StatusUnauthorized)
		}
		return
	}
	h.passed(r, a)
	if h.d.Passwords.NeedsRehash(u.PasswordHash) {
		h.rehash(r, u.Name, u.PasswordHash, pw)
	}
	vals, err := h.d.Settings.Current(ctx)
	if err != nil {
		h.log(r).Error().Err(err).Msg("login: settings unavailable")
		h.attempt(factorPassword, resultError)
		h.loginFailed(w, r, shown, rd, msgUnavailable, http.StatusServiceUnavailable)
		return
	}

	tmpl := store.Session{User: u.Name, Stage: store.StageFull, UserEpoch: u.AuthEpoch, Mode: vals.Mode}
	next := rd
	if needsSecondFactor(vals.Mode, u) {
		tmpl.Stage = store.StagePending
		tmpl.Redirect = rd
		next = auth.VerifyPage
		if !u.HasSecondFactor() {
			next = auth.EnrollPage
		}
	}
	id, s, err := h.newSession(r, tmpl)
	if err != nil {
		h.log(r).Error().Err(err).Msg("login: session create failed")
		h.attempt(factorPassword, resultError)
		h.loginFailed(w, r, shown, rd, msgUnavailable, http.StatusServiceUnavailable)
		return
	}
	h.d.Sessions.SetCookie(w, id, s, secure(r))
	h.attempt(factorPassword, resultSuccess)
	if s.Stage == store.StageFull {
		h.decision(r, u.Name, "", "login", "password")
		h.succeeded(r, u.Name)
		h.audit(r, audit.Login, u.Name, "password only")
	} else {
		h.decision(r, u.Name, "", "pending", "second_factor_owed")
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// newSession creates the session of a sign-in from tmpl, with the
// client's address and browser: a new id at every sign-in, and any
// session this browser had ends.
func (h *Handler) newSession(r *http.Request, tmpl store.Session) (string, store.Session, error) {
	if _, old, err := h.d.Sessions.FromRequest(r, secure(r)); err == nil {
		_ = h.d.Sessions.Destroy(r.Context(), old.IDHash)
	}
	tmpl.IP = client(r).IP.String()
	tmpl.UserAgent = truncate(r.UserAgent(), 256)
	return h.d.Sessions.Create(r.Context(), tmpl)
}

// rehash upgrades an imported (bcrypt) or outdated hash to the current
// argon2id parameters after a successful login. Failure only logs.
func (h *Handler) rehash(r *http.Request, name, old, pw string) {
	nh, err := h.d.Passwords.Hash(pw)
	if err != nil {
		h.log(r).Warn().Err(err).Str("user", name).Msg("password rehash failed")
		return
	}
	_, err = h.d.Users.UpdateUser(r.Context(), name, func(u *store.User) error {
		if u.PasswordHash != old {
			return errUnchanged
		}
		u.PasswordHash = nh
		u.UpdatedAt = h.d.Now().UTC()
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		h.log(r).Warn().Err(err).Str("user", name).Msg("password rehash not stored")
	}
}

var errUnchanged = errors.New("signin: password changed meanwhile")

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) && len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s
}

// currentSession loads the caller's session as it is (the logout pages).
func (h *Handler) currentSession(r *http.Request) (string, store.Session, error) {
	return h.d.Sessions.FromRequest(r, secure(r))
}
