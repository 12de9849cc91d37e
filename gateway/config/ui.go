package config

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of the ui keys.
const (
	// MaxLogoBytes bounds ui.logo_file: a logo is read into memory and
	// sent with every sign-in page's first view.
	MaxLogoBytes = 256 << 10
	// MaxTitleLen bounds ui.title, in characters.
	MaxTitleLen = 100
)

// Logo content types ReadLogo detects.
const (
	LogoPNG  = "image/png"
	LogoJPEG = "image/jpeg"
	LogoWebP = "image/webp"
	LogoSVG  = "image/svg+xml"
)

var (
	// ErrLogoTooLarge is returned by ReadLogo for a file over MaxLogoBytes.
	ErrLogoTooLarge = errors.New("config: logo file too large")
	// ErrLogoNotImage is returned by ReadLogo when the content is not a
	// PNG, JPEG, WebP or SVG image (the file name is not looked at).
	ErrLogoNotImage = errors.New("config: logo file is not a PNG, JPEG, WebP or SVG image")
)

// errNotRegular refuses directories, devices and FIFOs (a typo must not
// block start-up reading a FIFO).
var errNotRegular = errors.New("not a regular file")

// Logo is the content of ui.logo_file.
type Logo struct {
	Data []byte
	// ContentType is detected from Data: LogoPNG, LogoJPEG, LogoWebP or
	// LogoSVG.
	ContentType string
}

// ReadLogo reads an image file for ui.logo_file: a regular file of at
// most MaxLogoBytes whose content is a PNG, JPEG, WebP or SVG image.
// Validate calls it to check the key; the gateway calls it again to serve
// the image (at start and at every reload).
func ReadLogo(path string) (Logo, error) {
	f, err := os.Open(path)
	if err != nil {
		return Logo{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Logo{}, err
	}
	if !st.Mode().IsRegular() {
		return Logo{}, fmt.Errorf("%s: %w", path, errNotRegular)
	}
	if st.Size() > MaxLogoBytes {
		return Logo{}, fmt.Errorf("%w: %s has %d bytes", ErrLogoTooLarge, path, st.Size())
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxLogoBytes+1))
	if err != nil {
		return Logo{}, err
	}
	if len(data) > MaxLogoBytes { // grew since Stat
		return Logo{}, fmt.Errorf("%w: %s has more than %d bytes", ErrLogoTooLarge, path, MaxLogoBytes)
	}
	ct := detectImage(data)
	if ct == "" {
		return Logo{}, fmt.Errorf("%w: %s", ErrLogoNotImage, path)
	}
	return Logo{Data: data, ContentType: ct}, nil
}

// detectImage returns the content type of an image by its content, ""
// when it is none ReadLogo accepts.
func detectImage(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return LogoPNG
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return LogoJPEG
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return LogoWebP
	case isSVG(b):
		return LogoSVG
	}
	return ""
}

// isSVG reports whether b is an XML document whose root element is svg
// (after an optional BOM, XML declaration, comments and doctype).
func isSVG(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(b) {
		return false
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t.Name.Local == "svg" && (t.Name.Space == "" || t.Name.Space == "http://www.w3.org/2000/svg")
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return false
			}
		case xml.EndElement:
			return false
		}
	}
}

func (k *checker) ui() {
	u := &k.c.UI
	u.Title = strings.TrimSpace(u.Title)
	switch {
	case !utf8.ValidString(u.Title):
		k.add("ui.title", "must be valid UTF-8")
	case utf8.RuneCountInString(u.Title) > MaxTitleLen:
		k.add("ui.title", "must be at most %d characters, got %d", MaxTitleLen, utf8.RuneCountInString(u.Title))
	case strings.ContainsFunc(u.Title, unicode.IsControl):
		k.add("ui.title", "must not contain control characters (line breaks, tabs)")
	}
	if u.LogoFile == "" {
		return
	}
	_, err := ReadLogo(u.LogoFile)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		k.add("ui.logo_file", "file %q does not exist", u.LogoFile)
	case errors.Is(err, errNotRegular):
		k.add("ui.logo_file", "%q is not a regular file", u.LogoFile)
	case errors.Is(err, ErrLogoTooLarge):
		k.add("ui.logo_file", "%q is larger than %d KiB", u.LogoFile, MaxLogoBytes>>10)
	case errors.Is(err, ErrLogoNotImage):
		k.add("ui.logo_file", "%q is not a PNG, JPEG, WebP or SVG image (its content is checked, not its name)", u.LogoFile)
	default:
		k.add("ui.logo_file", "cannot use %q: %v", u.LogoFile, err)
	}
}
