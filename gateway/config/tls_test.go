package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestTLSDefaults(t *testing.T) {
	d := Defaults()
	if d.TLS.Mode != TLSOff || d.TLS.ACME.CA != LetsEncryptProduction || d.TLS.ACME.Storage != filepath.Join(DefaultDataDir, "acme") {
		t.Fatalf("tls defaults = %+v", d.TLS)
	}
}

func TestValidateTLS(t *testing.T) {
	dir := t.TempDir()
	pem := filepath.Join(dir, "c.pem")
	if err := os.WriteFile(pem, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		yaml string
		set  func(*TLS)
		want []string
	}{
		{"off", "", func(*TLS) {}, nil},
		{"manual ok", "", func(x *TLS) { x.Mode, x.CertFile, x.KeyFile = TLSManual, pem, pem }, nil},
		{"manual no files", "", func(x *TLS) { x.Mode = TLSManual }, []string{
			`tls.cert_file: must be set when tls.mode is "manual"`,
			`tls.key_file: must be set when tls.mode is "manual"`,
		}},
		{"manual missing file", "", func(x *TLS) { x.Mode, x.CertFile, x.KeyFile = TLSManual, missing, pem }, []string{
			`tls.cert_file: file "` + missing + `" does not exist`,
		}},
		{"acme ok", "", func(x *TLS) { x.Mode, x.ACME.Email, x.HTTPListen = TLSACME, "ops@example.com", ":80" }, nil},
		{"acme staging", "", func(x *TLS) { x.Mode, x.ACME.CA = TLSACME, LetsEncryptStaging }, nil},
		{"acme bad", "", func(x *TLS) {
			x.Mode, x.ACME.CA, x.ACME.Email, x.ACME.CARoot = TLSACME, "http://ca.example/dir", "nope", missing
		}, []string{
			`tls.acme.ca: must be an https URL`,
			`tls.acme.email: must be an email address`,
			`tls.acme.ca_root: file "` + missing + `" does not exist`,
		}},
		{"bad http_listen", "", func(x *TLS) { x.Mode, x.CertFile, x.KeyFile, x.HTTPListen = TLSManual, pem, pem, "80" }, []string{
			`tls.http_listen: must be host:port such as ":80", or "" for none: missing or malformed port`,
		}},
		{"unknown mode, line cited", "tls:\n  mode: auto\n", nil, []string{
			`tls.mode (line 12): must be "off", "manual" or "acme", got "auto"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			c, err := LoadBytes([]byte(validYAML+tt.yaml), "t.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if tt.set != nil {
				tt.set(&c.TLS)
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

func TestValidateACMENeedsHost(t *testing.T) {
	clearEnv(t)
	c, err := LoadBytes([]byte("routes:\n  - name: a\n    upstream: http://127.0.0.1:1\ntls:\n  mode: acme\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	want := `tls.mode (line 5): "acme" needs at least one route with a host to get a certificate for`
	if ps, ok := err.(Problems); !ok || len(ps) != 1 || ps[0].String() != want {
		t.Fatalf("Validate() = %v, want %s", err, want)
	}
}
