package config

import (
	"reflect"
	"testing"
)

func TestMetricsOffByDefault(t *testing.T) {
	if l := Defaults().Metrics.Listen; l != "" {
		t.Fatalf("metrics.listen defaults to %q, want off", l)
	}
}

func TestValidateMetrics(t *testing.T) {
	tests := []struct {
		name   string
		yaml   string
		listen string
		want   []string
	}{
		{"off", "", "", nil},
		{"loopback", "", "127.0.0.1:9090", nil},
		{"any interface", "", ":9090", nil},
		{"free port (tests)", "", "127.0.0.1:0", nil},
		{"no port", "", "127.0.0.1", []string{`metrics.listen: must be host:port such as "127.0.0.1:9090", or "" for no metrics: missing or malformed port`}},
		{"bad port", "", "127.0.0.1:99999", []string{`metrics.listen: must be host:port such as "127.0.0.1:9090", or "" for no metrics: port must be a number from 0 to 65535`}},
		{"same as the gateway", "", ":8080", []string{`metrics.listen: must differ from listen: metrics are served on their own listener, never next to the gateway`}},
		{"line cited", "metrics:\n  listen: nope\n", "", []string{`metrics.listen (line 12): must be host:port such as "127.0.0.1:9090", or "" for no metrics: missing or malformed port`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			c, err := LoadBytes([]byte(validYAML+tt.yaml), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if tt.yaml == "" {
				c.Metrics.Listen = tt.listen
			}
			var got []string
			if err := c.Validate(); err != nil {
				for _, p := range err.(Problems) {
					got = append(got, p.String())
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
