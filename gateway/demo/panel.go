package demo

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// PanelOptions configures NewPanel; zero values take the defaults shown.
type PanelOptions struct {
	// Name is the panel's title. Default "Legacy Admin Panel".
	Name string
	// Logger receives the panel's own errors (WebSocket failures).
	Logger zerolog.Logger
	// UserHeader and GroupsHeader are the identity headers the panel
	// trusts. Default Remote-User and Remote-Groups.
	UserHeader   string
	GroupsHeader string
	// EventInterval is the pause between /events lines (200ms) and
	// EventCount how many lines it sends (5; ?n= may ask for 1..50).
	EventInterval time.Duration
	EventCount    int
}

const (
	maxEventCount = 50
	maxFormBytes  = 64 << 10
	maxFieldLen   = 200
)

type panel struct {
	name                     string
	log                      zerolog.Logger
	userHeader, groupsHeader string
	eventInterval            time.Duration
	eventCount               int

	mu       sync.Mutex
	settings Settings
}

// Settings are the values the /settings form edits; kept in memory.
type Settings struct {
	SiteName    string
	AdminEmail  string
	Timezone    string
	MaxSessions string
	Maintenance bool
}

// NewPanel returns the panel's handler: / (dashboard), /settings (GET,
// POST), /restart (POST), /console, /ws (WebSocket echo) and /events.
func NewPanel(o PanelOptions) http.Handler {
	p := &panel{
		name:          o.Name,
		log:           o.Logger,
		userHeader:    o.UserHeader,
		groupsHeader:  o.GroupsHeader,
		eventInterval: o.EventInterval,
		eventCount:    o.EventCount,
		settings: Settings{
			SiteName: "ACME Intranet", AdminEmail: "root@localhost",
			Timezone: "UTC", MaxSessions: "25",
		},
	}
	if p.name == "" {
		p.name = "Legacy Admin Panel"
	}
	if p.userHeader == "" {
		p.userHeader = "Remote-User"
	}
	if p.groupsHeader == "" {
		p.groupsHeader = "Remote-Groups"
	}
	if p.eventInterval <= 0 {
		p.eventInterval = 200 * time.Millisecond
	}
	if p.eventCount <= 0 || p.eventCount > maxEventCount {
		p.eventCount = 5
	}
	mux := http.NewServeMux()
	mux.Handle("/{$}", methods{http.MethodGet: p.dashboard})
	mux.Handle("/settings", methods{http.MethodGet: p.settingsPage, http.MethodPost: p.saveSettings})
	mux.Handle("/restart", methods{http.MethodPost: p.restart})
	mux.Handle("/console", methods{http.MethodGet: p.console})
	mux.Handle("/ws", methods{http.MethodGet: p.websocket})
	mux.Handle("/events", methods{http.MethodGet: p.events})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.render(w, http.StatusNotFound, "notfound", pageData{Title: "Not found", Path: r.URL.Path})
	})
	return mux
}

// methods dispatches on the request method (HEAD served as GET) and
// answers 405 with Allow for the rest.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if h, ok := m[method]; ok {
		h(w, r)
		return
	}
	allow := make([]string, 0, len(m)+1)
	for k := range m {
		allow = append(allow, k)
		if k == http.MethodGet {
			allow = append(allow, http.MethodHead)
		}
	}
	sort.Strings(allow)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
}

// pageData is what every page template gets.
type pageData struct {
	Panel     string
	Title     string
	Nav       string
	User      string
	Groups    []string
	Notice    string
	Headers   []headerRow
	Settings  Settings
	Path      string
	Now       string
	Restarted bool
}

type headerRow struct {
	Name     string
	Value    string
	Identity bool
}

func (p *panel) base(r *http.Request, title, nav string) pageData {
	d := pageData{
		Panel: p.name,
		Title: title,
		Nav:   nav,
		User:  r.Header.Get(p.userHeader),
		Now:   time.Now().UTC().Format("2006-01-02 15:04:05 MST"),
	}
	for g := range strings.SplitSeq(r.Header.Get(p.groupsHeader), ",") {
		if g = strings.TrimSpace(g); g != "" {
			d.Groups = append(d.Groups, g)
		}
	}
	return d
}

func (p *panel) dashboard(w http.ResponseWriter, r *http.Request) {
	d := p.base(r, "Dashboard", "dashboard")
	d.Restarted = r.URL.Query().Get("restarted") == "1"
	names := make([]string, 0, len(r.Header)+1)
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	d.Headers = append(d.Headers, headerRow{Name: "Host", Value: r.Host})
	for _, k := range names {
		d.Headers = append(d.Headers, headerRow{
			Name:     k,
			Value:    strings.Join(r.Header[k], ", "),
			Identity: strings.EqualFold(k, p.userHeader) || strings.EqualFold(k, p.groupsHeader),
		})
	}
	p.render(w, http.StatusOK, "dashboard", d)
}

func (p *panel) settingsPage(w http.ResponseWriter, r *http.Request) {
	d := p.base(r, "Settings", "settings")
	p.mu.Lock()
	d.Settings = p.settings
	p.mu.Unlock()
	p.render(w, http.StatusOK, "settings", d)
}

func (p *panel) saveSettings(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "Bad form", http.StatusBadRequest)
		return
	}
	field := func(name string) string {
		v := strings.TrimSpace(r.PostForm.Get(name))
		if len(v) > maxFieldLen {
			v = v[:maxFieldLen]
		}
		return v
	}
	s := Settings{
		SiteName:    field("site_name"),
		AdminEmail:  field("admin_email"),
		Timezone:    field("timezone"),
		MaxSessions: field("max_sessions"),
		Maintenance: r.PostForm.Get("maintenance") == "on",
	}
	p.mu.Lock()
	p.settings = s
	p.mu.Unlock()
	d := p.base(r, "Settings", "settings")
	d.Settings = s
	d.Notice = "Saved"
	p.render(w, http.StatusOK, "settings", d)
}

// restart pretends to restart the service and, like many old panels,
// redirects to its own absolute URL built from the Host it was asked for.
func (p *panel) restart(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	target := (&url.URL{Scheme: scheme, Host: r.Host, Path: "/", RawQuery: "restarted=1"}).String()
	w.Header().Set("Location", target)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

func (p *panel) console(w http.ResponseWriter, r *http.Request) {
	p.render(w, http.StatusOK, "console", p.base(r, "Console", "console"))
}

// events streams a few lines, each flushed immediately, eventInterval
// apart. ?n= asks for 1..50 lines.
func (p *panel) events(w http.ResponseWriter, r *http.Request) {
	n := p.eventCount
	if q := r.URL.Query().Get("n"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 1 || v > maxEventCount {
			http.Error(w, "n must be between 1 and 50", http.StatusBadRequest)
			return
		}
		n = v
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	t := time.NewTicker(p.eventInterval)
	defer t.Stop()
	for i := 1; i <= n; i++ {
		if i > 1 {
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		line := "event " + strconv.Itoa(i) + "/" + strconv.Itoa(n) + " at " + time.Now().UTC().Format(time.RFC3339Nano) + "\n"
		if _, err := w.Write([]byte(line)); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
