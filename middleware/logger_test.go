package middleware

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLoggerAccessEvent(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name       string
		realClient string // "", "before", "after" Logger
		handler    http.HandlerFunc
		want       map[string]any
		absent     []string
	}{
		{
			name:    "nothing written is a 200",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			want:    map[string]any{"status": 200.0, "bytes": 0.0, "client_ip": "10.1.2.3", "host": "gate.example"},
			absent:  []string{"route", "user", "result", "panicked", "aborted", "upgrade_refused", "hijacked"},
		},
		{
			name: "explicit status and body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, "nope")
			},
			want: map[string]any{"status": 404.0, "bytes": 4.0},
		},
		{
			name: "implicit 200 on write",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "hello world")
			},
			want: map[string]any{"status": 200.0, "bytes": 11.0},
		},
		{
			name: "1xx does not count as the final status",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusNoContent)
			},
			want: map[string]any{"status": 204.0},
		},
		{
			name: "second WriteHeader is ignored",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusFound)
				w.WriteHeader(http.StatusOK)
			},
			want: map[string]any{"status": 302.0},
		},
		{
			name: "annotations from the handler",
			handler: func(w http.ResponseWriter, r *http.Request) {
				SetRouteName(r.Context(), "login")
				SetUser(r.Context(), "alice")
				SetResult(r.Context(), "bad_password")
				w.WriteHeader(http.StatusUnauthorized)
			},
			want: map[string]any{"status": 401.0, "route": "login", "user": "alice", "result": "bad_password"},
		},
		{
			name:       "client from RealClient after Logger",
			realClient: "after",
			handler:    func(w http.ResponseWriter, r *http.Request) {},
			want:       map[string]any{"client_ip": "203.0.113.9", "host": "public.example"},
		},
		{
			name:       "client from RealClient before Logger",
			realClient: "before",
			handler:    func(w http.ResponseWriter, r *http.Request) {},
			want:       map[string]any{"client_ip": "203.0.113.9", "host": "public.example"},
		},
		{
			name:       "request rejected by RealClient is still logged",
			realClient: "after",
			handler: func(w http.ResponseWriter, r *http.Request) {
				t.Error("handler reached")
			},
			want: map[string]any{"status": 400.0, "client_ip": "10.1.2.3", "result": "bad_client_info"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, logs := newTestLogger()
			var h http.Handler
			switch tt.realClient {
			case "before":
				h = chain(tt.handler, RequestID(), RealClient(trusted), Logger(base))
			case "after":
				h = chain(tt.handler, RequestID(), Logger(base), RealClient(trusted))
			default:
				h = chain(tt.handler, RequestID(), Logger(base))
			}
			req := httptest.NewRequest(http.MethodGet, "http://Gate.Example/p", nil)
			req.RemoteAddr = "10.1.2.3:5555"
			if tt.name == "request rejected by RealClient is still logged" {
				req.Header.Set("X-Forwarded-For", "not-an-ip")
			} else {
				req.Header.Set("X-Forwarded-For", "203.0.113.9")
				req.Header.Set("X-Forwarded-Host", "Public.Example")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			evs := logs.requestEvents(t)
			if len(evs) != 1 {
				t.Fatalf("got %d request events, want 1: %s", len(evs), logs)
			}
			ev := evs[0]
			for k, v := range tt.want {
				if ev[k] != v {
					t.Errorf("%s = %#v, want %#v", k, ev[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := ev[k]; ok {
					t.Errorf("field %s present: %#v", k, ev[k])
				}
			}
			if ev["request_id"] != rec.Header().Get(RequestIDHeader) || ev["request_id"] == "" {
				t.Errorf("request_id = %v, header %q", ev["request_id"], rec.Header().Get(RequestIDHeader))
			}
			if ev["method"] != "GET" || ev["path"] != "/p" || ev["level"] != "info" {
				t.Errorf("method/path/level = %v %v %v", ev["method"], ev["path"], ev["level"])
			}
		})
	}
}

func TestLoggerNeverLogsSecrets(t *testing.T) {
	base, logs := newTestLogger()
	h := chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		LoggerFrom(r.Context()).Info().Msg("inner")
		w.WriteHeader(http.StatusNoContent)
	}), RequestID(), Logger(base), RealClient(nil))
	req := httptest.NewRequest(http.MethodGet, "/.authgate/login?token=SECRETQUERY&rd=%2Fx", nil)
	req.Header.Set("Cookie", "authgate_session=SECRETCOOKIE")
	req.Header.Set("Authorization", "Bearer SECRETAUTH")
	req.Header.Set("X-Forwarded-For", "SECRETXFF") // untrusted peer: ignored
	h.ServeHTTP(httptest.NewRecorder(), req)

	out := logs.String()
	for _, s := range []string{"SECRET", "token=", "rd=", "Bearer"} {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
	evs := logs.events(t)
	if len(evs) != 2 {
		t.Fatalf("want inner + request events, got %d", len(evs))
	}
	inner := evs[0]
	if inner["message"] != "inner" || inner["path"] != "/.authgate/login" || inner["method"] != "GET" ||
		inner["request_id"] == "" || inner["client_ip"] != "192.0.2.1" {
		t.Errorf("request logger fields wrong: %v", inner)
	}
	// RealClient adds client_ip to the request's logger in place: the
	// access-log line, written from Logger's own copy, names it once.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if n := strings.Count(lines[len(lines)-1], `"client_ip"`); n != 1 {
		t.Errorf("access-log line has client_ip %d times: %s", n, lines[len(lines)-1])
	}
}

