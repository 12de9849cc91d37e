package browsertest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultExecPath is where Debian's chromium package puts the browser.
const DefaultExecPath = "/usr/bin/chromium"

// StepTimeout bounds everything a test does with the context New returns.
const StepTimeout = 60 * time.Second

// startTimeout bounds starting the browser process.
const startTimeout = 60 * time.Second

// ExecPath returns the Chromium binary to use: DefaultExecPath if it is an
// executable file, else "chromium" looked up on PATH.
func ExecPath() (string, error) {
	if fi, err := os.Stat(DefaultExecPath); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return DefaultExecPath, nil
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		return "", errors.New("browsertest: no chromium at " + DefaultExecPath + " or on PATH (install it: apt-get install -y chromium)")
	}
	return p, nil
}

// Required reports whether the environment demands a real browser: CI is
// non-empty or AUTHGATE_REQUIRE_BROWSER=1.
func Required() bool {
	return os.Getenv("CI") != "" || os.Getenv("AUTHGATE_REQUIRE_BROWSER") == "1"
}

// New starts a headless Chromium for t and returns the context of one tab,
// bounded by StepTimeout. Use it with chromedp.Do and chromedp.Run. The
// browser, its tab and its profile directory are removed when t ends.
//
// The browser is started with a context that has no deadline (chromedp binds
// the browser's life to the context of the first Run); only the returned
// tab context has the timeout.
func New(t testing.TB) context.Context {
	t.Helper()
	return newWith(t, ExecPath)
}

func newWith(t testing.TB, find func() (string, error)) context.Context {
	t.Helper()
	path, err := find()
	if err != nil {
		if Required() {
			t.Fatalf("%v; a browser is required here (CI or AUTHGATE_REQUIRE_BROWSER=1)", err)
		}
		t.Skipf("SKIPPING BROWSER TEST: %v (set AUTHGATE_REQUIRE_BROWSER=1 to make this a failure)", err)
	}

	profile, err := os.MkdirTemp("", "authgate-chromium-")
	if err != nil {
		t.Fatalf("browsertest: profile dir: %v", err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // required when running as root (CI containers)
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1024, 768),
	)

	// chromedp logs from its own goroutines; t.Logf after the test has
	// finished panics, so logging stops once cleanup begins.
	var mu sync.Mutex
	done := false
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("chromedp: "+format, args...)
		}
	}

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logf))
	tabCtx, cancelTab := context.WithTimeout(browserCtx, StepTimeout)

	t.Cleanup(func() {
		cancelTab()
		cancelBrowser() // closes the tab and the browser
		cancelAlloc()   // waits for the browser process to exit
		mu.Lock()
		done = true
		mu.Unlock()
		if err := removeAll(profile); err != nil {
			t.Logf("browsertest: removing profile %s: %v", profile, err)
		}
	})

	// Start the browser on the deadline-free context; a watchdog cancels it
	// if Chromium does not come up.
	watchdog := time.AfterFunc(startTimeout, cancelBrowser)
	err = chromedp.Do(browserCtx)
	watchdog.Stop()
	if err != nil {
		t.Fatalf("browsertest: starting %s: %v", path, err)
	}
	return tabCtx
}

// Screenshot saves a PNG of the whole page of ctx's tab to path (creating
// its directory). A failure is reported with t.Errorf, so it can be used
// while already handling another failure.
func Screenshot(t testing.TB, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("browsertest: screenshot: %v", err)
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Errorf("browsertest: screenshot dir: %v", err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("browsertest: screenshot: %v", err)
		return
	}
	t.Logf("browsertest: screenshot saved to %s", path)
}

// removeAll removes dir, retrying briefly: Chromium's helper processes can
// still be writing into the profile just after the browser exits.
func removeAll(dir string) error {
	var err error
	for range 10 {
		if err = os.RemoveAll(dir); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}
