package metrics_test

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/authgate/authgate/gateway/metrics"
)

// family gathers the registry and returns the family called name.
func family(t *testing.T, m *metrics.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

func labels(mt *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range mt.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// counterValue returns the value of the unlabelled counter name.
func counterValue(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	f := family(t, m, name)
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("no single series %s", name)
	}
	return f.GetMetric()[0].GetCounter().GetValue()
}

func histogramCounts(t *testing.T, m *metrics.Metrics, name string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	if f := family(t, m, name); f != nil {
		for _, mt := range f.GetMetric() {
			out[labels(mt)["op"]+labels(mt)["route"]] = mt.GetHistogram().GetSampleCount()
		}
	}
	return out
}

func storeErrors(t *testing.T, m *metrics.Metrics, op string) float64 {
	t.Helper()
	f := family(t, m, "authgate_store_errors_total")
	if f == nil {
		return 0
	}
	for _, mt := range f.GetMetric() {
		if labels(mt)["op"] == op {
			return mt.GetCounter().GetValue()
		}
	}
	return 0
}
