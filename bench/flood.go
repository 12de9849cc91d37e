package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// floodResult is authenticated throughput before and during a flood of
// wrong-password sign-ins, and the gateway's memory meanwhile.
type floodResult struct {
	name           string
	clients        int
	before, during wrkResult
	peakRSSKB      int64
	stats          floodStats
	problem        string // the authenticated answers during the flood were not all the upstream's
}

// floodStats counts the flood's answers.
type floodStats struct {
	elapsed                            time.Duration
	wrongPassword, busy, banned, other int64 // 401, 503, 429, anything else
	transport                          int64 // no answer (timeouts, resets)
}

func (s floodStats) total() int64 {
	return s.wrongPassword + s.busy + s.banned + s.other + s.transport
}

// flood measures authenticated throughput (wrk, same connections as the
// rounds) alone, then again while -flood-clients goroutines post wrong
// passwords back to back, and the gateway's peak RSS during the flood.
//
// Each attempt uses a new user name and a new X-Forwarded-For address
// (the gateway trusts 127.0.0.1 as its TLS terminator), so the
// per-user and per-address limits (regulation.max_failures, default 5
// per 5 min) never ban them and every attempt that gets a hashing slot
// reaches argon2id: a distributed attack, the worst case for memory. A
// flood from one address would be banned after 5 failures and answered
// 429 without hashing.
func (b *bench) flood(ctx context.Context, c *candidate) (floodResult, error) {
	r := floodResult{name: c.name, clients: b.o.floodClients}
	if err := verify(c, b.up.body); err != nil {
		return r, err
	}
	b.logf("%s: authenticated traffic alone for %v", c.name, b.o.extraDuration)
	var err error
	if r.before, err = b.wrk.run(ctx, c, b.o.connections, b.o.extraDuration); err != nil {
		return r, err
	}
	if err := r.before.validate(c, b.o.connections); err != nil {
		return r, err
	}
	form, cookie, err := csrfForm(ctx, c)
	if err != nil {
		return r, err
	}
	b.logf("%s: the same during a flood of %d concurrent wrong-password sign-ins", c.name, r.clients)
	r.peakRSSKB, err = peakDuring(c.main.pid(), func() error {
		fctx, stop := context.WithCancel(ctx)
		done := startFlood(fctx, c, r.clients, form, cookie, b.o.floodRetryAfter)
		// Let every flood connection open and the hashing queue fill.
		if err := sleepCtx(ctx, 2*time.Second); err != nil {
			stop()
			done()
			return err
		}
		var werr error
		r.during, werr = b.wrk.run(ctx, c, b.o.connections, b.o.extraDuration)
		stop()
		r.stats = done()
		return werr
	})
	if err != nil {
		return r, err
	}
	if err := r.during.validate(c, b.o.connections); err != nil {
		r.problem = err.Error()
	}
	// The gateway must serve normally again once the flood is over.
	if err := c.main.waitReady(ctx, 30*time.Second, func() error { return verify(c, b.up.body) }); err != nil {
		return r, fmt.Errorf("after the flood: %w", err)
	}
	return r, nil
}

// csrfForm loads the login page once: the CSRF cookie and token are not
// bound to a session, so every flood attempt reuses them.
func csrfForm(ctx context.Context, c *candidate) (url.Values, string, error) {
	br := newBrowser("http://" + c.addr)
	p, err := br.do(ctx, "GET", "/.authgate/login", nil)
	if err != nil {
		return nil, "", err
	}
	tok, _, err := formFields(p, "login")
	if err != nil {
		return nil, "", err
	}
	return url.Values{"csrf_token": {tok}, "rd": {"/"}}, br.cookieHeader("/.authgate/login"), nil
}

// startFlood runs clients goroutines that post wrong passwords until ctx
// ends, each sending its next attempt as soon as the last is answered
// (or, with honorRetryAfter, after the Retry-After of a 503 or 429); the
// returned function waits for them and returns the counts.
func startFlood(ctx context.Context, c *candidate, clients int, base url.Values, cookie string, honorRetryAfter bool) func() floodStats {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: clients, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	target := c.url("/.authgate/login")
	var seq atomic.Int64
	var st struct{ wrong, busy, banned, other, transport atomic.Int64 }
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := seq.Add(1)
				form := url.Values{"csrf_token": base["csrf_token"], "rd": base["rd"],
					"username": {"flood" + strconv.FormatInt(i, 10)}, "password": {"wrong password " + strconv.FormatInt(i, 10)}}
				req, err := http.NewRequestWithContext(ctx, "POST", target, strings.NewReader(form.Encode()))
				if err != nil {
					st.transport.Add(1)
					continue
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Cookie", cookie)
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255))
				res, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						st.transport.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if honorRetryAfter {
					if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
						_ = sleepCtx(ctx, time.Duration(s)*time.Second)
					}
				}
				switch res.StatusCode {
				case http.StatusUnauthorized:
					st.wrong.Add(1)
				case http.StatusServiceUnavailable:
					st.busy.Add(1)
				case http.StatusTooManyRequests:
					st.banned.Add(1)
				default:
					st.other.Add(1)
				}
			}
		}()
	}
	return func() floodStats {
		wg.Wait()
		tr.CloseIdleConnections()
		return floodStats{elapsed: time.Since(start), wrongPassword: st.wrong.Load(), busy: st.busy.Load(),
			banned: st.banned.Load(), other: st.other.Load(), transport: st.transport.Load()}
	}
}
