package browsertest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// formServer serves a form on / that posts to /greet, which echoes the
// submitted name back in #result.
func formServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>form</title>
<form method="post" action="/greet">
<input id="name" name="name" autocomplete="off">
<button id="go" type="submit">Go</button>
</form>`)
	})
	mux.HandleFunc("POST /greet", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>result</title><p id="result">Hello, %s!</p>`,
			html.EscapeString(r.PostFormValue("name")))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestFormRoundTrip(t *testing.T) {
	srv := formServer(t)
	ctx := New(t)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "Ada <Lovelace>"),
		chromedp.Click(chromedp.ID("go")),
		chromedp.WaitVisible(chromedp.ID("result")),
	); err != nil {
		Screenshot(t, ctx, filepath.Join(t.TempDir(), "failure.png"))
		t.Fatalf("browser steps: %v", err)
	}

	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("result")))
	if err != nil {
		t.Fatalf("read result: %v", err)
	}
	if want := "Hello, Ada <Lovelace>!"; got != want {
		t.Errorf("result text = %q, want %q", got, want)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("location: %v", err)
	}
	if want := srv.URL + "/greet"; loc != want {
		t.Errorf("location = %q, want %q", loc, want)
	}

	shot := filepath.Join(t.TempDir(), "shots", "result.png")
	Screenshot(t, ctx, shot)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("screenshot not written: %v", err)
	}
	if len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Errorf("screenshot is not a PNG (%d bytes)", len(b))
	}
}

// Two calls in one test get separate, working browsers.
func TestIndependentBrowsers(t *testing.T) {
	srv := formServer(t)
	for i, ctx := range []context.Context{New(t), New(t)} {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
			t.Fatalf("browser %d: navigate: %v", i, err)
		}
		title, err := chromedp.Run(ctx, chromedp.Title())
		if err != nil {
			t.Fatalf("browser %d: title: %v", i, err)
		}
		if title != "form" {
			t.Errorf("browser %d: title = %q, want %q", i, title, "form")
		}
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		ci, require string
		want        bool
	}{
		{"", "", false},
		{"true", "", true},
		{"", "1", true},
		{"", "0", false},
		{"", "yes", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("CI=%q,REQUIRE=%q", tt.ci, tt.require), func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			t.Setenv("AUTHGATE_REQUIRE_BROWSER", tt.require)
			if got := Required(); got != tt.want {
				t.Errorf("Required() = %v, want %v", got, tt.want)
			}
		})
	}
}

// recorder stands in for testing.TB to observe Skip/Fatal without ending
// the real test; like the real ones, both stop the calling goroutine.
type recorder struct {
	testing.TB
	skipped, fatal string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// A missing browser skips locally but fails when a browser is required, so
// CI can never pass by skipping every browser test.
func TestMissingBrowser(t *testing.T) {
	missing := func() (string, error) { return "", errors.New("no chromium") }
	tests := []struct {
		name      string
		ci        string
		wantFatal bool
	}{
		{"local", "", false},
		{"ci", "true", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			t.Setenv("AUTHGATE_REQUIRE_BROWSER", "")
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				newWith(r, missing)
				t.Error("newWith returned without skipping or failing")
			}()
			<-done
			if tt.wantFatal && (r.fatal == "" || r.skipped != "") {
				t.Errorf("fatal=%q skipped=%q, want a fatal", r.fatal, r.skipped)
			}
			if !tt.wantFatal && (r.skipped == "" || r.fatal != "") {
				t.Errorf("fatal=%q skipped=%q, want a skip", r.fatal, r.skipped)
			}
			if msg := r.fatal + r.skipped; !strings.Contains(msg, "no chromium") {
				t.Errorf("message %q does not give the reason", msg)
			}
		})
	}
}
