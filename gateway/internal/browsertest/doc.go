// Package browsertest starts a real headless Chromium for tests, driven by
// chromedp.
//
// New finds the browser (/usr/bin/chromium, else chromium on PATH). When it
// is missing the test is skipped, unless the environment asks for a browser
// (CI non-empty or AUTHGATE_REQUIRE_BROWSER=1): then the test fails, so a CI
// run can never go green by silently skipping every browser test.
package browsertest
