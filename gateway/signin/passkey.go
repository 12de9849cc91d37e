package signin

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/passkey"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// Passkey pages: the ceremony's begin steps answer JSON to passkey.js;
// the finish steps are ordinary form posts (the second factor's to
// auth.VerifyPage, field "passkey").
const (
	PasskeyBeginPage        = "/.authgate/passkey/begin"
	PasskeyEnrollBeginPage  = "/.authgate/passkey/enroll/begin"
	PasswordlessBeginPage   = "/.authgate/passkey/passwordless/begin"
	PasswordlessSignInPage  = "/.authgate/passkey/signin"
	passkeyCookiePath       = "/.authgate/passkey/"
	passkeyCookieName       = "authgate_passkey"
	msgBadPasskey           = "The security key or passkey was not accepted."
	msgPasskeyNotRegistered = "The security key or passkey could not be registered. Please try again."
	msgPasskeyUnavailable   = "Passkeys cannot be used here."
	msgPasskeySessionExpire = "Your sign-in has expired. Please sign in again."
)

// errPasskeyRefused marks a refused passkey answer for codeFailed.
var errPasskeyRefused = errors.New("signin: passkey refused")

// Passkeys runs the passkey ceremonies (a *passkey.Service).
type Passkeys interface {
	BeginRegistration(u store.User, name string) (passkey.Begin, error)
	FinishRegistration(u store.User, sealed, answer []byte) (passkey.Registered, error)
	BeginLogin(u store.User) (passkey.Begin, error)
	FinishLogin(u store.User, sealed, answer []byte) (passkey.Use, error)
	Passwordless() bool
	BeginPasswordless() (passkey.Begin, error)
	FinishPasswordless(ctx context.Context, sealed, answer []byte, lookup passkey.Lookup) (store.User, passkey.Use, error)
}

// passkeyBegin starts a second-factor use of one of the user's keys
// (pending sign-in or step-up).
func (h *Handler) passkeyBegin(w http.ResponseWriter, r *http.Request) {
	h.beginInSession(w, r, func(u store.User) (passkey.Begin, bool) {
		if len(u.Passkeys) == 0 {
			web.JSONError(w, http.StatusConflict, "No security key or passkey is registered to this account.", "")
			return passkey.Begin{}, false
		}
		return h.began(w, r, u, h.d.Passkeys.BeginLogin)
	})
}

// beginInSession is the begin step of a ceremony kept in the session:
// it loads the session and its user, lets begin make the options (or
// answer the request itself, reporting false), stores the challenge in
// the session and sends the options to passkey.js.
func (h *Handler) beginInSession(w http.ResponseWriter, r *http.Request, begin func(store.User) (passkey.Begin, bool)) {
	if h.d.Passkeys == nil {
		web.JSONError(w, http.StatusNotFound, msgPasskeyUnavailable, "")
		return
	}
	if err := r.ParseForm(); err != nil {
		web.JSONError(w, http.StatusBadRequest, "The request could not be understood.", "")
		return
	}
	sg, err := h.d.Loader.SignedIn(r, secure(r))
	if err != nil {
		if !isNoSession(err) {
			h.log(r).Error().Err(err).Msg("passkey: session unavailable")
			web.JSONError(w, http.StatusServiceUnavailable, msgUnavailable, "")
			return
		}
		web.JSONError(w, http.StatusUnauthorized, msgPasskeySessionExpire, auth.LoginPage)
		return
	}
	b, ok := begin(sg.User)
	if !ok {
		return
	}
	s := sg.Session
	s.PasskeyChallenge = b.State
	if err := h.d.Sessions.Save(r.Context(), s); err != nil {
		if isNoSession(err) {
			web.JSONError(w, http.StatusUnauthorized, msgPasskeySessionExpire, auth.LoginPage)
			return
		}
		h.log(r).Error().Err(err).Msg("passkey: challenge not stored")
		web.JSONError(w, http.StatusServiceUnavailable, msgUnavailable, "")
		return
	}
	web.JSON(w, http.StatusOK, b.Options)
}

// began runs one of the service's begin steps for u; a failure is
// answered (503) and reported false.
func (h *Handler) began(w http.ResponseWriter, r *http.Request, u store.User, begin func(store.User) (passkey.Begin, error)) (passkey.Begin, bool) {
	b, err := begin(u)
	if err != nil {
		h.log(r).Error().Err(err).Str("user", u.Name).Msg("passkey: ceremony not started")
		web.JSONError(w, http.StatusServiceUnavailable, msgUnavailable, "")
		return passkey.Begin{}, false
	}
	return b, true
}

