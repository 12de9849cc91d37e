package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/gateway/session"
	"github.com/authgate/authgate/gateway/settings"
	"github.com/authgate/authgate/gateway/store"
	"github.com/authgate/authgate/gateway/stream"
	"github.com/authgate/authgate/gateway/web"
)

// In-memory fakes of the interfaces the Gate declares.

type fakeUsers struct {
	mu sync.Mutex
	m  map[string]store.User
	// err, when set, is what every read fails with (a store outage).
	err error
}

func (f *fakeUsers) GetUser(_ context.Context, name string) (store.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return store.User{}, f.err
	}
	u, ok := f.m[name]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	return u, nil
}

type fakeSettings struct {
	mode string
	err  error
}

func (f *fakeSettings) Current(context.Context) (settings.Values, error) {
	return settings.Values{Mode: f.mode}, f.err
}

// fakeSessions keeps sessions by cookie value; the cookie is "sid" (or
// "__Host-sid" over https), the id hash "hash-<id>".
type fakeSessions struct {
	mu sync.Mutex
	m  map[string]store.Session
}

func newFakeSessions() *fakeSessions { return &fakeSessions{m: map[string]store.Session{}} }

func cookieName(secure bool) string {
	if secure {
		return "__Host-sid"
	}
	return "sid"
}

func (f *fakeSessions) add(id string, s store.Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.IDHash = "hash-" + id
	f.m[id] = s
}

func (f *fakeSessions) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.m[id]
	return ok
}

func (f *fakeSessions) FromRequest(r *http.Request, secure bool) (string, store.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := r.Cookie(cookieName(secure))
	if err != nil {
		return "", store.Session{}, session.ErrNoSession
	}
	s, ok := f.m[c.Value]
	if !ok {
		return "", store.Session{}, session.ErrNoSession
	}
	return c.Value, s, nil
}

func (f *fakeSessions) Destroy(_ context.Context, idHash string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, strings.TrimPrefix(idHash, "hash-"))
	return nil
}

// readCounter counts the session reads through it (one goroutine).
type readCounter struct {
	Sessions
	n int
}

func (c *readCounter) FromRequest(r *http.Request, secure bool) (string, store.Session, error) {
	c.n++
	return c.Sessions.FromRequest(r, secure)
}

// fakeUpstreams routes by the first path segment ("/pw/…" to the route
// named "pw") and records what it forwarded.
type fakeUpstreams struct {
	routes map[string]*proxy.Route
	mu     sync.Mutex
	ids    []*proxy.Identity
}

func (f *fakeUpstreams) Match(host, p string) (*proxy.Route, bool) {
	seg, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	rt, ok := f.routes[seg]
	return rt, ok
}

func (f *fakeUpstreams) Forward(w http.ResponseWriter, r *http.Request, rt *proxy.Route, id *proxy.Identity) {
	f.mu.Lock()
	f.ids = append(f.ids, id)
	f.mu.Unlock()
	w.Header().Set("X-Upstream", rt.Name)
	w.WriteHeader(http.StatusOK)
}

// fakeErrors writes the status of a *web.Error and its public message.
type fakeErrors struct{}

func (fakeErrors) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	msg := "error"
	if we, ok := errors.AsType[*web.Error](err); ok {
		status, msg = we.Status, we.Message
	}
	http.Error(w, msg, status)
}

// fakeStreams keeps the streams added.
type fakeStreams struct {
	mu      sync.Mutex
	streams map[uint64]stream.Stream
	next    uint64
	// during runs while a stream is registered (inside Forward).
	during func(stream.Stream)
}

func (f *fakeStreams) Add(s stream.Stream) uint64 {
	f.mu.Lock()
	f.next++
	id := f.next
	if f.streams == nil {
		f.streams = map[uint64]stream.Stream{}
	}
	f.streams[id] = s
	during := f.during
	f.mu.Unlock()
	if during != nil {
		during(s)
	}
	return id
}

func (f *fakeStreams) Remove(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.streams, id)
}

// world is a Gate over fakes: users alice (TOTP), bob (no TOTP), routes
// "open" (bypass), "pw" (password), "tf" (two_factor), "ops" (two_factor,
// group ops only).
type world struct {
	users     *fakeUsers
	settings  *fakeSettings
	sessions  *fakeSessions
	upstreams *fakeUpstreams
	gate      *Gate
}

func newWorld(mode string) *world {
	w := &world{
		users: &fakeUsers{m: map[string]store.User{
			"alice": {Name: "alice", TOTPSecret: []byte("sealed"), Groups: []string{"ops"}, AuthEpoch: 1},
			"bob":   {Name: "bob", AuthEpoch: 1},
		}},
		settings: &fakeSettings{mode: mode},
		sessions: newFakeSessions(),
		upstreams: &fakeUpstreams{routes: map[string]*proxy.Route{
			"open": {Name: "open", Policy: "bypass", UserHeader: "Remote-User", GroupsHeader: "Remote-Groups"},
			"pw":   {Name: "pw", Policy: "password", UserHeader: "Remote-User", GroupsHeader: "Remote-Groups"},
			"tf":   {Name: "tf", Policy: "two_factor", UserHeader: "Remote-User", GroupsHeader: "Remote-Groups"},
			"ops":  {Name: "ops", Policy: "two_factor", AllowGroups: []string{"ops"}, UserHeader: "Remote-User", GroupsHeader: "Remote-Groups"},
		}},
	}
	w.gate = New(Deps{Users: w.users, Settings: w.settings, Sessions: w.sessions, Upstreams: w.upstreams,
		Errors: fakeErrors{}, Logger: zerolog.Nop()})
	return w
}

// What the gateway wires in satisfies the interfaces the Gate declares.
var (
	_ Users          = store.Store(nil)
	_ SettingsSource = (*settings.Source)(nil)
	_ Sessions       = (*session.Manager)(nil)
	_ Upstreams      = (*proxy.Proxy)(nil)
	_ ErrorPages     = (*web.Renderer)(nil)
	_ Streams        = (*stream.Tracker)(nil)
)
