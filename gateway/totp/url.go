package totp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"strconv"
	"strings"

	"github.com/pquerna/otp"
)

// QR code size bounds in pixels (square).
const (
	MinQRSize = 64
	MaxQRSize = 2048
)

// ErrQRCode is wrapped by every QRCodePNG / QRCodeDataURI error.
var ErrQRCode = errors.New("totp: cannot make QR code")

// ErrKey is wrapped by every NewKey error.
var ErrKey = errors.New("totp: cannot make enrolment key")

// NewKey returns the enrolment key for secret: its URL() is the
// otpauth:// URL (Key URI Format), and QRCodePNG draws it.
//
//	otpauth://totp/Issuer:account?algorithm=...&digits=...&issuer=...&period=...&secret=...
//
// The URL is written with net/url, spaces as %20 (some apps show '+'
// literally), and the key is read from it by pquerna/otp. (pquerna's own
// totp.Generate leaves '&' and '+' unescaped in the issuer, so "R&D"
// would reach the app as "R".) issuer and account must not be empty; o
// must pass Validate.
func NewKey(issuer, account string, secret []byte, o Options) (*otp.Key, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	if len(secret) < MinSecretSize {
		return nil, fmt.Errorf("%w: %w", ErrKey, ErrSecretTooShort)
	}
	if issuer == "" || account == "" {
		return nil, fmt.Errorf("%w: issuer and account name must not be empty", ErrKey)
	}
	q := url.Values{
		"secret":    {EncodeSecret(secret)},
		"issuer":    {issuer},
		"algorithm": {o.canonicalAlgorithm()},
		"digits":    {strconv.Itoa(o.Digits)},
		"period":    {strconv.FormatUint(uint64(o.Period), 10)},
	}
	u := url.URL{
		Scheme:   "otpauth",
		Host:     "totp",
		Path:     "/" + issuer + ":" + account,
		RawQuery: strings.ReplaceAll(q.Encode(), "+", "%20"), // a literal '+' is already %2B
	}
	key, err := otp.NewKeyFromURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return key, nil
}

// QRCodePNG renders key's URL as a size×size PNG QR code. size must be
// within MinQRSize..MaxQRSize and large enough for the code's modules.
func QRCodePNG(key *otp.Key, size int) ([]byte, error) {
	if size < MinQRSize || size > MaxQRSize {
		return nil, fmt.Errorf("%w: size %d must be between %d and %d", ErrQRCode, size, MinQRSize, MaxQRSize)
	}
	img, err := key.Image(size, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQRCode, err)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("%w: encoding PNG: %w", ErrQRCode, err)
	}
	return buf.Bytes(), nil
}

// QRCodeDataURI is QRCodePNG as a "data:image/png;base64,..." URI for an
// <img src>. (html/template accepts it only when typed as template.URL.)
func QRCodeDataURI(key *otp.Key, size int) (string, error) {
	b, err := QRCodePNG(key, size)
	if err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b), nil
}