// passkeySubmit finishes a second-factor use: the answer is checked
// against the challenge held in the session, inside a reserved attempt,
// and the session moves on (which spends the challenge) while the key's
// counter is stored.
func (h *Handler) passkeySubmit(w http.ResponseWriter, r *http.Request) {
	s, u, rd, a := h.secondFactorSubmit(w, r, factorPasskey)
	if a == nil {
		return
	}
	if h.d.Passkeys == nil || len(u.Passkeys) == 0 {
		_ = a.Cancel(r.Context())
		h.renderVerify(w, r, s, u, rd, msgPasskeyUnavailable, http.StatusBadRequest)
		return
	}
	use, err := h.d.Passkeys.FinishLogin(u, s.PasskeyChallenge, passkey.Answer(r.PostForm.Get("passkey")))
	if err != nil {
		h.passkeyRefused(r, u.Name, err)
		h.codeFailed(w, r, s, a, u, "passkey", rd, fmt.Errorf("%w: %w", errPasskeyRefused, err))
		return
	}
	h.passed(r, a)
	now := h.d.Now().UTC()
	record := func(ctx context.Context) (int64, error) {
		_, err := h.d.Users.UpdateUser(ctx, u.Name, func(x *store.User) error {
			if x.AuthEpoch != s.UserEpoch {
				return errAccountMoved
			}
			return passkey.Record(x, use, now)
		})
		if errors.Is(err, passkey.ErrCloned) || errors.Is(err, passkey.ErrRefused) {
			// Another answer with this counter was recorded first, or
			// the key was removed meanwhile: this sign-in is void.
			h.passkeyRefused(r, u.Name, err)
			return 0, fmt.Errorf("%w: %w", errAccountMoved, err)
		}
		return s.UserEpoch, err
	}
	h.completeLogin(w, r, s, rd, "passkey", 0, record)
}

// passkeyEnrollBegin starts registering a key as the account's first
// second factor at sign-in (instead of an authenticator app).
func (h *Handler) passkeyEnrollBegin(w http.ResponseWriter, r *http.Request) {
	h.beginInSession(w, r, func(u store.User) (passkey.Begin, bool) {
		if u.HasSecondFactor() {
			web.JSONError(w, http.StatusConflict, "This account has a second factor already.", auth.VerifyPage)
			return passkey.Begin{}, false
		}
		name, ok := passkey.CleanName(r.PostForm.Get("name"))
		if !ok {
			web.JSONError(w, http.StatusBadRequest, "Give the key a name of at most 64 characters.", "")
			return passkey.Begin{}, false
		}
		return h.began(w, r, u, func(u store.User) (passkey.Begin, error) { return h.d.Passkeys.BeginRegistration(u, name) })
	})
}

// passkeyEnrollSubmit finishes registering the account's first key at
// sign-in: like an enrolment, the key is stored (and the account's epoch
// moved on) only as part of moving this session to a complete one, and
// the user goes on to the first recovery codes.
func (h *Handler) passkeyEnrollSubmit(w http.ResponseWriter, r *http.Request) {
	s, u, rd, a := h.secondFactorSubmit(w, r, factorPasskey)
	if a == nil {
		return
	}
	if u.HasSecondFactor() {
		_ = a.Cancel(r.Context())
		http.Redirect(w, r, auth.VerifyPage+rdQuery(rd), http.StatusSeeOther)
		return
	}
	if h.d.Passkeys == nil {
		_ = a.Cancel(r.Context())
		h.renderEnroll(w, r, s, u.Name, rd, msgPasskeyUnavailable, http.StatusNotFound)
		return
	}
	reg, err := h.d.Passkeys.FinishRegistration(u, s.PasskeyChallenge, passkey.Answer(r.PostForm.Get("passkey")))
	if err != nil {
		h.passkeyRefused(r, u.Name, err)
		h.codeFailed(w, r, s, a, u, "enroll", rd, fmt.Errorf("%w: %w", errPasskeyRefused, err))
		return
	}
	h.passed(r, a)
	now := h.d.Now().UTC()
	saveKey := func(ctx context.Context) (int64, error) {
		nu, err := h.d.Users.UpdateUser(ctx, u.Name, func(x *store.User) error {
			if x.HasSecondFactor() || x.AuthEpoch != s.UserEpoch {
				return errAccountMoved
			}
			if err := passkey.Add(x, reg); err != nil {
				return fmt.Errorf("%w: %w", errAccountMoved, err)
			}
			x.UpdatedAt = now
			x.AuthEpoch++ // every other session of the account ends
			return nil
		})
		if err != nil {
			return 0, err
		}
		h.audit(r, audit.PasskeyAdded, u.Name, "at sign-in: "+reg.Key.Name)
		return nu.AuthEpoch, nil
	}
	h.completeLogin(w, r, s, auth.FirstRecoveryCodesPage+"?rd="+url.QueryEscape(rd), "enrolled", 0, saveKey)
}

// passkeyRefused logs a refused answer and audits a counter that went
// backwards (a possibly cloned key).
func (h *Handler) passkeyRefused(r *http.Request, user string, err error) {
	h.log(r).Info().Err(err).Str("user", user).Msg("passkey answer refused")
	if errors.Is(err, passkey.ErrCloned) {
		h.audit(r, audit.PasskeyRefused, user, "signature counter did not go up: the key may have been copied")
	}
}

