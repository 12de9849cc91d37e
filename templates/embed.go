package templates

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"strings"
)

// FS holds every page template and the shared layout.
//
//go:embed *.html passkey.js
var FS embed.FS

// Page names: the keys of ParsePages' map, one file <name>.html each.
const (
	PageLogin  = "login"
	PageVerify = "verify"
	PageEnroll = "enroll"
	PageLogout = "logout"
	PageError  = "error"
)

// PageNames lists every page ParsePages parses: every *.html file except
// layout.html and the partials (files starting with "_", parsed into
// every page, e.g. _nav.html). Adding a page is adding its file.
var PageNames = pageNames()

func pageNames() []string {
	files, err := fs.Glob(FS, "*.html")
	if err != nil {
		panic(err) // only a malformed pattern fails
	}
	var names []string
	for _, f := range files {
		if f == "layout.html" || strings.HasPrefix(f, "_") {
			continue
		}
		names = append(names, strings.TrimSuffix(f, ".html"))
	}
	return names
}

// LayoutName is the template every page is executed through:
// t.ExecuteTemplate(w, LayoutName, data).
const LayoutName = "layout"

// Parse returns the shared layout alone (defining "layout", which calls
// "content"). Every page defines its own "content", so pages cannot share
// one template set: ParsePages clones this base once per page. Parse is
// exported for callers that want to add a page of their own the same way.
// Data given as a map must contain every key the templates use
// (missingkey=error).
func Parse() (*template.Template, error) {
	t, err := template.New(LayoutName).Option("missingkey=error").ParseFS(FS, "layout.html")
	if err != nil {
		return nil, fmt.Errorf("templates: parse layout: %w", err)
	}
	if partials, _ := fs.Glob(FS, "_*.html"); len(partials) > 0 {
		if t, err = t.ParseFS(FS, partials...); err != nil {
			return nil, fmt.Errorf("templates: parse partials: %w", err)
		}
	}
	return t, nil
}

// ParsePages parses the layout plus each page separately and returns them
// keyed by page name ("login", "verify", "enroll", "logout", "error").
// Execute a page with ExecuteTemplate(w, "layout", data).
func ParsePages() (map[string]*template.Template, error) {
	base, err := Parse()
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*template.Template, len(PageNames))
	for _, name := range PageNames {
		clone, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("templates: clone layout for %s: %w", name, err)
		}
		t, err := clone.ParseFS(FS, name+".html")
		if err != nil {
			return nil, fmt.Errorf("templates: parse %s: %w", name, err)
		}
		if t.Lookup("content") == nil {
			return nil, fmt.Errorf("templates: %s.html defines no \"content\"", name)
		}
		pages[name] = t
	}
	return pages, nil
}

// PasskeyScript returns passkey.js, the script of the pages that use
// passkeys (served at PasskeyScriptPath).
func PasskeyScript() []byte {
	b, err := FS.ReadFile("passkey.js")
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}
