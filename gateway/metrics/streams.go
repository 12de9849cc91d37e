package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/gateway/stream"
)

// newStreamsClosed is authgate_streams_closed_total, every reason at 0.
func newStreamsClosed() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_streams_closed_total",
		Help: "Forwarded requests still running (WebSockets, streamed responses) ended by the gateway because their session no longer passed, by reason (signed_out, second_factor_required, password_change_required, not_allowed, identity_changed, unavailable, denied).",
	}, []string{"reason"})
	for _, r := range stream.Reasons {
		c.WithLabelValues(r)
	}
	return c
}

// StreamClosed counts one running request ended because its session no
// longer passed (stream.Observer).
func (m *Metrics) StreamClosed(reason string) {
	if m == nil {
		return
	}
	m.streamsClosed.WithLabelValues(reason).Inc()
}
