package main

import (
	"errors"
	"net/url"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/proxy"
)

// configReport is what reading and checking a config file found.
type configReport struct {
	// Config is set only when the file loaded and validated cleanly.
	Config   *config.Config
	Problems config.Problems
	Warnings []config.Problem
}

// checkConfigFile loads path and collects every problem at once (decoding
// and validation, each naming its key and line). The error is for files
// that cannot be checked at all (unreadable, not YAML).
func checkConfigFile(path string) (configReport, error) {
	cfg, probs, err := config.Check(path)
	if de, ok := errors.AsType[*config.DecodeError](err); ok {
		return configReport{Problems: de.Problems}, nil // not YAML: still a problem with a line
	}
	if err != nil {
		return configReport{}, err
	}
	if len(probs) > 0 {
		return configReport{Problems: probs}, nil
	}
	return configReport{Config: cfg, Warnings: cfg.Warnings()}, nil
}

// describeRoutePaths says what route r does to request paths, e.g.
// "/netdata/… → http://127.0.0.1:19999/… (prefix replaced; /netdata redirected to /netdata/)";
// "" if its upstream does not parse (config check reports that).
func describeRoutePaths(r config.Route) string {
	u, err := url.Parse(r.Upstream)
	if err != nil {
		return ""
	}
	return proxy.Route{Host: r.Host, PathPrefix: r.PathPrefix, Upstream: u}.DescribePaths()
}
