package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/config"
	"github.com/authgate/authgate/gateway/password"
	"github.com/authgate/authgate/gateway/store"
)

// timedPost submits form to path with a token fetched beforehand, so only
// the POST itself is timed.
func timedPost(b *browser, page, path string, form url.Values) (resp, time.Duration) {
	b.t.Helper()
	p := b.get(page)
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no csrf token on %s", page)
	}
	form.Set("csrf_token", m[1]+m[2])
	begin := time.Now()
	r := b.do("POST", path, form, nil)
	return r, time.Since(begin)
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// An attacker learns nothing from how a failed sign-in is answered: an
// unknown user and a wrong password get the same status and page, in the
// same time (both run argon2id with the configured parameters); the
// right password takes that time too, and then only leads to the code
// step, where every wrong code gets the one code message. Timing is
// compared as medians of many alternating attempts with a generous
// factor, never as absolute times.
func TestFailedSignInsLookAlike(t *testing.T) {
	const rounds = 15
	const factor = 2.0
	params := config.Argon2{MemoryKiB: 8192, Iterations: config.DefaultArgon2Iter, Parallelism: config.DefaultArgon2Threads}
	g := startGatewayWith(t, gwOpts{mode: "required"}, func(c *config.Config) {
		c.Password.Argon2 = params
		c.Regulation.MaxFailures = 1000 // this test is about answers, not bans
	})
	// alice's hash uses the configured parameters, like every hash made
	// or upgraded by this gateway.
	h, err := password.NewHasher(password.Params{MemoryKiB: params.MemoryKiB, Iterations: params.Iterations, Parallelism: params.Parallelism}, nil).Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := g.srv.Store().CreateUser(context.Background(), store.User{Name: "alice", PasswordHash: h, Role: store.RoleUser, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	enroll(t, g, g.browser(t))

	var tUnknown, tWrong, tRight, tCode []time.Duration
	var bodyUnknown, bodyWrong, bodyCode string
	for i := range rounds {
		// Alternate the order so drift in the machine's speed hits all.
		kinds := []string{"unknown", "wrong", "right"}
		if i%2 == 1 {
			slices.Reverse(kinds)
		}
		for _, kind := range kinds {
			b := g.browser(t)
			switch kind {
			case "unknown":
				r, d := timedPost(b, "/.authgate/login", "/.authgate/login", url.Values{"username": {fmt.Sprintf("nobody%d", i)}, "password": {"correct horse"}})
				mustStatus(t, r, http.StatusUnauthorized, "unknown user")
				tUnknown = append(tUnknown, d)
				bodyUnknown = normalized(r.body)
			case "wrong":
				r, d := timedPost(b, "/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {fmt.Sprintf("wrong%d", i)}})
				mustStatus(t, r, http.StatusUnauthorized, "wrong password")
				tWrong = append(tWrong, d)
				bodyWrong = normalized(r.body)
			case "right":
				r, d := timedPost(b, "/.authgate/login", "/.authgate/login", url.Values{"username": {"alice"}, "password": {"correct horse"}})
				mustStatus(t, r, http.StatusSeeOther, "right password")
				tRight = append(tRight, d)
				r, d = timedPost(b, "/.authgate/verify", "/.authgate/verify", url.Values{"code": {"000000"}})
				mustStatus(t, r, http.StatusUnauthorized, "right password, wrong code")
				tCode = append(tCode, d)
				body := normalized(r.body)
				if bodyCode != "" && body != bodyCode {
					t.Fatalf("wrong-code answers differ:\n%s\n---\n%s", bodyCode, body)
				}
				bodyCode = body
			}
		}
	}
	if bodyUnknown != bodyWrong {
		t.Fatalf("an unknown user and a wrong password get different pages:\n%s\n---\n%s", bodyUnknown, bodyWrong)
	}
	if !strings.Contains(bodyWrong, "The username or password is incorrect.") || !strings.Contains(bodyCode, "The security code is invalid.") {
		t.Fatalf("public messages missing:\n%s\n---\n%s", bodyWrong, bodyCode)
	}
	mu, mw, mr := medianOf(tUnknown), medianOf(tWrong), medianOf(tRight)
	t.Logf("medians of %d: unknown user %v, wrong password %v, right password %v; wrong code %v", rounds, mu, mw, mr, medianOf(tCode))
	for _, c := range []struct {
		what string
		a, b time.Duration
	}{
		{"unknown user vs wrong password", mu, mw},
		{"wrong vs right password", mw, mr},
		{"unknown user vs right password", mu, mr},
	} {
		lo, hi := min(c.a, c.b), max(c.a, c.b)
		if float64(hi) > factor*float64(lo) {
			t.Errorf("%s: medians %v and %v differ by more than %.1f×", c.what, c.a, c.b, factor)
		}
	}
}
