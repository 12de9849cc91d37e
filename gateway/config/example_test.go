package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const examplePath = "../../configs/authgate.example.yaml"

// The shipped example must load and validate, so it cannot rot.
func TestExampleLoadsAndValidates(t *testing.T) {
	clearEnv(t)
	c, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("example does not validate:\n%v", err)
	}
	if len(c.Routes) != 2 || c.Routes[0].Upstream != "https://127.0.0.1:2087" || !c.Routes[0].UpstreamTLS.InsecureSkipVerify {
		t.Errorf("example routes changed: %+v", c.Routes)
	}
	if len(c.TrustedProxies) == 0 {
		t.Error("example has no trusted_proxies")
	}
	// The documented defaults must be the real ones.
	d := Defaults()
	if c.Listen != d.Listen || c.DataDir != d.DataDir || c.SecretKeyFile != d.SecretKeyFile ||
		c.Store.Driver != d.Store.Driver || c.Store.Path != d.Store.Path ||
		c.Store.Redis.KeyPrefix != d.Store.Redis.KeyPrefix || c.Session != d.Session ||
		c.TwoFactor != d.TwoFactor || c.Password != d.Password || c.Regulation != d.Regulation || c.Log != d.Log || c.Server != d.Server || c.UI != d.UI ||
		len(c.WebAuthn.Origins) != 0 || !reflect.DeepEqual(c.Passkeys(), exampleDefaultsPasskeys(c)) {
		t.Errorf("example values differ from Defaults():\n%+v\n%+v", c, d)
	}
	// Its only warning is the deliberate insecure_skip_verify on WHM.
	ws := c.Warnings()
	if len(ws) != 1 || ws[0].Key != "routes[0].upstream_tls.insecure_skip_verify" {
		t.Errorf("warnings = %v", ws)
	}
}

// exampleDefaultsPasskeys is what Passkeys says for the built-in
// webauthn defaults under c's public_url.
func exampleDefaultsPasskeys(c *Config) PasskeySettings {
	d := Defaults()
	d.PublicURL = c.PublicURL
	return d.Passkeys()
}

// Every yaml key of Config must be set (not merely mentioned in a comment)
// somewhere in the example, at its full path.
func TestExampleSetsEveryKey(t *testing.T) {
	clearEnv(t)
	c, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	index := regexp.MustCompile(`\[\d+\]`)
	set := map[string]bool{}
	for k := range c.lines {
		set[index.ReplaceAllString(k, "[]")] = true
	}
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	keys := yamlKeys(reflect.TypeFor[Config](), "")
	if len(keys) < 40 {
		t.Fatalf("only %d keys found; walker broken?", len(keys))
	}
	for _, k := range keys {
		if !set[k] {
			t.Errorf("example does not set %s", k)
		}
		leaf := k[strings.LastIndex(k, ".")+1:]
		leaf = strings.TrimSuffix(leaf, "[]")
		if !strings.Contains(string(data), leaf+":") {
			t.Errorf("example does not mention %q", leaf)
		}
	}
}

// yamlKeys lists every key path of t, lists written as "name[]".
func yamlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		name, ok := yamlName(t.Field(i))
		if !ok {
			continue
		}
		key := joinKey(prefix, name)
		ft := t.Field(i).Type
		switch {
		case ft == durationType:
			out = append(out, key)
		case ft.Kind() == reflect.Struct:
			out = append(out, key)
			out = append(out, yamlKeys(ft, key)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, key)
			out = append(out, yamlKeys(ft.Elem(), key+"[]")...)
		default:
			out = append(out, key)
		}
	}
	return out
}
