package server_test

// Session races: requests that read a session and write it back (a
// touch of LastSeenAt, a rotation to a new id) released at the same
// moment as whatever ends or changes that session.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/internal/testkit"
)

// touchers is how many requests touch the session during its end.
const touchers = 100

// TestAttackSessionTouchOutlivesEnd guards against a session brought
// back to life by the requests it was serving when it ended: a request
// reads the session, finds LastSeenAt older than the touch interval and
// writes the whole session back, after the sign-out (or revocation, or
// password change elsewhere) deleted it. The ended cookie would then
// work again, for as long as the idle timeout keeps renewing it.
func TestAttackSessionTouchOutlivesEnd(t *testing.T) {
	const rounds = 5
	eachStore(t, func(t *testing.T, driver string) {
		g := attackGateway(t, driver, "off", nil)
		ctx := context.Background()

		// race fires touchers GETs of a protected route with the session
		// of b (made stale first) together with end (a request, or nil)
		// and atRelease (an in-process action, or nil), and returns the
		// answer to end. Meanwhile waves of stale touches (the clock moved
		// on before each) keep coming until every request is answered:
		// the race window is the moment of the end (a sign-out is quick,
		// a password change hashes twice first), not only the release.
		race := func(t *testing.T, b *browser, end []byte, atRelease func()) *testkit.BurstResponse {
			t.Helper()
			g.clock.Advance(2 * time.Minute) // LastSeenAt older than the touch interval (1 min)
			var reqs [][]byte
			endAt := -1
			for i := range touchers {
				if i == touchers/2 && end != nil {
					endAt = len(reqs)
					reqs = append(reqs, end)
				}
				reqs = append(reqs, b.raw("GET", twoFactorPath, nil, nil))
			}
			stop := make(chan struct{})
			var waves sync.WaitGroup
			wave := reqs[len(reqs)-10:] // GETs only: end sits in the middle
			waves.Go(func() {
				// At most 30 waves of 61 s: every wave is stale, and no
				// session of the test (the one sending end included) comes
				// near the idle timeout (1 h) meanwhile.
				for range 30 {
					select {
					case <-stop:
						return
					default:
					}
					g.clock.Advance(61 * time.Second)
					_, _ = testkit.Burst(hostOf(g), wave, testkit.BurstOptions{Settle: time.Millisecond})
				}
			})
			out := burst(t, g, reqs, atRelease)
			close(stop)
			waves.Wait()
			if endAt < 0 {
				return nil
			}
			return &out[endAt]
		}
		// stays dead polls the ended session for a second.
		staysDead := func(t *testing.T, round int, id, what string) {
			t.Helper()
			for i := range 5 {
				time.Sleep(200 * time.Millisecond)
				if r := cookieBrowser(t, g, id).get(twoFactorPath); !toLogin(r) {
					t.Errorf("round %d: the session ended by %s works again %v later (%s): a concurrent touch wrote it back",
						round, what, time.Duration(i+1)*200*time.Millisecond, describe(r))
					return
				}
			}
		}

		t.Run("logout", func(t *testing.T) {
			g.addUser(t, "alice", attackPW)
			for round := range rounds {
				b := signInPassword(t, g, "10.220.0.1", "alice")
				id := sessionCookie(t, g, b)
				tok := b.anyToken()
				end := race(t, b, b.raw("POST", "/.authgate/logout", url.Values{"csrf_token": {tok}}, nil), nil)
				if end.Status != http.StatusSeeOther || !strings.HasPrefix(end.Header.Get("Location"), "/.authgate/login") {
					t.Fatalf("round %d: sign-out answered %d -> %q", round, end.Status, end.Header.Get("Location"))
				}
				staysDead(t, round, id, "sign-out")
			}
		})

		t.Run("admin revoke", func(t *testing.T) {
			g.addUser(t, "bob", attackPW)
			svc := userAdmin(g)
			for round := range rounds {
				b := signInPassword(t, g, "10.220.0.2", "bob")
				id := sessionCookie(t, g, b)
				done := make(chan error, 1)
				race(t, b, nil, func() {
					n, err := svc.RevokeSessions(ctx, "bob")
					if err == nil && n == 0 {
						err = fmt.Errorf("no session revoked")
					}
					done <- err
				})
				if err := <-done; err != nil {
					t.Fatalf("round %d: revoke: %v", round, err)
				}
				staysDead(t, round, id, "an admin's revocation")
			}
		})

		t.Run("password changed elsewhere", func(t *testing.T) {
			g.addUser(t, "carol", attackPW)
			pw := attackPW
			for round := range rounds {
				next := fmt.Sprintf("new password %d", round)
				sign := func(ip string) *browser {
					b := g.browserFrom(t, ip)
					r := loginAs(b, "carol", pw)
					mustStatus(t, r, http.StatusSeeOther, "carol's password")
					return b
				}
				victim, other := sign("10.220.0.3"), sign("10.220.0.4")
				id := sessionCookie(t, g, victim)
				tok := other.token("/.authgate/account/password")
				end := race(t, victim, other.raw("POST", "/.authgate/account/password", url.Values{
					"current_password": {pw}, "new_password": {next}, "new_password_repeat": {next}, "csrf_token": {tok}}, nil), nil)
				if end.Status != http.StatusSeeOther || !strings.Contains(end.Header.Get("Location"), "done=password") {
					t.Fatalf("round %d: password change answered %d -> %q", round, end.Status, end.Header.Get("Location"))
				}
				pw = next
				staysDead(t, round, id, "a password change in another session")
			}
		})
	})
}

