package totp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
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

// KeyURL returns the otpauth:// enrolment URL (Key URI Format):
//
//	otpauth://totp/Issuer:account?secret=...&issuer=...&algorithm=...&digits=...&period=...
//
// The label parts and the query values are percent-encoded byte-wise: only
// unreserved characters and '@' stay literal, so spaces become %20 (not '+',
// which some apps show literally), and ':' inside the issuer or the account
// becomes %3A, leaving the one literal ':' as the separator. The issuer
// parameter, which apps prefer over the label prefix, always carries the
// exact issuer. With an empty issuer the label is just the account and no
// issuer parameter is written. o should have passed Validate; its values are
// written as given (algorithm upper-cased).
func KeyURL(issuer, account string, secret []byte, o Options) string {
	var sb strings.Builder
	sb.WriteString("otpauth://totp/")
	if issuer != "" {
		sb.WriteString(escape(issuer))
		sb.WriteByte(':')
	}
	sb.WriteString(escape(account))
	sb.WriteString("?secret=")
	sb.WriteString(EncodeSecret(secret))
	if issuer != "" {
		sb.WriteString("&issuer=")
		sb.WriteString(escape(issuer))
	}
	sb.WriteString("&algorithm=")
	sb.WriteString(escape(o.canonicalAlgorithm()))
	sb.WriteString("&digits=")
	sb.WriteString(strconv.Itoa(o.Digits))
	sb.WriteString("&period=")
	sb.WriteString(strconv.FormatUint(uint64(o.Period), 10))
	return sb.String()
}

// escape percent-encodes every byte except RFC 3986 unreserved characters
// and '@' (valid in both paths and queries, and kept for readable e-mail
// addresses).
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var sb strings.Builder
	sb.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '@' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hex[c>>4])
		sb.WriteByte(hex[c&0x0f])
	}
	return sb.String()
}

// QRCodePNG renders url (normally from KeyURL) as a size×size PNG QR code
// with medium error correction. size must be within MinQRSize..MaxQRSize
// and large enough for the code's modules.
func QRCodePNG(url string, size int) ([]byte, error) {
	if url == "" {
		return nil, fmt.Errorf("%w: empty URL", ErrQRCode)
	}
	if size < MinQRSize || size > MaxQRSize {
		return nil, fmt.Errorf("%w: size %d must be between %d and %d", ErrQRCode, size, MinQRSize, MaxQRSize)
	}
	key, err := otp.NewKeyFromURL(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQRCode, err)
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
func QRCodeDataURI(url string, size int) (string, error) {
	b, err := QRCodePNG(url, size)
	if err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b), nil
}
