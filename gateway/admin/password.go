package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/authgate/authgate/gateway/web"
	"github.com/authgate/authgate/templates"
)

// tempAlphabet has no look-alike characters (0/O, 1/l/I) so a temporary
// password can be read out or copied by hand.
const tempAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// TempPasswordLen is the length of a temporary password (≈93 bits).
const TempPasswordLen = 16

// tempPassword returns TempPasswordLen characters drawn uniformly from
// tempAlphabet (rejection sampling, so no character is more likely).
func tempPassword(rnd io.Reader) (string, error) {
	const n = len(tempAlphabet)
	limit := byte(256 - 256%n)
	out := make([]byte, 0, TempPasswordLen)
	buf := make([]byte, 32)
	for len(out) < TempPasswordLen {
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return "", fmt.Errorf("admin: read random bytes: %w", err)
		}
		for _, b := range buf {
			if b >= limit {
				continue
			}
			out = append(out, tempAlphabet[int(b)%n])
			if len(out) == TempPasswordLen {
				break
			}
		}
	}
	return string(out), nil
}

// errNoHold is the cause when the admin area was built without what
// holds a reset's result (Deps.Sessions, Deps.Box).
var errNoHold = errors.New("admin: no session store or box to hold a temporary password")

// heldReset is what the admin's session holds, sealed, between a reset
// and the page that shows its temporary password once.
type heldReset struct {
	User     string    `json:"user"`
	Password string    `json:"password"`
	At       time.Time `json:"at"`
	// Back is the users view the reset came from.
	Back string `json:"back,omitempty"`
}

// heldResetAAD binds the sealed result to its purpose and to the admin
// it was made for.
func heldResetAAD(admin string) []byte {
	return []byte("authgate admin temporary password\x00" + admin)
}

// holdReset keeps res, sealed, in the signed-in admin's session.
func (h *Handler) holdReset(r *http.Request, res heldReset) error {
	if h.d.Sessions == nil || h.d.Box == nil {
		return errNoHold
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("admin: encode reset result: %w", err)
	}
	defer clear(b)
	sealed, err := h.d.Box.Seal(b, heldResetAAD(current(r).User.Name))
	if err != nil {
		return fmt.Errorf("admin: seal reset result: %w", err)
	}
	return h.setHeld(r, sealed)
}

// setHeld writes the admin's session back holding sealed (nil: nothing).
func (h *Handler) setHeld(r *http.Request, sealed []byte) error {
	if h.d.Sessions == nil {
		return errNoHold
	}
	s := current(r).Session
	s.AdminResultSealed = sealed
	if err := h.d.Sessions.Save(r.Context(), s); err != nil {
		return fmt.Errorf("admin: write the held reset result: %w", err)
	}
	return nil
}

// takeReset returns the reset result the admin's session holds, if it is
// still young enough to show, and removes it from the session first: it
// is shown at most once. ok is false when there is nothing to show.
func (h *Handler) takeReset(r *http.Request) (res heldReset, ok bool, err error) {
	c := current(r)
	sealed := c.Session.AdminResultSealed
	if len(sealed) == 0 {
		return heldReset{}, false, nil
	}
	// Removed before it is shown: if the removal fails, nothing is shown
	// now and a reload may still show it (once).
	if err := h.setHeld(r, nil); err != nil {
		return heldReset{}, false, err
	}
	if h.d.Box == nil {
		return heldReset{}, false, nil
	}
	b, err := h.d.Box.Open(sealed, heldResetAAD(c.User.Name))
	if err != nil {
		return heldReset{}, false, nil
	}
	defer clear(b)
	if err := json.Unmarshal(b, &res); err != nil || res.Password == "" {
		return heldReset{}, false, nil
	}
	if age := h.d.Now().Sub(res.At); age < 0 || age >= h.o.ResultFor {
		return heldReset{}, false, nil
	}
	return res, true, nil
}

// tempPasswordPage shows the temporary password of the reset that
// redirected here, once; a reload, another browser or another admin sees
// that it is gone.
func (h *Handler) tempPasswordPage(w http.ResponseWriter, r *http.Request) {
	res, ok, err := h.takeReset(r)
	if err != nil {
		h.d.Pages.RenderError(w, r, web.Errorf(http.StatusServiceUnavailable, "The temporary password cannot be shown right now. Please reload this page.", err))
		return
	}
	p := templates.AdminTempPasswordPage{
		Common:   h.common(r, "Temporary password"),
		Nav:      h.nav(r, "users"),
		BackURL:  UsersPath,
		ShownFor: max(1, int(h.o.ResultFor/time.Minute)),
	}
	if !ok {
		h.d.Pages.Render(w, r, http.StatusGone, templates.PageAdminTempPassword, p)
		return
	}
	p.User, p.Password = res.User, res.Password
	if v, err := url.ParseQuery(res.Back); err == nil {
		p.BackURL = parseView(v).url(nil)
	}
	h.d.Pages.Render(w, r, http.StatusOK, templates.PageAdminTempPassword, p)
}
