package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"

	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/stream"
	"github.com/authgate/authgate/middleware"
)

// A session state the matrix runs through: the session (if any) user
// holds, and what the store does to the account.
type sessionState struct {
	name string
	// user is the session's user (alice has TOTP, bob has none, carol
	// does not exist).
	user string
	// sess is the stored session; nil: the request has no cookie.
	sess *store.Session
	// mustChange: an admin reset the user's password.
	mustChange bool
}

func sessionStates() []sessionState {
	var out []sessionState
	out = append(out, sessionState{name: "no session"})
	for _, u := range []string{"alice", "bob"} {
		out = append(out,
			sessionState{name: u + " code owed", user: u, sess: &store.Session{User: u, Stage: store.StagePending, UserEpoch: 1}},
			sessionState{name: u + " password only", user: u, sess: &store.Session{User: u, Stage: store.StageFull, UserEpoch: 1}},
			sessionState{name: u + " second factor", user: u, sess: &store.Session{User: u, Stage: store.StageFull, TwoFactor: true, UserEpoch: 1}},
			sessionState{name: u + " password reset", user: u, sess: &store.Session{User: u, Stage: store.StageFull, TwoFactor: true, UserEpoch: 1}, mustChange: true},
			// The account changed (password, authenticator, role,
			// revocation) after the session was made.
			sessionState{name: u + " account changed", user: u, sess: &store.Session{User: u, Stage: store.StageFull, TwoFactor: true, UserEpoch: 0}},
			// Made in mode off; void once the mode is stricter.
			sessionState{name: u + " made in mode off", user: u, sess: &store.Session{User: u, Stage: store.StageFull, UserEpoch: 1, Mode: settings.ModeOff}},
		)
	}
	out = append(out, sessionState{name: "user deleted", user: "carol", sess: &store.Session{User: "carol", Stage: store.StageFull, TwoFactor: true}})
	return out
}

// expected is the answer the session-state table (gateway/session
// state.go) gives: "allow", or the page a challenge names ("login",
// "verify", "enroll", "password"); keepRD says whether the original URL
// goes along. void: the session must be ended.
func expected(st sessionState, policy, mode string) (answer string, keepRD, void bool) {
	if policy == "bypass" {
		return "allow", false, false
	}
	if st.sess == nil {
		return "login", true, false
	}
	s := *st.sess
	if s.Mode == "" {
		s.Mode = mode // made under the mode in force
	}
	switch {
	case st.user == "carol", s.UserEpoch != 1,
		!s.TwoFactor && mode != settings.ModeOff && s.Mode == settings.ModeOff:
		return "login", true, true
	case s.Stage == store.StagePending:
		return "verify", false, false
	case st.mustChange:
		return "password", true, false
	case s.TwoFactor, policy == "password", mode == settings.ModeOff:
		return "allow", false, false
	case st.user == "alice":
		return "verify", true, false
	default:
		return "enroll", true, false
	}
}

var challengePages = map[string]string{"login": LoginPage, "verify": VerifyPage, "enroll": EnrollPage, "password": PasswordPage}

// requestKinds: a browser navigation is sent to the page; anything else
// (an API call, a form POST, a WebSocket) gets a plain 401.
var requestKinds = []struct {
	name       string
	method     string
	header     map[string]string
	navigation bool
}{
	{"navigation", http.MethodGet, map[string]string{"Accept": "text/html,application/xhtml+xml"}, true},
	{"HEAD navigation", http.MethodHead, map[string]string{"Accept": "text/html"}, true},
	{"API call", http.MethodGet, map[string]string{"Accept": "application/json"}, false},
	{"form post", http.MethodPost, map[string]string{"Accept": "text/html"}, false},
	{"websocket", http.MethodGet, map[string]string{"Accept": "text/html", "Upgrade": "websocket", "Connection": "Upgrade"}, false},
}

func (w *world) setState(st sessionState) {
	if st.user != "" && st.user != "carol" {
		w.users.mu.Lock()
		u := w.users.m[st.user]
		u.MustChangePassword = st.mustChange
		w.users.m[st.user] = u
		w.users.mu.Unlock()
	}
	if st.sess != nil {
		s := *st.sess
		if s.Mode == "" {
			s.Mode = w.settings.mode
		}
		w.sessions.add("s1", s)
	}
}