// passwordlessBegin starts a sign-in with a passkey alone. There is no
// session yet: the ceremony's sealed state goes into a short-lived
// cookie scoped to the passkey pages, and its challenge is spent in the
// store when answered.
func (h *Handler) passwordlessBegin(w http.ResponseWriter, r *http.Request) {
	if h.d.Passkeys == nil || !h.d.Passkeys.Passwordless() {
		web.JSONError(w, http.StatusNotFound, msgPasskeyUnavailable, "")
		return
	}
	b, err := h.d.Passkeys.BeginPasswordless()
	if err != nil {
		h.log(r).Error().Err(err).Msg("passkey: begin passwordless failed")
		web.JSONError(w, http.StatusServiceUnavailable, msgUnavailable, "")
		return
	}
	http.SetCookie(w, h.passkeyCookie(r, b.State))
	web.JSON(w, http.StatusOK, b.Options)
}

// passkeyCookieNameFor is the passwordless ceremony cookie's name:
// __Secure- over HTTPS.
func passkeyCookieNameFor(r *http.Request) string {
	if secure(r) {
		return "__Secure-" + passkeyCookieName
	}
	return passkeyCookieName
}

// passkeyCookie is the passwordless ceremony cookie holding state; nil
// state deletes it.
func (h *Handler) passkeyCookie(r *http.Request, state []byte) *http.Cookie {
	c := &http.Cookie{Name: passkeyCookieNameFor(r), Path: passkeyCookiePath, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)}
	if state == nil {
		c.MaxAge = -1
		return c
	}
	c.Value = encodeState(state)
	c.MaxAge = int((10 * time.Minute).Seconds())
	return c
}

// passwordlessSubmit finishes a sign-in with a passkey alone: the
// attempt is reserved (by address: the account is not known yet), the
// challenge spent, the key checked with user verification, its counter
// stored, and a complete session created that has passed a second
// factor (the key proves possession, its PIN or biometric the user).
func (h *Handler) passwordlessSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.d.Pages.RenderError(w, r, badRequest(err))
		return
	}
	rd := h.redirectTarget(r, r.PostForm.Get("rd"))
	page := func(status int, msg string) { h.loginFailed(w, r, "", rd, msg, status) }
	if h.d.Passkeys == nil || !h.d.Passkeys.Passwordless() {
		page(http.StatusNotFound, msgPasskeyUnavailable)
		return
	}
	a := h.reserve(w, r, factorPasskey, "", nil, page)
	if a == nil {
		return
	}
	http.SetCookie(w, h.passkeyCookie(r, nil)) // one answer per ceremony
	var sealed []byte
	if c, err := r.Cookie(passkeyCookieNameFor(r)); err == nil {
		sealed = decodeState(c.Value)
	}
	ctx := r.Context()
	u, use, err := h.d.Passkeys.FinishPasswordless(ctx, sealed, passkey.Answer(r.PostForm.Get("passkey")), h.d.PasskeyOwner)
	if err != nil && !errors.Is(err, passkey.ErrChallenge) && !errors.Is(err, passkey.ErrRefused) && !errors.Is(err, passkey.ErrCloned) {
		_ = a.Cancel(ctx)
		h.log(r).Error().Err(err).Msg("passwordless sign-in could not be checked")
		h.attempt(factorPasskey, resultError)
		page(http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	if err == nil {
		now := h.d.Now().UTC()
		_, err = h.d.Users.UpdateUser(ctx, u.Name, func(x *store.User) error {
			if x.AuthEpoch != u.AuthEpoch {
				return errAccountMoved
			}
			return passkey.Record(x, use, now)
		})
	}
	if err != nil {
		h.passkeyRefused(r, u.Name, err)
		h.decision(r, u.Name, "", "deny", "passkey_refused")
		h.attempt(factorPasskey, resultFailure)
		if u.Name != "" {
			h.audit(r, audit.LoginFailed, u.Name, "passkey refused")
		}
		if !h.failed(w, r, a, page) {
			page(http.StatusUnauthorized, msgBadPasskey)
		}
		return
	}
	h.passed(r, a)
	vals, err := h.d.Settings.Current(ctx)
	if err != nil {
		h.log(r).Error().Err(err).Msg("passwordless: settings unavailable")
		h.attempt(factorPasskey, resultError)
		page(http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	id, s, err := h.newSession(r, store.Session{User: u.Name, Stage: store.StageFull, TwoFactor: true, UserEpoch: u.AuthEpoch, Mode: vals.Mode})
	if err != nil {
		h.log(r).Error().Err(err).Msg("passwordless: session create failed")
		h.attempt(factorPasskey, resultError)
		page(http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	h.d.Sessions.SetCookie(w, id, s, secure(r))
	h.attempt(factorPasskey, resultSuccess)
	h.decision(r, u.Name, "", "login", "passkey")
	h.succeeded(r, u.Name)
	h.audit(r, audit.Login, u.Name, "passkey without password")
	middleware.SetUser(ctx, u.Name)
	http.Redirect(w, r, rd, http.StatusSeeOther)
}

// script serves passkey.js.
func (h *Handler) script(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "passkey.js", time.Time{}, bytes.NewReader(templates.PasskeyScript()))
}

func encodeState(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeState reads a passkey cookie; nil when it is not ours.
func decodeState(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}
