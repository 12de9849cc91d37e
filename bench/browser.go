package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// browser signs in like a web browser: cookie jar, CSRF token from each
// form page, redirects followed one by one.
type browser struct {
	base   string
	client *http.Client
}

func newBrowser(base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{base: base, client: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4},
	}}
}

// page is one response, read whole.
type page struct {
	status    int
	body      []byte
	location  string
	firstByte time.Time
}

func (b *browser) do(ctx context.Context, method, path string, form url.Values) (page, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return page{}, err
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	req.Header.Set("User-Agent", "authgate-bench")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.base)
	}
	var p page
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() { p.firstByte = time.Now() },
	}))
	res, err := b.client.Do(req)
	if err != nil {
		return page{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	p.status = res.StatusCode
	p.location = res.Header.Get("Location")
	if p.body, err = readAllLimit(res.Body, 1<<20); err != nil {
		return page{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return p, nil
}

var (
	csrfRE   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	rdRE     = regexp.MustCompile(`name="rd" value="([^"]*)"`)
	secretRE = regexp.MustCompile(`[?&;]secret=([A-Z2-7]+)`)
)

// formFields returns the CSRF token and rd of a gateway form page.
func formFields(p page, what string) (token, rd string, err error) {
	m := csrfRE.FindSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		return "", "", fmt.Errorf("%s page: status %d, no form (%.200q)", what, p.status, p.body)
	}
	if r := rdRE.FindSubmatch(p.body); r != nil {
		rd = html.UnescapeString(string(r[1]))
	}
	return html.UnescapeString(string(m[1])), rd, nil
}

// loginTiming splits one sign-in (password, then code) into its steps.
type loginTiming struct {
	password time.Duration // POST /.authgate/login
	code     time.Duration // GET the code page + POST the code
	proxied  time.Duration // GET rd until the upstream's first byte
	total    time.Duration // from the password POST to that first byte
}

// signIn signs a in (enrolling a TOTP app on the way if the gateway asks
// for it) and returns once GET / answers with want, the upstream's body.
func (b *browser) signIn(ctx context.Context, a *account, want []byte) (loginTiming, error) {
	var t loginTiming
	p, err := b.do(ctx, "GET", "/.authgate/login", nil)
	if err != nil {
		return t, err
	}
	tok, _, err := formFields(p, "login")
	if err != nil {
		return t, err
	}
	start := time.Now()
	p, err = b.do(ctx, "POST", "/.authgate/login", url.Values{
		"csrf_token": {tok}, "rd": {"/"}, "username": {a.name}, "password": {a.password},
	})
	if err != nil {
		return t, err
	}
	if p.status != http.StatusSeeOther {
		return t, fmt.Errorf("password for %s: status %d, want 303", a.name, p.status)
	}
	t.password = time.Since(start)
	loc := p.location
	for range 10 {
		u, err := url.Parse(loc)
		if err != nil {
			return t, fmt.Errorf("redirect %q: %w", loc, err)
		}
		switch u.Path {
		case "/.authgate/verify", "/.authgate/enroll":
			began := time.Now()
			if loc, err = b.submitCode(ctx, a, loc, u.Path); err != nil {
				return t, err
			}
			t.code += time.Since(began)
		case "/.authgate/account/recovery/first":
			// The first recovery codes, shown once; the page links on to rd.
			if p, err = b.do(ctx, "GET", loc, nil); err != nil {
				return t, err
			}
			if p.status != http.StatusOK {
				return t, fmt.Errorf("first recovery codes: status %d", p.status)
			}
			loc = u.Query().Get("rd")
		default:
			if strings.HasPrefix(u.Path, "/.authgate/") {
				return t, fmt.Errorf("sign-in of %s led to unexpected page %s", a.name, u.Path)
			}
			began := time.Now()
			if p, err = b.do(ctx, "GET", loc, nil); err != nil {
				return t, err
			}
			if p.status == http.StatusFound || p.status == http.StatusSeeOther {
				loc = p.location
				continue
			}
			if p.status != http.StatusOK || !bytes.Equal(p.body, want) {
				return t, fmt.Errorf("after sign-in GET %s: status %d, %d bytes (want 200 and the upstream's %d bytes)", loc, p.status, len(p.body), len(want))
			}
			t.proxied = p.firstByte.Sub(began)
			t.total = p.firstByte.Sub(start)
			return t, nil
		}
	}
	return t, fmt.Errorf("sign-in of %s: too many redirects", a.name)
}

// submitCode loads the enrolment or verification page and posts a fresh
// TOTP code; it returns where the gateway sends the browser next.
func (b *browser) submitCode(ctx context.Context, a *account, loc, path string) (string, error) {
	p, err := b.do(ctx, "GET", loc, nil)
	if err != nil {
		return "", err
	}
	tok, rd, err := formFields(p, path)
	if err != nil {
		return "", err
	}
	if path == "/.authgate/enroll" {
		m := secretRE.FindSubmatch(p.body)
		if m == nil {
			return "", errors.New("enrolment page shows no otpauth secret")
		}
		a.secret = string(m[1])
		a.usedSteps = map[int64]bool{}
	}
	if a.secret == "" {
		return "", fmt.Errorf("%s asks for a code but %s has no secret", path, a.name)
	}
	code, err := a.nextCode(ctx)
	if err != nil {
		return "", err
	}
	p, err = b.do(ctx, "POST", path, url.Values{"csrf_token": {tok}, "rd": {rd}, "code": {code}})
	if err != nil {
		return "", err
	}
	if p.status != http.StatusSeeOther {
		return "", fmt.Errorf("code for %s at %s: status %d, want 303", a.name, path, p.status)
	}
	return p.location, nil
}

const totpPeriod = 30

// nextCode returns a code for a time step the gateway has not seen used
// yet (each step is accepted once): the current one, else the next or
// the previous (skew 1), else it waits for a new step.
func (a *account) nextCode(ctx context.Context) (string, error) {
	for {
		now := time.Now()
		for _, off := range []int64{0, 1, -1} {
			at := now.Add(time.Duration(off*totpPeriod) * time.Second)
			step := at.Unix() / totpPeriod
			if a.usedSteps[step] {
				continue
			}
			a.usedSteps[step] = true
			return totp.GenerateCodeCustom(a.secret, at, totp.ValidateOpts{
				Period: totpPeriod, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
			})
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return "", err
		}
	}
}

// cookieHeader is the Cookie header the browser sends for path.
func (b *browser) cookieHeader(path string) string {
	u, _ := url.Parse(b.base + path)
	var parts []string
	for _, c := range b.client.Jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// readAllLimit reads r whole, failing beyond limit bytes.
func readAllLimit(r io.Reader, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	return b, nil
}
