package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWebAuthnDefaults(t *testing.T) {
	clearEnv(t)
	c, err := LoadBytes([]byte(validYAML), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := WebAuthn{Enabled: true, UserVerification: "preferred", Attestation: "none", Timeout: 2 * time.Minute}
	if !reflect.DeepEqual(c.WebAuthn, want) {
		t.Fatalf("webauthn = %+v, want %+v", c.WebAuthn, want)
	}
	got := c.Passkeys()
	wantP := PasskeySettings{
		Available: true, RPID: "panel.example.com", Origins: []string{"https://panel.example.com"},
		UserVerification: "preferred", Attestation: "none", Timeout: 2 * time.Minute,
	}
	if !reflect.DeepEqual(got, wantP) {
		t.Fatalf("Passkeys() = %+v, want %+v", got, wantP)
	}
}

// Every webauthn problem names its key and line; all are reported at once.
func TestValidateWebAuthn(t *testing.T) {
	const rule = "(browsers only accept an RP ID equal to the origin's host or a parent domain of it)"
	tests := []struct {
		name      string
		yaml      string // after validYAML (10 lines): "webauthn:" is line 11
		publicURL *string
		want      []string // nil = valid
	}{
		{"defaults", "", nil, nil},
		{"every value", `webauthn:
  enabled: true
  rp_id: example.com
  rp_name: Example
  origins: ["https://panel.example.com", "https://sso.example.com:8443/", "http://panel.example.com"]
  user_verification: required
  attestation: direct
  passwordless: true
  timeout: 10m
`, nil, nil},
		{"bounds of timeout", "webauthn:\n  timeout: 30s\n", nil, nil},
		{"rp_id equal to the host", "webauthn:\n  rp_id: panel.example.com\n", nil, nil},
		{"disabled, values still checked", "webauthn:\n  enabled: false\n  user_verification: always\n", nil,
			[]string{`webauthn.user_verification (line 13): must be "preferred", "required" or "discouraged", got "always"`}},
		{"user_verification", "webauthn:\n  user_verification: Required\n", nil,
			[]string{`webauthn.user_verification (line 12): must be "preferred", "required" or "discouraged", got "Required"`}},
		{"attestation", "webauthn:\n  attestation: enterprise\n", nil,
			[]string{`webauthn.attestation (line 12): must be "none", "indirect" or "direct", got "enterprise"`}},
		{"timeout too short", "webauthn:\n  timeout: 29s\n", nil,
			[]string{`webauthn.timeout (line 12): must be between 30s and 10m, got 29s`}},
		{"timeout too long", "webauthn:\n  timeout: 601s\n", nil,
			[]string{`webauthn.timeout (line 12): must be between 30s and 10m, got 10m1s`}},
		{"passwordless while disabled", "webauthn:\n  enabled: false\n  passwordless: true\n", nil,
			[]string{`webauthn.passwordless (line 13): cannot be true while webauthn.enabled is false: signing in with a passkey alone needs passkeys`}},
		{"bad origins", `webauthn:
  origins:
    - panel.example.com
    - ftp://panel.example.com
    - https://panel.example.com/login
    - https://panel.example.com/?x=1
    - https://panel.example.com#top
    - https://user:pw@panel.example.com
    - https://panel.example.com:0
    - https://pa_nel.example.com
`, nil, []string{
			`webauthn.origins[0] (line 13): must be an origin such as "https://panel.example.com" (http or https, with a host), got "panel.example.com"`,
			`webauthn.origins[1] (line 14): must be an origin such as "https://panel.example.com" (http or https, with a host), got "ftp://panel.example.com"`,
			`webauthn.origins[2] (line 15): must be an origin, scheme://host[:port], without a path (got path "/login"), got "https://panel.example.com/login"`,
			`webauthn.origins[3] (line 16): must not have a query string or fragment, got "https://panel.example.com/?x=1"`,
			`webauthn.origins[4] (line 17): must not have a query string or fragment, got "https://panel.example.com#top"`,
			`webauthn.origins[5] (line 18): must not contain a user name or password`,
			`webauthn.origins[6] (line 19): port must be between 1 and 65535, got "https://panel.example.com:0"`,
			`webauthn.origins[7] (line 20): must have a valid host name, got "https://pa_nel.example.com"`,
		}},
		{"duplicate origin", "webauthn:\n  origins: [\"https://panel.example.com\", \"HTTPS://Panel.Example.com:443/\"]\n", nil,
			[]string{`webauthn.origins[1] (line 12): lists "https://panel.example.com" again (also webauthn.origins[0])`}},
		{"rp_id with scheme", "webauthn:\n  rp_id: https://example.com\n", nil,
			[]string{`webauthn.rp_id (line 12): must be a host name without scheme, such as "example.com"`}},
		{"rp_id with port", "webauthn:\n  rp_id: example.com:443\n", nil,
			[]string{`webauthn.rp_id (line 12): must be a host name without port, such as "example.com"`}},
		{"rp_id with path", "webauthn:\n  rp_id: example.com/auth\n", nil,
			[]string{`webauthn.rp_id (line 12): must be a host name without path, such as "example.com"`}},
		{"rp_id IPv4", "webauthn:\n  rp_id: 10.0.0.5\n", nil,
			[]string{`webauthn.rp_id (line 12): must not be an IP address: browsers accept only a domain name as RP ID`}},
		{"rp_id IPv6", "webauthn:\n  rp_id: \"[::1]\"\n", nil,
			[]string{`webauthn.rp_id (line 12): must not be an IP address: browsers accept only a domain name as RP ID`}},
		{"rp_id upper case", "webauthn:\n  rp_id: Example.com\n", nil,
			[]string{`webauthn.rp_id (line 12): must be lower case ("example.com")`}},
		{"rp_id trailing dot", "webauthn:\n  rp_id: example.com.\n", nil,
			[]string{`webauthn.rp_id (line 12): must not end with a dot`}},
		{"rp_id not a host name", "webauthn:\n  rp_id: exa mple.com\n", nil,
			[]string{`webauthn.rp_id (line 12): must be a valid host name such as "example.com"`}},
		{"rp_id does not match an origin", "webauthn:\n  rp_id: example.com\n  origins: [\"https://panel.example.com\", \"https://panel.other.org\"]\n", nil,
			[]string{`webauthn.rp_id (line 12): "example.com" does not match origin "https://panel.other.org" ` + rule}},
		// Regression guard: "ample.com" is a suffix of the host's string,
		// not a parent domain.
		{"rp_id a string suffix only", "webauthn:\n  rp_id: ample.com\n", nil,
			[]string{`webauthn.rp_id (line 12): "ample.com" does not match origin "https://panel.example.com", the origin of public_url ` + rule}},
		{"rp_id a child of the host", "webauthn:\n  rp_id: a.panel.example.com\n", nil,
			[]string{`webauthn.rp_id (line 12): "a.panel.example.com" does not match origin "https://panel.example.com", the origin of public_url ` + rule}},
		{"rp_id set, no origin anywhere", "webauthn:\n  rp_id: example.com\n", ptr(""), nil},
		{"origins not under the host of public_url", "webauthn:\n  origins: [\"https://panel.example.com\", \"https://sso.example.com\"]\n", nil,
			[]string{`webauthn.origins[1] (line 12): "https://sso.example.com" does not match the RP ID "panel.example.com", the host of public_url ` + rule + `; set webauthn.rp_id to a parent domain of every origin`}},
		{"origins not under the first origin", "webauthn:\n  origins:\n    - https://a.example.com\n    - https://b.example.com\n", ptr(""),
			[]string{`webauthn.origins[1] (line 14): "https://b.example.com" does not match the RP ID "a.example.com", the host of webauthn.origins[0] ` + rule + `; set webauthn.rp_id to a parent domain of every origin`}},
		{"rp_id a public suffix", "webauthn:\n  rp_id: co.uk\n  origins: [\"https://panel.example.co.uk\"]\n", nil,
			[]string{`webauthn.rp_id (line 12): "co.uk" is a public suffix (like "com" or "co.uk"), which browsers refuse as the RP ID of origin "https://panel.example.co.uk"; use a domain registered under it, or the origin's host`}},
		{"rp_id a public suffix equal to the host", "webauthn:\n  rp_id: localhost\n  origins: [\"http://localhost:8080\"]\n", nil, nil},
		{"every problem at once", `webauthn:
  enabled: false
  rp_id: Example.com
  origins: [panel]
  user_verification: maybe
  attestation: self
  passwordless: true
  timeout: 1h
`, nil, []string{
			`webauthn.user_verification (line 15): must be "preferred", "required" or "discouraged", got "maybe"`,
			`webauthn.attestation (line 16): must be "none", "indirect" or "direct", got "self"`,
			`webauthn.timeout (line 18): must be between 30s and 10m, got 1h0m0s`,
			`webauthn.passwordless (line 17): cannot be true while webauthn.enabled is false: signing in with a passkey alone needs passkeys`,
			`webauthn.rp_id (line 13): must be lower case ("example.com")`,
			`webauthn.origins[0] (line 14): must be an origin such as "https://panel.example.com" (http or https, with a host), got "panel"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			c, err := LoadBytes([]byte(validYAML+tt.yaml), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if tt.publicURL != nil {
				c.PublicURL = *tt.publicURL
			}
			var got []string
			if err := c.Validate(); err != nil {
				for _, p := range err.(Problems) {
					if !strings.HasPrefix(p.Key, "webauthn.") {
						t.Errorf("problem outside webauthn: %s", p)
					}
					got = append(got, p.String())
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestPasskeys(t *testing.T) {
	tests := []struct {
		name      string
		publicURL string
		webauthn  func(w *WebAuthn)
		available bool
		rpID      string
		origins   []string
		reason    []string // substrings of Reason when not available
	}{
		{name: "https", publicURL: "https://panel.example.com",
			available: true, rpID: "panel.example.com", origins: []string{"https://panel.example.com"}},
		{name: "https with path, default port and capitals", publicURL: "https://Panel.Example.COM:443/auth/",
			available: true, rpID: "panel.example.com", origins: []string{"https://panel.example.com"}},
		{name: "https on another port", publicURL: "https://panel.example.com:8443",
			available: true, rpID: "panel.example.com", origins: []string{"https://panel.example.com:8443"}},
		{name: "localhost", publicURL: "http://localhost:8080",
			available: true, rpID: "localhost", origins: []string{"http://localhost:8080"}},
		{name: "localhost on port 80", publicURL: "http://localhost:80/",
			available: true, rpID: "localhost", origins: []string{"http://localhost"}},
		{name: "subdomain of localhost", publicURL: "http://panel.localhost:8080",
			available: true, rpID: "panel.localhost", origins: []string{"http://panel.localhost:8080"}},
		{name: "plain http host", publicURL: "http://panel.lan:8080",
			rpID: "panel.lan", origins: []string{"http://panel.lan:8080"},
			reason: []string{`origin "http://panel.lan:8080" is not a secure context`, "https://", "set public_url to its https:// URL"}},
		{name: "loopback IP", publicURL: "http://127.0.0.1:8080",
			rpID: "127.0.0.1", origins: []string{"http://127.0.0.1:8080"},
			reason: []string{"IP address", "RP ID cannot be an IP address", "use http://localhost:8080 locally"}},
		{name: "IPv6 loopback", publicURL: "https://[::1]",
			rpID: "::1", origins: []string{"https://[::1]"},
			reason: []string{"IP address", "use https://localhost locally"}},
		{name: "https on an IP", publicURL: "https://10.0.0.5",
			rpID: "10.0.0.5", origins: []string{"https://10.0.0.5"},
			reason: []string{`origin "https://10.0.0.5" has an IP address as host`, "reach the gateway by a host name over https://"}},
		{name: "no public_url",
			reason: []string{"set public_url (https://…) or webauthn.origins"}},
		{name: "invalid public_url", publicURL: "ftp://panel.example.com",
			reason: []string{"set public_url (https://…) or webauthn.origins"}},
		{name: "disabled", publicURL: "https://panel.example.com", webauthn: func(w *WebAuthn) { w.Enabled = false },
			rpID: "panel.example.com", origins: []string{"https://panel.example.com"},
			reason: []string{"webauthn.enabled: false"}},
		{name: "origins under a parent rp_id, no public_url", webauthn: func(w *WebAuthn) {
			w.RPID = "example.com"
			w.Origins = []string{"https://panel.example.com", "https://sso.example.com:8443/"}
		}, available: true, rpID: "example.com", origins: []string{"https://panel.example.com", "https://sso.example.com:8443"}},
		{name: "origins win over public_url", publicURL: "http://panel.lan", webauthn: func(w *WebAuthn) {
			w.RPID = "example.com"
			w.Origins = []string{"https://panel.example.com"}
		}, available: true, rpID: "example.com", origins: []string{"https://panel.example.com"}},
		{name: "rp_id from the first origin", webauthn: func(w *WebAuthn) { w.Origins = []string{"https://sso.example.com"} },
			available: true, rpID: "sso.example.com", origins: []string{"https://sso.example.com"}},
		{name: "one origin plain http", webauthn: func(w *WebAuthn) {
			w.RPID = "example.com"
			w.Origins = []string{"https://panel.example.com", "http://old.example.com"}
		}, rpID: "example.com", origins: []string{"https://panel.example.com", "http://old.example.com"},
			reason: []string{`origin "http://old.example.com" is not a secure context`, "set webauthn.origins[1] to its https:// URL"}},
		{name: "rp_id does not match", publicURL: "https://panel.other.org", webauthn: func(w *WebAuthn) { w.RPID = "example.com" },
			rpID: "example.com", origins: []string{"https://panel.other.org"},
			reason: []string{`webauthn.rp_id "example.com" does not match origin "https://panel.other.org" (browsers only accept an RP ID equal to the origin's host or a parent domain of it)`}},
		{name: "invalid origin", publicURL: "https://panel.example.com", webauthn: func(w *WebAuthn) {
			w.Origins = []string{"https://panel.example.com", "panel.example.com"}
		}, rpID: "panel.example.com", origins: []string{"https://panel.example.com"},
			reason: []string{`webauthn.origins[1] is not an origin`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			c.PublicURL = tt.publicURL
			if tt.webauthn != nil {
				tt.webauthn(&c.WebAuthn)
			}
			p := c.Passkeys()
			if p.Available != tt.available || p.RPID != tt.rpID || !reflect.DeepEqual(p.Origins, tt.origins) {
				t.Errorf("Passkeys() = available %v, rp_id %q, origins %q; want %v, %q, %q (reason %q)",
					p.Available, p.RPID, p.Origins, tt.available, tt.rpID, tt.origins, p.Reason)
			}
			if tt.available {
				if p.Reason != "" {
					t.Errorf("available with reason %q", p.Reason)
				}
				return
			}
			if p.Reason == "" {
				t.Fatal("unavailable without a reason")
			}
			for _, s := range tt.reason {
				if !strings.Contains(p.Reason, s) {
					t.Errorf("reason %q lacks %q", p.Reason, s)
				}
			}
		})
	}
}

// Passkeys carries the section's values, and fills defaults into a
// Config built in code without them.
func TestPasskeysValues(t *testing.T) {
	c := Config{PublicURL: "https://panel.example.com", WebAuthn: WebAuthn{Enabled: true}}
	p := c.Passkeys()
	if !p.Available || p.UserVerification != "preferred" || p.Attestation != "none" || p.Timeout != 2*time.Minute || p.Passwordless || p.RPName != "" {
		t.Errorf("zero section: %+v", p)
	}
	c.WebAuthn = WebAuthn{Enabled: true, RPName: "Example", UserVerification: "required", Attestation: "direct", Passwordless: true, Timeout: 45 * time.Second}
	p = c.Passkeys()
	if !p.Available || p.RPName != "Example" || p.UserVerification != "required" || p.Attestation != "direct" || !p.Passwordless || p.Timeout != 45*time.Second {
		t.Errorf("set section: %+v", p)
	}
	// The returned origins are a copy.
	c.WebAuthn.Origins = []string{"https://panel.example.com"}
	c.Passkeys().Origins[0] = "x"
	if c.WebAuthn.Origins[0] != "https://panel.example.com" {
		t.Error("Passkeys shares the config's origins")
	}
}

func TestWebAuthnWarnings(t *testing.T) {
	tests := []struct {
		name, yaml string
		publicURL  *string
		want       []string
	}{
		{"available", "webauthn:\n  passwordless: true\n", nil, nil},
		{"section, plain http", "webauthn:\n  passwordless: true\n", ptr("http://panel.lan"), []string{
			`public_url (line 2): uses http: passwords, codes and session cookies cross the network unencrypted`,
			`webauthn (line 11): passkeys are enabled but browsers will not offer them: origin "http://panel.lan" is not a secure context: browsers offer passkeys only on https:// origins and on http://localhost; serve the gateway over https and set public_url to its https:// URL`,
		}},
		{"section, no public_url", "webauthn:\n  enabled: true\n", ptr(""), []string{
			`webauthn (line 11): passkeys are enabled but browsers will not offer them: passkeys need an origin: set public_url (https://…) or webauthn.origins`,
		}},
		{"section, disabled", "webauthn:\n  enabled: false\n", ptr("http://panel.lan"), []string{
			`public_url (line 2): uses http: passwords, codes and session cookies cross the network unencrypted`,
		}},
		// Without the section, only an https public_url that browsers
		// still refuse draws the warning: a plain http one has its own,
		// and a config without public_url means no passkeys were wanted.
		{"no section, https on an IP", "", ptr("https://10.0.0.5"), []string{
			`webauthn: passkeys are enabled but browsers will not offer them: origin "https://10.0.0.5" has an IP address as host, and an RP ID cannot be an IP address: reach the gateway by a host name over https://`,
		}},
		{"no section, plain http", "", ptr("http://panel.lan"), []string{
			`public_url (line 2): uses http: passwords, codes and session cookies cross the network unencrypted`,
		}},
		{"no section, no public_url", "", ptr(""), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			c, err := LoadBytes([]byte(validYAML+tt.yaml), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if tt.publicURL != nil {
				c.PublicURL = *tt.publicURL
			}
			var got []string
			for _, w := range c.Warnings() {
				got = append(got, w.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("warnings:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
		})
	}
}

// The section is known to the decoder: a typo gets a suggestion, a
// duration must be one.
func TestWebAuthnKeysAreKnown(t *testing.T) {
	clearEnv(t)
	_, err := LoadBytes([]byte(validYAML+"webauthn:\n  rpid: example.com\n  orgins: []\n  timeout: soon\n"), "t.yaml")
	if err == nil {
		t.Fatal("typos accepted")
	}
	for _, want := range []string{
		`line 12: webauthn.rpid: unknown key; did you mean "webauthn.rp_id"?`,
		`line 13: webauthn.orgins: unknown key; did you mean "webauthn.origins"?`,
		`line 14: webauthn.timeout: must be a duration such as "90s" or "1h", got "soon"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
