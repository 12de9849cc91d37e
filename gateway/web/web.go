// Package web renders the gateway's own pages and its errors: templates
// parsed once at start, rendered to a buffer, then written with the status.
package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/middleware"
	"github.com/authgate/authgate/templates"
)

// Error is an HTTP error with a public message and a private cause. Only
// Message reaches the client; Cause goes to the log.
type Error struct {
	Status  int
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Message, e.Cause)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf builds an *Error.
func Errorf(status int, public string, cause error) *Error {
	return &Error{Status: status, Message: public, Cause: cause}
}

// Renderer renders named pages.
type Renderer struct {
	pages map[string]*template.Template
}

// NewRenderer takes the parsed pages (templates.ParsePages).
func NewRenderer(pages map[string]*template.Template) (*Renderer, error) {
	for _, name := range templates.PageNames {
		if pages[name] == nil {
			return nil, fmt.Errorf("web: page %q missing", name)
		}
	}
	return &Renderer{pages: pages}, nil
}

// Render writes page name with data and status. A template failure is
// logged and becomes a plain 500 (the buffer keeps half pages off the wire).
func (rd *Renderer) Render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t := rd.pages[name]
	var buf bytes.Buffer
	if t == nil {
		rd.fail(w, r, fmt.Errorf("web: no page %q", name))
		return
	}
	if err := t.ExecuteTemplate(&buf, templates.LayoutName, data); err != nil {
		rd.fail(w, r, fmt.Errorf("web: render %s: %w", name, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func (rd *Renderer) fail(w http.ResponseWriter, r *http.Request, err error) {
	zerolog.Ctx(r.Context()).Error().Err(err).Msg("page render failed")
	http.Error(w, "Internal Server Error", http.StatusInternalServerError)
}

// RenderError renders err as the error page. An *Error keeps its status and
// public message; anything else is a 500 with a generic message. The cause
// is logged, never shown.
func (rd *Renderer) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	var he *Error
	if !errors.As(err, &he) {
		he = &Error{Status: http.StatusInternalServerError, Message: "Something went wrong on our side. Please try again.", Cause: err}
	}
	ev := zerolog.Ctx(r.Context()).Warn()
	if he.Status >= 500 {
		ev = zerolog.Ctx(r.Context()).Error()
	}
	if he.Cause != nil {
		ev = ev.AnErr("cause", he.Cause)
	}
	ev.Int("status", he.Status).Msg(he.Message)
	rd.Render(w, r, he.Status, "error", templates.ErrorPage{
		Common:    templates.Common{Title: http.StatusText(he.Status), Product: templates.Product},
		Status:    he.Status,
		Message:   he.Message,
		RequestID: middleware.RequestIDFrom(r.Context()),
		// Every error page offers a way on: the start page (which signs
		// in again when needed).
		BackURL: "/",
	})
}

// JSON writes body (already JSON) with status: the answers the gateway's
// script (passkey.js) reads.
func JSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// JSONError answers a script's request that cannot go on:
// {"error": msg, "redirect": redirect}, redirect omitted when "" (where
// the page should go instead, e.g. to sign in again).
func JSONError(w http.ResponseWriter, status int, msg, redirect string) {
	b, _ := json.Marshal(struct {
		Error    string `json:"error"`
		Redirect string `json:"redirect,omitempty"`
	}{msg, redirect})
	JSON(w, status, b)
}
