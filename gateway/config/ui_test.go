package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Smallest valid files of each accepted type (the content is what is
// checked, so the headers are enough).
var (
	pngLogo  = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	jpegLogo = []byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F'}
	webpLogo = []byte("RIFF\x24\x00\x00\x00WEBPVP8 ")
	svgLogo  = []byte("\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- logo -->\n<!DOCTYPE svg>\n<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1 1\"><rect width=\"1\" height=\"1\"/></svg>\n")
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadLogoDetectsTypeFromContent(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"png", "logo.png", pngLogo, LogoPNG},
		{"jpeg", "logo.jpg", jpegLogo, LogoJPEG},
		{"webp", "logo.webp", webpLogo, LogoWebP},
		{"svg", "logo.svg", svgLogo, LogoSVG},
		{"svg without namespace", "plain.svg", []byte(`<svg viewBox="0 0 1 1"/>`), LogoSVG},
		// The name says nothing: a PNG named .svg is a PNG.
		{"misnamed", "logo.svg.txt", pngLogo, LogoPNG},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ReadLogo(writeFile(t, dir, tt.file, tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if l.ContentType != tt.want || string(l.Data) != string(tt.data) {
				t.Fatalf("ReadLogo = %q, %d bytes; want %q", l.ContentType, len(l.Data), tt.want)
			}
		})
	}
}

func TestReadLogoRefusesNonImages(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"empty":        nil,
		"text":         []byte("hello"),
		"html":         []byte("<html><body>x</body></html>"),
		"xhtml in svg": []byte(`<html xmlns="http://www.w3.org/1999/xhtml"><svg/></html>`),
		"other ns svg": []byte(`<svg xmlns="urn:x"/>`),
		"text first":   []byte(`hi <svg/>`),
		"gif":          []byte("GIF89a\x01\x00\x01\x00"),
		"not utf-8":    []byte("<svg>\xff</svg>"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadLogo(writeFile(t, dir, "f", data))
			if err == nil || !strings.Contains(err.Error(), ErrLogoNotImage.Error()) {
				t.Fatalf("err = %v, want ErrLogoNotImage", err)
			}
		})
	}
}

// ui.logo_file problems name the key and its line, like every key.
func TestValidateUI(t *testing.T) {
	dir := t.TempDir()
	png := writeFile(t, dir, "logo.png", pngLogo)
	big := writeFile(t, dir, "big.png", append(append([]byte{}, pngLogo...), make([]byte, MaxLogoBytes)...))
	notImage := writeFile(t, dir, "logo.jpg", []byte("#!/bin/sh\n"))
	missing := filepath.Join(dir, "missing.png")
	load := func(t *testing.T, ui string) *Config {
		t.Helper()
		clearEnv(t)
		c, err := LoadBytes([]byte(validYAML+ui), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const line = 13 // of logo_file below, after validYAML's 10 lines, "ui:" and title
	tests := []struct {
		name, ui string
		want     string // "" = valid
	}{
		{"unset", "", ""},
		{"png", fmt.Sprintf("ui:\n  title: x\n  logo_file: %q\n", png), ""},
		{"svg", fmt.Sprintf("ui:\n  title: x\n  logo_file: %q\n", writeFile(t, dir, "l.svg", svgLogo)), ""},
		{"missing", fmt.Sprintf("ui:\n  title: x\n  logo_file: %q\n", missing),
			fmt.Sprintf(`ui.logo_file (line %d): file %q does not exist`, line, missing)},
		{"too large", fmt.Sprintf("ui:\n  title: x\n  logo_file: %q\n", big),
			fmt.Sprintf(`ui.logo_file (line %d): %q is larger than 256 KiB`, line, big)},
		{"not an image", fmt.Sprintf("ui:\n  title: x\n  logo_file: %q\n", notImage),
			fmt.Sprintf(`ui.logo_file (line %d): %q is not a PNG, JPEG, WebP or SVG image (its content is checked, not its name)`, line, notImage)},
		{"directory", fmt.Sprintf("ui:\n  title: x\n  logo_file: %q\n", dir),
			fmt.Sprintf(`ui.logo_file (line %d): %q is not a regular file`, line, dir)},
		{"title too long", fmt.Sprintf("ui:\n  title: %q\n", strings.Repeat("é", MaxTitleLen+1)),
			fmt.Sprintf(`ui.title (line 12): must be at most %d characters, got %d`, MaxTitleLen, MaxTitleLen+1)},
		{"title line break", "ui:\n  title: \"a\\nb\"\n",
			`ui.title (line 12): must not contain control characters (line breaks, tabs)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := load(t, tt.ui).Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected problems:\n%v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("problems:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestValidateTrimsTitle(t *testing.T) {
	c := loadValid(t)
	c.UI.Title = "  Example Panel \t"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.UI.Title != "Example Panel" {
		t.Fatalf("title = %q", c.UI.Title)
	}
}

// The new section is known to the decoder: a typo gets a suggestion.
func TestUIKeysAreKnown(t *testing.T) {
	clearEnv(t)
	_, err := LoadBytes([]byte(validYAML+"ui:\n  logo: x\n  titel: y\n"), "t.yaml")
	if err == nil {
		t.Fatal("typos accepted")
	}
	for _, want := range []string{`line 12: ui.logo: unknown key; did you mean "ui.logo_file"?`, `line 13: ui.titel: unknown key; did you mean "ui.title"?`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
