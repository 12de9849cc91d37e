package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The systemd unit shipped in configs/ is the one the README shows.
func TestSystemdUnitMatchesREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("../../configs/authgate.service")
	if err != nil {
		t.Fatal(err)
	}
	const start = "```ini\n# /etc/systemd/system/authgate.service\n"
	i := strings.Index(string(readme), start)
	if i < 0 {
		t.Fatal("README has no systemd unit block")
	}
	block := string(readme)[i+len("```ini\n"):]
	block = block[:strings.Index(block, "```")]
	if block != string(unit) {
		t.Fatalf("configs/authgate.service differs from the README's unit:\n%s\n---\n%s", unit, block)
	}
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ExecReload=/bin/kill -HUP $MAINPID", "User=authgate"} {
		if !strings.Contains(block, want) {
			t.Errorf("unit lacks %s", want)
		}
	}
}

// The shipped unit, alone and with the low-ports drop-in, passes
// `systemd-analyze verify` without a single complaint. (The binary path is
// pointed at one that exists here; everything else is the file as
// shipped.)
func TestSystemdUnitVerifies(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is missing (CI installs systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile("../../configs/authgate.service")
	if err != nil {
		t.Fatal(err)
	}
	dropIn, err := os.ReadFile("../../configs/authgate-low-ports.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dropIn), "AmbientCapabilities=CAP_NET_BIND_SERVICE") {
		t.Fatal("the low-ports drop-in does not grant CAP_NET_BIND_SERVICE")
	}
	for _, withDropIn := range []bool{false, true} {
		dir := t.TempDir()
		text := strings.ReplaceAll(string(unit), "/usr/local/bin/authgate", "/bin/true")
		if err := os.WriteFile(filepath.Join(dir, "authgate.service"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if withDropIn {
			if err := os.Mkdir(filepath.Join(dir, "authgate.service.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "authgate.service.d", "low-ports.conf"), dropIn, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(bin, "verify", "--man=no", "authgate.service")
		cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Fatalf("systemd-analyze verify (drop-in %v): %v\n%s", withDropIn, err, out)
		}
	}
}

// repoRoot is the module root, seen from this package's directory.
const repoRoot = "../.."

// packageTableHeader starts docs/development.md's table of packages.
const packageTableHeader = "| package | holds |"

// docPackages returns the first cells of the package table in doc
// (module-relative directories in backquotes), and rows that are not of
// that form.
func docPackages(doc string) (pkgs, bad []string) {
	_, after, ok := strings.Cut(doc, "\n"+packageTableHeader+"\n")
	if !ok {
		return nil, []string{"no table starting " + packageTableHeader}
	}
	for i, line := range strings.Split(after, "\n") {
		if i == 0 && strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		cell = strings.TrimSpace(cell)
		if len(cell) < 3 || !strings.HasPrefix(cell, "`") || !strings.HasSuffix(cell, "`") || strings.Count(cell, "`") != 2 {
			bad = append(bad, line)
			continue
		}
		pkgs = append(pkgs, strings.Trim(cell, "`"))
	}
	return pkgs, bad
}

// modulePackages lists the module's packages as `go list ./...` sees them
// now, as directories relative to the module root ("gateway/store/cache").
// -e keeps a package that does not build in the list.
func modulePackages(t *testing.T) []string {
	t.Helper()
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(gomod), "\n")
	module, ok := strings.CutPrefix(strings.TrimSpace(first), "module ")
	if !ok {
		t.Fatalf("go.mod does not start with its module line: %q", first)
	}
	cmd := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}}", "./...")
	cmd.Dir = repoRoot
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, stderr.String())
	}
	var pkgs []string
	for _, p := range strings.Fields(string(out)) {
		if p == module {
			pkgs = append(pkgs, ".")
			continue
		}
		rel, ok := strings.CutPrefix(p, module+"/")
		if !ok {
			t.Fatalf("go list printed %q, not a package of %s", p, module)
		}
		pkgs = append(pkgs, rel)
	}
	return pkgs
}

// docs/development.md's package table lists every package of the module
// once, one line each, and nothing else. The list comes from `go list
// ./...` at run time, so a package added, moved or renamed fails here
// until the table says what it holds. Regression: the README's table
// had fallen seven packages behind.
func TestPackageTableListsEveryPackage(t *testing.T) {
	const path = "docs/development.md"
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	listed, bad := docPackages(string(b))
	for _, line := range bad {
		t.Errorf("%s: package table row must start with one package directory in backquotes: %q", path, line)
	}
	pkgs := modulePackages(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages: %q", len(pkgs), pkgs)
	}
	count := map[string]int{}
	for _, p := range listed {
		count[p]++
	}
	for _, p := range pkgs {
		switch count[p] {
		case 1:
		case 0:
			t.Errorf("%s: the package table lacks %s (add \"| `%s` | what it holds |\")", path, p, p)
		default:
			t.Errorf("%s: the package table lists %s %d times", path, p, count[p])
		}
	}
	for p := range count {
		if !slices.Contains(pkgs, p) {
			t.Errorf("%s: the package table lists %s, which `go list ./...` does not", path, p)
		}
	}
}

