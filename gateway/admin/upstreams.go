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
		health := map[string]proxy.RouteHealth{}
		for _, rh := range h.d.Upstreams.Health() {
			health[rh.Name] = rh
		}
		for _, rt := range h.d.Upstreams.Routes() {
			ar := templates.AdminRoute{
				Name:               rt.Name,
				Host:               rt.Host,
				PathPrefix:         rt.PathPrefix,
				Policy:             rt.Policy,
				AllowUsers:         rt.AllowUsers,
				AllowGroups:        rt.AllowGroups,
				CAFile:             rt.CAFile,
				InsecureSkipVerify: rt.InsecureSkipVerify,
				ServerName:         rt.ServerName,
				PreserveHost:       rt.PreserveHost,
			}
			if rt.Upstream != nil {
				u := *rt.Upstream
				u.User = nil // never show credentials (the proxy refuses them anyway)
				ar.Upstream = u.String()
			}
			if rh, ok := health[rt.Name]; ok && (rh.Observed || rh.Requests > 0) {
				ar.Health = templates.AdminHealth{
					Known:      true,
					Healthy:    rh.Healthy,
					LastStatus: rh.LastStatus,
					Latency:    formatLatency(rh.LastLatency),
					LastCheck:  formatSeconds(rh.LastCheck),
					Requests:   rh.Requests,
					Errors:     rh.Errors,
					LastError:  rh.LastError,
				}
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
