package account

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/authgate/authgate/gateway/audit"
	"github.com/authgate/authgate/gateway/auth"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/templates"
)

// pageConfirm is the generic confirmation page (templates/confirm.html).
const pageConfirm = "confirm"

// heldCodesAAD binds sealed recovery codes to their user and purpose, so
// they can never be opened as anything else (e.g. a TOTP secret).
func heldCodesAAD(user string) []byte {
	return []byte("authgate recovery codes for download\x00" + user)
}

// heldCodesPayload is what the session holds, sealed, after generation.
type heldCodesPayload struct {
	// At is the user's RecoveryCodesAt when the codes were made: codes
	// replaced since (elsewhere, or by an admin) are not offered.
	At    time.Time `json:"at"`
	Codes []string  `json:"codes"`
}

// codesTime is the RecoveryCodesAt stored for codes made at now: stores
// keep milliseconds, so the held copy can be matched exactly.
func codesTime(now time.Time) time.Time { return now.UTC().Truncate(time.Millisecond) }

func (h *Handler) sealCodes(u store.User, codes []string) ([]byte, error) {
	b, err := json.Marshal(heldCodesPayload{At: u.RecoveryCodesAt, Codes: codes})
	if err != nil {
		return nil, fmt.Errorf("account: encode recovery codes: %w", err)
	}
	defer clear(b)
	sealed, err := h.d.Box.Seal(b, heldCodesAAD(u.Name))
	if err != nil {
		return nil, fmt.Errorf("account: seal recovery codes: %w", err)
	}
	return sealed, nil
}

// heldCodes returns the just-generated codes held in the session while
// they are still downloadable: younger than DownloadFor and still the
// user's current codes.
func (h *Handler) heldCodes(c auth.Current) ([]string, bool) {
	sealed := c.Session.RecoveryCodesSealed
	if len(sealed) == 0 || c.User.RecoveryCodesAt.IsZero() {
		return nil, false
	}
	b, err := h.d.Box.Open(sealed, heldCodesAAD(c.User.Name))
	if err != nil {
		return nil, false
	}
	defer clear(b)
	var p heldCodesPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, false
	}
	if !p.At.Equal(c.User.RecoveryCodesAt) || !h.now().Before(p.At.Add(h.o.DownloadFor)) {
		return nil, false
	}
	return p.Codes, true
}

// generate makes new recovery codes (replacing all old ones, after a
// confirmation when some are left) and shows them once.
func (h *Handler) generate(w http.ResponseWriter, r *http.Request, c auth.Current) {
	u := c.User
	if !u.HasSecondFactor() {
		redirectDone(w, r, "not-enrolled")
		return
	}
	// Recovery codes are a second factor: only a session that passed one
	// may make them.
	if h.needSecondFactor(w, r, c, PathOverview) {
		return
	}
	if len(u.RecoveryCodes) > 0 && r.PostForm.Get("confirm") != "1" {
		h.d.Pages.Render(w, r, http.StatusOK, pageConfirm, templates.ConfirmPage{
			Common:       h.common(r, "Regenerate recovery codes"),
			Nav:          nav(c),
			Question:     fmt.Sprintf("Make 10 new recovery codes? The %s you have now will stop working.", plural(len(u.RecoveryCodes), "unused code")),
			Action:       PathGenerate,
			ConfirmLabel: "Make new codes",
			CancelURL:    PathOverview,
			Danger:       true,
		})
		return
	}
	h.issueCodes(w, r, c, "", func(*store.User) error { return nil })
}

// errHadCodes stops the first-codes step for a user who already had codes.
var errHadCodes = errors.New("account: recovery codes were issued before")

