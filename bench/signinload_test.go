package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
)

func TestAuthgateConfigSetsGCPercentOnlyWhenAsked(t *testing.T) {
	up := &upstreamServer{addr: "127.0.0.1:9"}
	for _, tc := range []struct{ set, want int }{{0, config.DefaultGCPercent}, {100, 100}} {
		dir := t.TempDir()
		ag, _, err := newAuthgate(dir, "authgate", "authgate-x", "embedded", up, nil, "info", tc.set, tc.set == 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("AUTHGATE_SECRET_KEY", strings.TrimPrefix(ag.env[0], "AUTHGATE_SECRET_KEY="))
		c, err := config.Load(ag.config)
		if err != nil {
			t.Fatalf("gc_percent %d: %v", tc.set, err)
		}
		if c.Server.GCPercent != tc.want {
			t.Errorf("gc_percent %d written: loaded %d, want %d", tc.set, c.Server.GCPercent, tc.want)
		}
		if c.Metrics.Listen != ag.metricsAddr || (ag.metricsAddr != "") != (tc.set == 0) {
			t.Errorf("metrics.listen loaded %q, written %q", c.Metrics.Listen, ag.metricsAddr)
		}
	}
}

func TestSigninOptions(t *testing.T) {
	o, err := parseOptions([]string{"-rounds", "0", "-candidates", "authgate-embedded", "-extras", "signins-under-load", "-signin-gc-percents", "400, 100"})
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 0 || !slices.Equal(o.signinGCPercent, []int{400, 100}) || !slices.Equal(o.extras, []string{extraSignins}) {
		t.Fatalf("%+v", o)
	}
	for _, bad := range [][]string{
		{"-signin-gc-percents", "10"},
		{"-signin-gc-percents", "100,100"},
		{"-signin-gc-percents", "x"},
		{"-extras", "login", "-signin-gc-percents", "100"},
		{"-rounds", "-1"},
	} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	// No user signs in twice in a window: at most one sign-in per
	// interval, plus the first at once.
	o.signinDuration, o.signinInterval = 20*time.Second, 500*time.Millisecond
	if n := o.signinUsers(); n < 41+1 {
		t.Errorf("%d users for up to 41 sign-ins", n)
	}
}
