package totp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image/color"
	"image/png"
	"net/url"
	"strings"
	"testing"

	"github.com/pquerna/otp"
)

// NewKey's URL carries what an authenticator app needs, in the form
// pquerna/otp writes it, and reads back to the same values.
func TestNewKey(t *testing.T) {
	secret := []byte("12345678901234567890")
	tests := []struct {
		name, issuer, account string
		o                     Options
		want                  string
	}{
		{
			"plain", "ACME", "alice", DefaultOptions(),
			"otpauth://totp/ACME:alice?algorithm=SHA1&digits=6&issuer=ACME&period=30&secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
		},
		{
			// Spaces are %20, never '+' (which some apps show literally).
			"spaces and at", "ACME Admin Panel", "bob@example.com", Options{Period: 60, Digits: 8, Algorithm: "sha256"},
			"otpauth://totp/ACME%20Admin%20Panel:bob@example.com?algorithm=SHA256&digits=8&issuer=ACME%20Admin%20Panel&period=60&secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := NewKey(tc.issuer, tc.account, secret, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if got := k.URL(); got != tc.want {
				t.Fatalf("URL =\n %s\nwant\n %s", got, tc.want)
			}
			back, err := otp.NewKeyFromURL(k.URL())
			if err != nil {
				t.Fatal(err)
			}
			if back.Type() != "totp" || back.Issuer() != tc.issuer || back.AccountName() != tc.account ||
				back.Secret() != EncodeSecret(secret) || back.Period() != uint64(tc.o.Period) ||
				back.Digits().Length() != tc.o.Digits || back.Algorithm().String() != strings.ToUpper(tc.o.Algorithm) {
				t.Errorf("read back: issuer %q account %q secret %q period %d digits %d alg %s",
					back.Issuer(), back.AccountName(), back.Secret(), back.Period(), back.Digits(), back.Algorithm())
			}
		})
	}
	// Query metacharacters in the issuer stay inside its value.
	k, err := NewKey("R&D=C+D?#%/", "x y", secret, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(k.URL())
	if err != nil {
		t.Fatal(err)
	}
	if back, err := otp.NewKeyFromURL(k.URL()); err != nil || back.Issuer() != "R&D=C+D?#%/" || back.AccountName() != "x y" {
		t.Errorf("%s read back: %v", k.URL(), err)
	}
	if q := u.Query(); q.Get("issuer") != "R&D=C+D?#%/" || q.Get("secret") != EncodeSecret(secret) || len(q) != 5 {
		t.Errorf("query of %s = %v", k.URL(), q)
	}
	for _, bad := range []struct {
		issuer, account string
		secret          []byte
		o               Options
	}{
		{"", "alice", secret, DefaultOptions()},
		{"ACME", "", secret, DefaultOptions()},
		{"ACME", "alice", secret[:MinSecretSize-1], DefaultOptions()},
		{"ACME", "alice", secret, Options{Period: 30, Digits: 7, Algorithm: "MD5"}},
	} {
		if _, err := NewKey(bad.issuer, bad.account, bad.secret, bad.o); !errors.Is(err, ErrKey) {
			t.Errorf("NewKey(%q, %q, %d bytes, %+v) err = %v, want ErrKey", bad.issuer, bad.account, len(bad.secret), bad.o, err)
		}
	}
}

func TestQRCode(t *testing.T) {
	u, err := NewKey("ACME Admin", "alice@example.com", []byte("12345678901234567890"), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	b, err := QRCodePNG(u, 256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r := img.Bounds(); r.Dx() != 256 || r.Dy() != 256 {
		t.Fatalf("bounds %v", r)
	}
	var black, white int
	for y := 0; y < 256; y++ {
		for x := 0; x < 256; x++ {
			g := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
			switch g {
			case 0:
				black++
			case 255:
				white++
			default:
				t.Fatalf("grey pixel %d at %d,%d", g, x, y)
			}
		}
	}
	if black < 256*256/5 || white < 256*256/5 {
		t.Errorf("implausible QR: %d black, %d white", black, white)
	}
	v, err := NewKey("ACME Admin", "bob@example.com", []byte("12345678901234567890"), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	other, err := QRCodePNG(v, 256)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(b, other) {
		t.Error("different keys gave the same image")
	}

	uri, err := QRCodeDataURI(u, 256)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := strings.CutPrefix(uri, "data:image/png;base64,")
	if !ok {
		t.Fatalf("data URI prefix: %.40s", uri)
	}
	if dec, err := base64.StdEncoding.DecodeString(raw); err != nil || !bytes.Equal(dec, b) {
		t.Errorf("data URI payload differs (err %v)", err)
	}

	long, err := NewKey("ACME", strings.Repeat("x", 5000), []byte("12345678901234567890"), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  *otp.Key
		size int
	}{{u, 10}, {u, MaxQRSize + 1}, {long, 256}} {
		if _, err := QRCodePNG(tc.key, tc.size); !errors.Is(err, ErrQRCode) {
			t.Errorf("QRCodePNG(URL of %d bytes, %d) err = %v", len(tc.key.URL()), tc.size, err)
		}
	}
}
