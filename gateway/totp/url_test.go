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

func TestKeyURL(t *testing.T) {
	secret := []byte("12345678901234567890")
	tests := []struct {
		name, issuer, account string
		o                     Options
		want                  string
	}{
		{
			"plain", "ACME", "alice", DefaultOptions(),
			"otpauth://totp/ACME:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME&algorithm=SHA1&digits=6&period=30",
		},
		{
			"spaces colons at", "ACME: Admin Panel", "bob@example.com:ops", Options{Period: 60, Digits: 8, Algorithm: "sha256"},
			"otpauth://totp/ACME%3A%20Admin%20Panel:bob@example.com%3Aops?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%3A%20Admin%20Panel&algorithm=SHA256&digits=8&period=60",
		},
		{
			"query metacharacters", "A&B=C+D?#/%", "x y", DefaultOptions(),
			"otpauth://totp/A%26B%3DC%2BD%3F%23%2F%25:x%20y?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=A%26B%3DC%2BD%3F%23%2F%25&algorithm=SHA1&digits=6&period=30",
		},
		{
			"no issuer", "", "carol", DefaultOptions(),
			"otpauth://totp/carol?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=6&period=30",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := KeyURL(tc.issuer, tc.account, secret, tc.o)
			if got != tc.want {
				t.Fatalf("KeyURL =\n %s\nwant\n %s", got, tc.want)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("issuer") != tc.issuer || q.Get("secret") != EncodeSecret(secret) {
				t.Errorf("query round trip: %v", q)
			}
			// Splitting the raw label at its literal ':' recovers both parts.
			label := strings.TrimPrefix(u.EscapedPath(), "/")
			wantIssuer, wantAccount := "", label
			if i := strings.IndexByte(label, ':'); i >= 0 {
				wantIssuer, wantAccount = label[:i], label[i+1:]
			}
			iss, _ := url.PathUnescape(wantIssuer)
			acc, _ := url.PathUnescape(wantAccount)
			if iss != tc.issuer || acc != tc.account {
				t.Errorf("label = %q / %q, want %q / %q", iss, acc, tc.issuer, tc.account)
			}
			// pquerna/otp reads it back.
			k, err := otp.NewKeyFromURL(got)
			if err != nil {
				t.Fatal(err)
			}
			if k.Type() != "totp" || k.Issuer() != tc.issuer || k.Secret() != EncodeSecret(secret) ||
				k.Period() != uint64(tc.o.Period) || k.Digits().Length() != tc.o.Digits ||
				k.Algorithm().String() != strings.ToUpper(tc.o.Algorithm) {
				t.Errorf("pquerna parse: issuer %q secret %q period %d digits %d alg %s",
					k.Issuer(), k.Secret(), k.Period(), k.Digits(), k.Algorithm())
			}
			if !strings.Contains(tc.issuer, ":") && k.AccountName() != tc.account {
				t.Errorf("pquerna account = %q", k.AccountName())
			}
		})
	}
}

func TestQRCode(t *testing.T) {
	u := KeyURL("ACME Admin", "alice@example.com", []byte("12345678901234567890"), DefaultOptions())
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
	other, err := QRCodePNG(u+"x", 256)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(b, other) {
		t.Error("different URLs gave the same image")
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

	for _, tc := range []struct {
		url  string
		size int
	}{{u, 10}, {u, MaxQRSize + 1}, {"", 256}, {strings.Repeat("x", 5000), 256}} {
		if _, err := QRCodePNG(tc.url, tc.size); !errors.Is(err, ErrQRCode) {
			t.Errorf("QRCodePNG(len %d, %d) err = %v", len(tc.url), tc.size, err)
		}
	}
}