func TestLoggerDuration(t *testing.T) {
	base, logs := newTestLogger()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	calls := 0
	now := func() time.Time {
		calls++
		if calls == 1 {
			return t0
		}
		return t0.Add(1500 * time.Microsecond)
	}
	h := logger(base, now)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	evs := logs.requestEvents(t)
	if len(evs) != 1 || evs[0]["duration_ms"] != 1.5 {
		t.Fatalf("duration_ms wrong: %v", evs)
	}
}

func TestLoggerLogsWhenPanicPassesThrough(t *testing.T) {
	base, logs := newTestLogger()
	h := Logger(base)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	}))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the original panic", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	evs := logs.requestEvents(t)
	if len(evs) != 1 || evs[0]["panicked"] != true || evs[0]["status"] != 0.0 {
		t.Fatalf("events = %v", evs)
	}
}

func TestLoggerUpgradeRefused(t *testing.T) {
	base, logs := newTestLogger()
	h := Logger(base)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetUpgradeRefused(r.Context())
		w.WriteHeader(http.StatusForbidden)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/socket", nil))
	evs := logs.requestEvents(t)
	if len(evs) != 1 || evs[0]["upgrade_refused"] != true || evs[0]["status"] != 403.0 || evs[0]["panicked"] != nil {
		t.Fatalf("events = %v", evs)
	}
}

func TestAnnotationsNilSafe(t *testing.T) {
	// Outside Logger the setters must be no-ops, not panics.
	ctx := t.Context()
	SetRouteName(ctx, "x")
	SetUser(ctx, "x")
	SetResult(ctx, "x")
	SetAborted(ctx)
	SetUpgradeRefused(ctx)
	if AnnotationsFrom(ctx) != nil {
		t.Fatal("annotations without Logger")
	}
}

func TestLoggerTruncatesLongPath(t *testing.T) {
	base, logs := newTestLogger()
	h := Logger(base)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/"+strings.Repeat("a", 5000), nil))
	evs := logs.requestEvents(t)
	if p, _ := evs[0]["path"].(string); len(p) != maxLoggedLen {
		t.Fatalf("path length %d, want %d", len(p), maxLoggedLen)
	}
}