// TestGateDecisions: every session state × route policy × 2FA mode ×
// kind of request gets the answer of the session-state table.
func TestGateDecisions(t *testing.T) {
	for _, mode := range []string{settings.ModeOff, settings.ModeOn, settings.ModeRequired} {
		for _, policy := range []string{"bypass", "password", "two_factor"} {
			route := map[string]string{"bypass": "open", "password": "pw", "two_factor": "tf"}[policy]
			for _, st := range sessionStates() {
				for _, rk := range requestKinds {
					t.Run(mode+"/"+policy+"/"+st.name+"/"+rk.name, func(t *testing.T) {
						w := newWorld(mode)
						w.setState(st)
						r := httptest.NewRequest(rk.method, "http://panel.example/"+route+"/x?q=1", nil)
						for k, v := range rk.header {
							r.Header.Set(k, v)
						}
						if st.sess != nil {
							r.AddCookie(&http.Cookie{Name: "sid", Value: "s1"})
						}
						rec := httptest.NewRecorder()
						w.gate.ServeHTTP(rec, r)

						answer, keepRD, void := expected(st, policy, mode)
						switch {
						case answer == "allow":
							if rec.Code != http.StatusOK || rec.Header().Get("X-Upstream") != route {
								t.Fatalf("want forwarded to %s, got %d %q", route, rec.Code, rec.Header().Get("Location"))
							}
							id := w.upstreams.ids[0]
							if policy == "bypass" {
								if id != nil {
									t.Fatalf("bypass route forwarded with identity %+v", id)
								}
							} else if id == nil || id.User != st.user {
								t.Fatalf("identity %+v, want %s", id, st.user)
							}
						case !rk.navigation:
							if rec.Code != http.StatusUnauthorized || rec.Header().Get("Location") != "" {
								t.Fatalf("want a plain 401 (challenge %s), got %d %q", answer, rec.Code, rec.Header().Get("Location"))
							}
						default:
							want := challengePages[answer]
							if keepRD {
								want += "?rd=" + url.QueryEscape("/"+route+"/x?q=1")
							}
							if rec.Code != http.StatusFound || rec.Header().Get("Location") != want {
								t.Fatalf("want 302 to %s, got %d %q", want, rec.Code, rec.Header().Get("Location"))
							}
							if rec.Header().Get("Cache-Control") != "no-store" {
								t.Fatalf("challenge cacheable: %q", rec.Header().Get("Cache-Control"))
							}
						}
						if answer != "allow" && len(w.upstreams.ids) != 0 {
							t.Fatalf("challenged request forwarded")
						}
						if st.sess != nil && w.sessions.has("s1") == void {
							t.Fatalf("session kept: %v, want ended: %v", w.sessions.has("s1"), void)
						}
					})
				}
			}
		}
	}
}

// TestGateRefusals: what is not a challenge is an error page, never a
// forward.
func TestGateRefusals(t *testing.T) {
	nav := func(target string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Header.Set("Accept", "text/html")
		r.AddCookie(&http.Cookie{Name: "sid", Value: "s1"})
		return r
	}
	full := store.Session{User: "bob", Stage: store.StageFull, TwoFactor: true, UserEpoch: 1, Mode: settings.ModeRequired}
	tests := []struct {
		name   string
		setup  func(w *world)
		target string
		want   int
	}{
		{"not in the allow list", func(w *world) { w.sessions.add("s1", full) }, "http://panel.example/ops/", http.StatusForbidden},
		{"in the allow list", func(w *world) {
			s := full
			s.User = "alice"
			w.sessions.add("s1", s)
		}, "http://panel.example/ops/", http.StatusOK},
		// Dot segments are resolved before the match: the policy of
		// where the request really goes applies.
		{"encoded dot segments", func(w *world) { w.sessions.add("s1", full) }, "http://panel.example/tf/%2e%2e/ops/", http.StatusForbidden},
		{"no route", func(w *world) { w.sessions.add("s1", full) }, "http://panel.example/nothing/", http.StatusNotFound},
		{"gateway path in any case", func(w *world) { w.sessions.add("s1", full) }, "http://panel.example/.AuthGate/login", http.StatusNotFound},
		{"unusable path", func(w *world) { w.sessions.add("s1", full) }, "http://panel.example/tf%2Fx", http.StatusBadRequest},
		{"user store down", func(w *world) {
			w.sessions.add("s1", full)
			w.users.err = errors.New("store down")
		}, "http://panel.example/tf/", http.StatusServiceUnavailable},
		{"settings down", func(w *world) {
			w.sessions.add("s1", full)
			w.settings.err = errors.New("store down")
		}, "http://panel.example/tf/", http.StatusServiceUnavailable},
		{"store down on a bypass route", func(w *world) {
			w.users.err = errors.New("store down")
		}, "http://panel.example/open/", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(settings.ModeRequired)
			tc.setup(w)
			rec := httptest.NewRecorder()
			w.gate.ServeHTTP(rec, nav(tc.target))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.want, rec.Body)
			}
			if tc.want != http.StatusOK && len(w.upstreams.ids) != 0 {
				t.Fatal("refused request forwarded")
			}
		})
	}
}