// firstCodes gives a user who just set up 2FA at sign-in their first
// recovery codes. It is a GET (it follows the enrolment redirect) but
// changes nothing for a user who ever had codes, so it cannot be used to
// replace anyone's codes.
func (h *Handler) firstCodes(w http.ResponseWriter, r *http.Request, c auth.Current) {
	next := h.nextURL(r, r.URL.Query().Get("rd"))
	if next == "" {
		next = PathOverview
	}
	if !c.User.HasSecondFactor() || !c.User.RecoveryCodesAt.IsZero() || !c.Session.TwoFactor {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	h.issueCodes(w, r, c, next, func(x *store.User) error {
		if !x.RecoveryCodesAt.IsZero() {
			return errHadCodes
		}
		return nil
	})
}

// issueCodes makes, stores and shows a new set of codes; check may veto
// inside the atomic update. continueURL is where the page leads on.
func (h *Handler) issueCodes(w http.ResponseWriter, r *http.Request, c auth.Current, continueURL string, check func(*store.User) error) {
	ctx := r.Context()
	u := c.User
	codes, hashes, err := h.d.Recovery.Generate(u.Name)
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	now := h.now()
	nu, err := h.d.Users.UpdateUser(ctx, u.Name, func(x *store.User) error {
		if x.AuthEpoch != c.Session.UserEpoch {
			return errAccountMoved
		}
		if !x.HasSecondFactor() {
			return errNoTOTP
		}
		if err := check(x); err != nil {
			return err
		}
		x.RecoveryCodes = append([]string(nil), hashes...)
		x.RecoveryCodesAt = codesTime(now)
		x.UpdatedAt = now
		return nil
	})
	if errors.Is(err, errNoTOTP) {
		redirectDone(w, r, "not-enrolled")
		return
	}
	if errors.Is(err, errHadCodes) {
		http.Redirect(w, r, continueURL, http.StatusSeeOther)
		return
	}
	if h.accountMoved(w, r, c, err) {
		return
	}
	if err != nil {
		h.d.Pages.RenderError(w, r, unavailable(err))
		return
	}
	detail := "first codes"
	if !u.RecoveryCodesAt.IsZero() {
		detail = fmt.Sprintf("replaced %d unused", len(u.RecoveryCodes))
	}
	h.record(r, c, audit.RecoveryGenerated, detail)
	held, err := h.sealCodes(nu, codes)
	if err == nil {
		s := c.Session
		s.RecoveryCodesSealed = held
		err = h.d.SessionManager.Save(ctx, s)
	}
	if err != nil {
		// The codes are stored and shown now; only the download is lost.
		h.log(r).Error().Err(err).Msg("account: recovery codes not held for download")
		held = nil
	}
	h.renderCodes(w, r, auth.Current{Session: c.Session, User: nu}, codes, held != nil, !u.RecoveryCodesAt.IsZero(), continueURL, "")
}

func (h *Handler) renderCodes(w http.ResponseWriter, r *http.Request, c auth.Current, codes []string, downloadable, replaced bool, continueURL, notice string) {
	d := templates.RecoveryCodesPage{
		Common:      h.common(r, "Your recovery codes"),
		Nav:         nav(c),
		User:        c.User.Name,
		Codes:       codes,
		ContinueURL: continueURL,
		Replaced:    replaced,
	}
	if downloadable {
		d.DownloadURL = PathDownload
		d.DownloadMinutes = int(h.o.DownloadFor / time.Minute)
	}
	d.Notice = notice
	h.d.Pages.Render(w, r, http.StatusOK, templates.PageRecoveryCodes, d)
}

// download returns the codes just generated in this session as a text
// file, for a short while only.
func (h *Handler) download(w http.ResponseWriter, r *http.Request, c auth.Current) {
	codes, ok := h.heldCodes(c)
	if !ok {
		if len(c.Session.RecoveryCodesSealed) > 0 {
			s := c.Session
			s.RecoveryCodesSealed = nil
			if err := h.d.SessionManager.Save(r.Context(), s); err != nil {
				h.log(r).Warn().Err(err).Msg("account: expired recovery codes not dropped from the session")
			}
		}
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusNotFound, msgCodesGone, nil))
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Recovery codes for %s (authgate)\r\n", printable(c.User.Name))
	fmt.Fprintf(&b, "Generated %s\r\n", c.User.RecoveryCodesAt.UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("Each code signs you in once instead of a code from your authenticator app.\r\n\r\n")
	for _, code := range codes {
		b.WriteString(code)
		b.WriteString("\r\n")
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Content-Disposition", `attachment; filename="`+downloadFilename+`"`)
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(b.String()))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// printable drops control characters (a name never breaks a line of the
// text file).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}
