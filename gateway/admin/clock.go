package admin

import (
	"time"

	ntpclock "github.com/authgate/authgate/gateway/clock"
	"github.com/authgate/authgate/templates"
)

// Clock reports the server clock check (a *ntpclock.Monitor).
type Clock interface {
	Status() ntpclock.Status
}

// clockStatus is the "Server clock" block of the Settings page; without
// a Clock it shows how to turn the check on.
func (h *Handler) clockStatus() templates.ClockStatus {
	if h.d.Clock == nil {
		return templates.ClockStatus{}
	}
	return clockView(h.d.Clock.Status())
}

func clockView(st ntpclock.Status) templates.ClockStatus {
	v := templates.ClockStatus{
		Configured: st.Configured,
		Servers:    st.Servers,
		WarnOver:   st.WarnOver.String(),
		Warning:    st.Warning,
		Error:      st.LastErr,
	}
	if st.LastErr != "" {
		v.Hint = "Check: " + ntpclock.UnreachableHint + "."
	}
	if !st.Last.At.IsZero() {
		v.Measured = true
		v.Offset = ntpclock.Describe(st.Last.Offset)
		v.Server = st.Last.Server
		v.At = st.Last.At.UTC().Format("2006-01-02 15:04:05 UTC")
		v.RTT = st.Last.RTT.Round(100 * time.Microsecond).String()
	}
	if st.Warning {
		for _, f := range ntpclock.FixSteps() {
			v.Fixes = append(v.Fixes, templates.ClockFix{Platform: f.Platform, Command: f.Command})
		}
	}
	return v
}
