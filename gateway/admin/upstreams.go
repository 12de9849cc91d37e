package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/authgate/authgate/gateway/proxy"
	"github.com/authgate/authgate/templates"
)

func (h *Handler) upstreamsPage(w http.ResponseWriter, r *http.Request) {
	var routes []templates.AdminRoute
	if h.d.Upstreams != nil {
		now := h.d.Now()
		health := map[string]proxy.RouteHealth{}
		for _, rh := range h.d.Upstreams.Health() {
			health[rh.Name] = rh
		}
		for _, rt := range h.d.Upstreams.Routes() {
			ar := templates.AdminRoute{
				Name:               rt.Name,
				Host:               breakPoints(rt.Host),
				PathPrefix:         breakPoints(rt.PathPrefix),
				Policy:             rt.Policy,
				AllowUsers:         rt.AllowUsers,
				AllowGroups:        rt.AllowGroups,
				CAFile:             breakPoints(rt.CAFile),
				InsecureSkipVerify: rt.InsecureSkipVerify,
				ServerName:         breakPoints(rt.ServerName),
				PreserveHost:       rt.PreserveHost,
			}
			if rt.Upstream != nil {
				u := *rt.Upstream
				u.User = nil // never show credentials (the proxy refuses them anyway)
				ar.UpstreamURL = u.String()
				ar.Upstream = breakPoints(ar.UpstreamURL)
			}
			if rh, ok := health[rt.Name]; ok {
				ar.Health = adminHealth(rh, now)
			}
			routes = append(routes, ar)
		}
	}
	h.d.Pages.Render(w, r, http.StatusOK, templates.PageAdminUpstreams, templates.AdminUpstreamsPage{
		Common:         h.common(r, "Protected upstreams"),
		Nav:            h.nav(r, "upstreams"),
		Routes:         routes,
		ConfigPath:     h.o.ConfigPath,
		ConfigLoadedAt: formatSeconds(h.o.ConfigLoadedAt),
		HealthWindow:   formatWindow(h.o.HealthWindow),
	})
}

// adminHealth shows what was measured; the one summary it draws is
// "unreachable", when the latest result got no response at all.
func adminHealth(rh proxy.RouteHealth, now time.Time) templates.AdminHealth {
	c := rh.Window
	ah := templates.AdminHealth{
		Known:           !rh.Probe.At.IsZero() || !rh.LastRequest.At.IsZero() || c.Requests > 0,
		Probe:           adminResult(rh.Probe, now),
		LastRequest:     adminResult(rh.LastRequest, now),
		Requests:        c.Requests,
		Status1xx:       c.Status1xx,
		Status2xx:       c.Status2xx,
		Status3xx:       c.Status3xx,
		Status4xx:       c.Status4xx,
		Status5xx:       c.Status5xx,
		TransportErrors: c.TransportErrors,
		ClientGone:      c.ClientGone,
	}
	latest := rh.Probe
	if rh.LastRequest.At.After(latest.At) {
		latest = rh.LastRequest
	}
	ah.Unreachable = latest.Error != ""
	return ah
}

func adminResult(r proxy.Result, now time.Time) templates.AdminResult {
	if r.At.IsZero() {
		return templates.AdminResult{}
	}
	return templates.AdminResult{
		Seen:    true,
		Status:  r.Status,
		Error:   r.Error,
		Latency: formatLatency(r.Latency),
		Ago:     formatAgo(now.Sub(r.At)),
		At:      formatSeconds(r.At),
		ISOTime: r.At.UTC().Format(time.RFC3339),
	}
}

// formatAgo says how long ago something happened, to the unit that
// matters: "just now", "12s ago", "4 min ago", "3 h ago", "2 days ago".
func formatAgo(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
}

// breakPoints splits s where a long URL, host or path may wrap (as in
// style guides for URLs in text): after "//", before "/" (but not inside
// "://" or "//"), before ".", "?", "#", "&" and "=", and before a ":"
// that starts a port. Hyphens need nothing: browsers break after them.
// nil for "".
func breakPoints(s string) []string {
	var parts []string
	from := 0
	for i := 1; i < len(s); i++ {
		prev, c := s[i-1], s[i]
		var brk bool
		switch c {
		case '/':
			brk = prev != '/' && prev != ':'
		case '.', '?', '#', '&', '=':
			brk = true
		case ':':
			brk = i+1 < len(s) && '0' <= s[i+1] && s[i+1] <= '9' && prev != ':' && prev != '['
		default:
			brk = prev == '/' && i >= 2 && s[i-2] == '/'
		}
		if brk && i > from {
			parts = append(parts, s[from:i])
			from = i
		}
	}
	if from < len(s) {
		parts = append(parts, s[from:])
	}
	return parts
}

// formatLatency rounds to a readable precision; "" when unknown.
func formatLatency(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// formatSeconds shows t in UTC to the second; "" for the zero time.
func formatSeconds(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// formatWindow writes a window as "5 minutes" (or the duration).
func formatWindow(d time.Duration) string {
	if d%time.Minute == 0 {
		m := int(d / time.Minute)
		if m == 1 {
			return "minute"
		}
		return strconv.Itoa(m) + " minutes"
	}
	return d.String()
}