// markdownFiles are the documentation pages whose links are checked.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{filepath.Join(repoRoot, "README.md"), filepath.Join(repoRoot, "SECURITY.md")}, docs...)
	if len(files) < 6 {
		t.Fatalf("only %d markdown files found: %q", len(files), files)
	}
	return files
}

var (
	// inlineCode is a code span on one line.
	inlineCode = regexp.MustCompile("`[^`\n]*`")
	// linkTarget is the target of an inline link or image, "](target)".
	linkTarget = regexp.MustCompile(`\]\(([^()\s]+)\)`)
	// notInSlug are the characters GitHub drops from a heading's anchor.
	notInSlug = regexp.MustCompile(`[^\p{L}\p{N}\- _]`)
)

// proseLines returns the lines of a markdown document outside fenced
// code blocks.
func proseLines(doc string) []string {
	var out []string
	fenced := false
	for line := range strings.SplitSeq(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, line)
		}
	}
	return out
}

// anchors returns the anchors GitHub makes for the headings of doc:
// lower case, punctuation dropped, spaces as hyphens, "-1", "-2", … for
// repeats.
func anchors(doc string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range proseLines(doc) {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimLeft(line, "#")
		if !strings.HasPrefix(text, " ") {
			continue
		}
		slug := strings.ToLower(strings.TrimSpace(text))
		slug = notInSlug.ReplaceAllString(slug, "")
		slug = strings.ReplaceAll(slug, " ", "-")
		if n := seen[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}

func TestAnchors(t *testing.T) {
	doc := "# Title\n## A complete config: WHM behind `authgate`\n```\n# not a heading\n```\n## 10× and 100× traffic\n## two_factor\n## Sign-in\n## Sign-in\n#nope\n"
	got := anchors(doc)
	for _, want := range []string{"title", "a-complete-config-whm-behind-authgate", "10-and-100-traffic", "two_factor", "sign-in", "sign-in-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] || got["nope"] || len(got) != 6 {
		t.Errorf("anchors = %v", got)
	}
}

// Every relative link in the README, SECURITY.md and docs/ points at a
// file that exists and, with a #fragment, at a heading of that page.
// Moving a section between pages breaks its old links; this finds them.
func TestDocLinksResolve(t *testing.T) {
	pages := map[string]map[string]bool{} // cleaned path -> anchors
	pageAnchors := func(path string) (map[string]bool, error) {
		if a, ok := pages[path]; ok {
			return a, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		pages[path] = anchors(string(b))
		return pages[path], nil
	}
	links := 0
	for _, file := range markdownFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		prose := inlineCode.ReplaceAllString(strings.Join(proseLines(string(b)), "\n"), "``")
		name, _ := filepath.Rel(repoRoot, file)
		for _, m := range linkTarget.FindAllStringSubmatch(prose, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			path, fragment, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
			}
			if _, err := os.Stat(dest); err != nil {
				t.Errorf("%s: link %q: %v", name, target, err)
				continue
			}
			if fragment == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s: link %q has a fragment but is no markdown page", name, target)
				continue
			}
			a, err := pageAnchors(dest)
			if err != nil {
				t.Fatal(err)
			}
			if !a[fragment] {
				t.Errorf("%s: link %q: no heading #%s there", name, target, fragment)
			}
		}
	}
	if links < 30 {
		t.Errorf("only %d relative links found; parser broken?", links)
	}
}

// The README's second command is the test command CI runs: .ci/run holds
// it and says it must match the README exactly.
func TestReadmeTestCommandMatchesCI(t *testing.T) {
	ci, err := os.ReadFile(filepath.Join(repoRoot, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TEST_CMD=\((.*)\)$`).FindSubmatch(ci)
	if m == nil {
		t.Fatal(".ci/run has no TEST_CMD=(...) line")
	}
	testCmd := string(m[1])
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "\n## Try it\n")
	if !ok {
		t.Fatal("README has no \"## Try it\" section")
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal("README's Try it section has no sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	want := "go run ./cmd/authgate demo\n" + testCmd + "\n"
	if block != want {
		t.Errorf("README's two commands are\n%s\nwant (the demo, then .ci/run's TEST_CMD)\n%s", block, want)
	}
}
