package middleware

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRecover(t *testing.T) {
	render := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "rendered 500 ref "+RequestIDFrom(r.Context()))
	}
	tests := []struct {
		name       string
		render     func(http.ResponseWriter, *http.Request)
		handler    http.HandlerFunc
		wantStatus int
		wantBody   string
		wantHeader map[string]string // "" means absent
	}{
		{
			name:   "panic before headers renders 500",
			render: render,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Set-Cookie", "half=done")
				w.Header().Set("Location", "/elsewhere")
				w.Header().Set("Content-Security-Policy", "default-src 'none'")
				panic("boom")
			},
			wantStatus: 500,
			wantBody:   "rendered 500 ref ",
			wantHeader: map[string]string{
				"Set-Cookie": "", "Location": "",
				"Content-Security-Policy": "default-src 'none'",
				"Cache-Control":           "no-store",
				"Content-Type":            "text/html; charset=utf-8",
			},
		},
		{
			name:       "nil render gives plain 500",
			handler:    func(w http.ResponseWriter, r *http.Request) { panic(42) },
			wantStatus: 500,
			wantBody:   "500 internal server error",
		},
		{
			name:       "no panic passes through",
			render:     render,
			handler:    func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) },
			wantStatus: http.StatusTeapot,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, logs := newTestLogger()
			h := chain(tt.handler, RequestID(), Logger(base), Recover(tt.render))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if !strings.HasPrefix(rec.Body.String(), tt.wantBody) {
				t.Errorf("body %q, want prefix %q", rec.Body.String(), tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			evs := logs.events(t)
			acc := logs.requestEvents(t)
			if len(acc) != 1 || acc[0]["status"] != float64(tt.wantStatus) {
				t.Fatalf("access events %v", acc)
			}
			if tt.wantStatus != 500 {
				if len(evs) != 1 {
					t.Errorf("unexpected extra log events %v", evs)
				}
				return
			}
			if acc[0]["result"] != "panic" {
				t.Errorf("result = %v", acc[0]["result"])
			}
			pe := evs[0]
			stack, _ := pe["stack"].(string)
			if pe["level"] != "error" || pe["request_id"] == "" || pe["path"] != "/x" ||
				!strings.Contains(stack, "recover_test.go") {
				t.Errorf("panic event %v", pe)
			}
		})
	}
}

func TestRecoverRepanicsErrAbortHandler(t *testing.T) {
	base, logs := newTestLogger()
	rendered := false
	h := chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}), Logger(base), Recover(func(http.ResponseWriter, *http.Request) { rendered = true }))
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", p)
		}
		if rendered {
			t.Error("rendered an error page for ErrAbortHandler")
		}
		for _, e := range logs.events(t) {
			if e["message"] == "panic serving request" {
				t.Error("ErrAbortHandler logged as a panic")
			}
		}
		// Regression: a WebSocket the panel refused, whose client left
		// while ReverseProxy copied the refusal, was logged as
		// "panicked": true: an abort on purpose is "aborted".
		acc := logs.requestEvents(t)
		if len(acc) != 1 || acc[0]["aborted"] != true || acc[0]["panicked"] != nil {
			t.Errorf("access events %v; want one with aborted and without panicked", acc)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}

// After the header is out, Recover cannot render: it logs and aborts the
// connection so the client sees a truncated response.
func TestRecoverAfterHeadersAbortsConnection(t *testing.T) {
	base, logs := newTestLogger()
	rendered := false
	srv := httptest.NewServer(chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("late boom")
	}), RequestID(), Logger(base), Recover(func(http.ResponseWriter, *http.Request) { rendered = true })))
	srv.Config.ErrorLog = nil
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("read full body %q without error; want truncated", body)
	}
	waitFor(t, func() bool { return len(logs.requestEvents(t)) == 1 })
	if rendered {
		t.Error("render called after headers were sent")
	}
	var sawPanic bool
	for _, e := range logs.events(t) {
		if e["message"] == "panic serving request" && e["headers_sent"] == true && e["panic"] == "late boom" {
			sawPanic = true
		}
	}
	if !sawPanic {
		t.Errorf("panic not logged: %s", logs)
	}
	// A real panic turned into an abort is still a panic in the access log.
	if acc := logs.requestEvents(t); acc[0]["panicked"] != true || acc[0]["aborted"] != nil {
		t.Errorf("access event %v; want panicked, not aborted", acc[0])
	}
}