// TestRequireUser: the account and admin pages get only a complete
// session of an existing user, with Current in the context.
func TestRequireUser(t *testing.T) {
	tests := []struct {
		name     string
		sess     *store.Session
		reset    bool
		path     string
		want     int
		location string
	}{
		{"no session", nil, false, "/.authgate/account?x=1", http.StatusFound, LoginPage + "?rd=" + url.QueryEscape("/.authgate/account?x=1")},
		{"code owed", &store.Session{User: "alice", Stage: store.StagePending, UserEpoch: 1}, false, "/.authgate/account", http.StatusFound, VerifyPage},
		{"password only", &store.Session{User: "bob", Stage: store.StageFull, UserEpoch: 1}, false, "/.authgate/account", http.StatusOK, ""},
		{"second factor", &store.Session{User: "alice", Stage: store.StageFull, TwoFactor: true, UserEpoch: 1}, false, "/.authgate/account", http.StatusOK, ""},
		{"password reset", &store.Session{User: "alice", Stage: store.StageFull, TwoFactor: true, UserEpoch: 1}, true, "/.authgate/account", http.StatusSeeOther, PasswordPage + "?rd=" + url.QueryEscape("/.authgate/account")},
		{"password reset, on the password page", &store.Session{User: "alice", Stage: store.StageFull, TwoFactor: true, UserEpoch: 1}, true, PasswordPage, http.StatusOK, ""},
		{"account changed", &store.Session{User: "alice", Stage: store.StageFull, TwoFactor: true, UserEpoch: 7}, false, "/.authgate/account", http.StatusFound, LoginPage + "?rd=" + url.QueryEscape("/.authgate/account")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(settings.ModeOn)
			r := httptest.NewRequest(http.MethodGet, "http://gw.example"+tc.path, nil)
			r.Header.Set("Accept", "text/html")
			if tc.sess != nil {
				w.setState(sessionState{user: tc.sess.User, sess: tc.sess, mustChange: tc.reset})
				r.AddCookie(&http.Cookie{Name: "sid", Value: "s1"})
			}
			var got Current
			h := w.gate.RequireUser(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				got, _ = CurrentFrom(r.Context())
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.want || rec.Header().Get("Location") != tc.location {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Location"), tc.want, tc.location)
			}
			if tc.want == http.StatusOK && (got.User.Name != tc.sess.User || got.Mode != settings.ModeOn) {
				t.Fatalf("Current %+v", got)
			}
		})
	}
}

// TestStreamsRecheckWithoutTouch: a forwarded request with a session is
// registered while it runs; its re-check reads the session through
// Untouched (never Sessions, whose reads refresh the last use) and ends
// it once the session is gone.
func TestStreamsRecheckWithoutTouch(t *testing.T) {
	w := newWorld(settings.ModeRequired)
	// The same records, read through two counters.
	touching, untouched := &readCounter{Sessions: w.sessions}, &readCounter{Sessions: w.sessions}
	streams := &fakeStreams{}
	w.gate = New(Deps{Users: w.users, Settings: w.settings, Sessions: touching, Upstreams: w.upstreams,
		Errors: fakeErrors{}, Streams: streams, Untouched: untouched})
	w.sessions.add("s1", store.Session{User: "alice", Stage: store.StageFull, TwoFactor: true, UserEpoch: 1, Mode: settings.ModeRequired})
	var before, after string
	streams.during = func(s stream.Stream) {
		before = s.Check(context.Background())
		w.sessions.mu.Lock()
		delete(w.sessions.m, "s1")
		w.sessions.mu.Unlock()
		after = s.Check(context.Background())
	}
	r := httptest.NewRequest(http.MethodGet, "http://panel.example/tf/live", nil)
	r.AddCookie(&http.Cookie{Name: "sid", Value: "s1"})
	r = r.WithContext(middleware.WithClient(r.Context(), middleware.Client{Scheme: "http", Host: "panel.example",
		IP: netip.MustParseAddr("192.0.2.1"), Peer: netip.MustParseAddr("192.0.2.1")}))
	rec := httptest.NewRecorder()
	w.gate.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if before != "" || after != stream.ReasonSignedOut {
		t.Fatalf("re-checks %q then %q, want \"\" then %q", before, after, stream.ReasonSignedOut)
	}
	if touching.n != 1 || untouched.n != 2 {
		t.Fatalf("reads: %d through Sessions (want 1: the request), %d through Untouched (want 2: the re-checks)",
			touching.n, untouched.n)
	}
	if len(streams.streams) != 0 {
		t.Fatal("stream still registered after the forward")
	}
}

// A Gate that tracks streams but would re-check them through the
// touching session reader is refused at construction.
func TestNewRefusesStreamsWithoutUntouched(t *testing.T) {
	w := newWorld(settings.ModeRequired)
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted Streams without Untouched")
		}
	}()
	New(Deps{Users: w.users, Settings: w.settings, Sessions: w.sessions, Upstreams: w.upstreams,
		Errors: fakeErrors{}, Streams: &fakeStreams{}})
}