// TestAttackDoubleRotation guards against one half-finished sign-in
// becoming two complete sessions: two different valid codes (this time
// step's and the next one's, both inside the accepted window) submitted
// at the same moment each consume their own step, and each request
// rotates the same pending session into a full one. At most one may
// result.
func TestAttackDoubleRotation(t *testing.T) {
	const rounds = 5
	eachStore(t, func(t *testing.T, driver string) {
		g := attackGateway(t, driver, "required", nil)
		g.addUser(t, "alice", attackPW)
		secret := giveTOTP(t, g, "alice")
		for round := range rounds {
			g.clock.Advance(90 * time.Second) // steps no earlier round used
			b := g.browserFrom(t, "10.221.0.1")
			if r := loginAs(b, "alice", attackPW); location(r) != "/.authgate/verify" {
				t.Fatalf("round %d: password: %s", round, describe(r))
			}
			tok := b.token("/.authgate/verify")
			now := g.clock.Now()
			reqs := [][]byte{
				b.raw("POST", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, now)}, "csrf_token": {tok}}, xff("10.221.1.1")),
				b.raw("POST", "/.authgate/verify", url.Values{"code": {codeFor(t, secret, now.Add(30*time.Second))}, "csrf_token": {tok}}, xff("10.221.1.2")),
			}
			full := 0
			var answers []string
			for _, r := range burst(t, g, reqs, nil) {
				answers = append(answers, fmt.Sprintf("%d -> %s", r.Status, r.Header.Get("Location")))
				if accepted(r) && reaches(t, g, issuedSession(r.Header), twoFactorPath) {
					full++
				}
			}
			switch {
			case full > 1:
				t.Errorf("round %d: one half-finished sign-in became %d complete sessions (answers %v)", round, full, answers)
			case full == 0:
				t.Fatalf("round %d: neither of two valid codes was accepted (answers %v)", round, answers)
			}
		}
	})
}

// TestAttackSetupRemoveRace guards against the set-up of a new
// authenticator in one session racing its removal in another: each ends
// the account's other sessions, so once both are done at most one of the
// two browsers may still be signed in. Checked, then acted, both can
// leave the other one alive (the removal's sweep runs before the set-up's
// new session exists, and the set-up sweeps nothing).
func TestAttackSetupRemoveRace(t *testing.T) {
	const rounds = 8
	eachStore(t, func(t *testing.T, driver string) {
		g := attackGateway(t, driver, "on", nil)
		for round := range rounds {
			user := fmt.Sprintf("alice%d", round)
			g.addUser(t, user, attackPW)
			secret := giveTOTP(t, g, user)
			s1 := signInCode(t, g, "10.222.0.1", user, secret)
			s2 := signInCode(t, g, "10.222.0.2", user, secret)
			old1, old2 := sessionCookie(t, g, s1), sessionCookie(t, g, s2)
			page := s1.get("/.authgate/account/2fa/setup")
			mustStatus(t, page, http.StatusOK, "set-up page")
			m := secretRE.FindStringSubmatch(page.body)
			if m == nil {
				t.Fatal("no secret on the set-up page")
			}
			tok1 := s1.token("/.authgate/account/2fa/setup")
			tok2 := s2.token("/.authgate/account")
			reqs := [][]byte{
				s1.raw("POST", "/.authgate/account/2fa/setup", url.Values{"code": {codeFor(t, m[1], g.clock.Now())}, "csrf_token": {tok1}}, nil),
				// The removal proves the factor with the next step's code
				// (the set-up's code uses this step's): both sides are
				// equally quick, so either may act first.
				s2.raw("POST", "/.authgate/account/2fa/remove", url.Values{"confirm": {"1"}, "code": {codeFor(t, secret, g.clock.Now().Add(30*time.Second))}, "csrf_token": {tok2}}, nil),
			}
			out := burst(t, g, reqs, nil)
			alive := 0
			var answers []string
			for i, r := range out {
				id := issuedSession(r.Header)
				if id == "" {
					id = []string{old1, old2}[i]
				}
				live := reaches(t, g, id, "/.authgate/account")
				if live {
					alive++
				}
				answers = append(answers, fmt.Sprintf("%s: %d -> %q, signed in afterwards: %v",
					[]string{"set-up", "removal"}[i], r.Status, r.Header.Get("Location"), live))
			}
			if alive > 1 {
				t.Errorf("round %d: after a set-up and a removal of 2FA raced, both browsers are still signed in: %v", round, answers)
			}
			g.clock.Advance(30 * time.Second)
		}
	})
}
