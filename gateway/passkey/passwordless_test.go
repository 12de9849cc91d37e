package passkey_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/passkey"
	"github.com/authgate/authgate/gateway/passkey/passkeytest"
	"github.com/authgate/authgate/gateway/store"
)

// memLister is a store.Users.ListUsers over accounts kept in name order,
// honouring After and Limit.
type memLister struct {
	mu     sync.Mutex
	users  []store.User
	err    error
	calls  int
	limits []int
}

func (l *memLister) put(u store.User) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, found := slices.BinarySearchFunc(l.users, u.Name, func(x store.User, name string) int { return strings.Compare(x.Name, name) })
	if found {
		l.users[i] = u.Clone()
		return
	}
	l.users = slices.Insert(l.users, i, u.Clone())
}

func (l *memLister) ListUsers(_ context.Context, opts store.ListOptions) ([]store.User, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	l.limits = append(l.limits, opts.Limit)
	if l.err != nil {
		return nil, l.err
	}
	var out []store.User
	for _, u := range l.users {
		if u.Name <= opts.After {
			continue
		}
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
		out = append(out, u.Clone())
	}
	return out, nil
}

// pwWorld is alice and bob with a passkey each, in a lister.
type pwWorld struct {
	*world
	list *memLister
}

func newPWWorld(t *testing.T) *pwWorld {
	t.Helper()
	w := newWorld(t)
	l := &memLister{}
	for _, name := range []string{"aaron", "zoe"} {
		l.put(store.User{Name: name})
	}
	l.put(w.alice)
	l.put(w.bob)
	return &pwWorld{world: w, list: l}
}

func (w *pwWorld) begin(t *testing.T) passkey.Begin {
	t.Helper()
	b, err := w.svc.BeginPasswordless()
	if err != nil {
		t.Fatalf("BeginPasswordless: %v", err)
	}
	return b
}

func TestPasswordlessRoundTrip(t *testing.T) {
	w := newPWWorld(t)
	ctx := context.Background()
	if !w.svc.Passwordless() {
		t.Fatal("Passwordless() = false")
	}
	b := w.begin(t)
	opts := decodeJSON[requestJSON](t, b.Options).PublicKey
	if len(opts.AllowCredentials) != 0 || opts.UserVerification != "required" || opts.RPID != rpID {
		t.Errorf("passwordless options: allow %v, uv %q, rpId %q", opts.AllowCredentials, opts.UserVerification, opts.RPID)
	}

	answer := must(w.authB.Get(b.Options)) // bob's discoverable key
	u, use, err := w.svc.FinishPasswordless(ctx, b.State, answer, passkey.OwnerLookup(w.list))
	if err != nil {
		t.Fatalf("FinishPasswordless: %v", err)
	}
	if u.Name != "bob" || !bytes.Equal(use.ID, w.bob.Passkeys[0].ID) || use.SignCount != 1 || !use.UserVerified {
		t.Fatalf("signed in %q with %+v", u.Name, use)
	}
	if err := passkey.Record(&u, use, w.clock.Now()); err != nil {
		t.Fatalf("Record: %v", err)
	}

	// The same answer again: the challenge is spent.
	_, _, err = w.svc.FinishPasswordless(ctx, b.State, answer, passkey.OwnerLookup(w.list))
	wantErr(t, err, passkey.ErrChallenge)
	// And so is any other answer to it.
	_, _, err = w.svc.FinishPasswordless(ctx, b.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list))
	wantErr(t, err, passkey.ErrChallenge)

	// A new ceremony signs in again.
	b = w.begin(t)
	u, use, err = w.svc.FinishPasswordless(ctx, b.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list))
	if err != nil || u.Name != "alice" || use.SignCount != 2 { // alice's key signed 1 in the refused answer
		t.Fatalf("second sign-in: %q %+v %v", u.Name, use, err)
	}
}

func TestPasswordlessRefusals(t *testing.T) {
	cases := []struct {
		name string
		// make returns the state, the answer and the lookup.
		make func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup)
		want error
	}{
		{
			name: "no user verification",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				b := w.begin(t)
				w.authA.UserVerified = false
				return b.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrRefused,
		},
		{
			name: "user handle of no account",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				// A key made in a registration never finished.
				rb, _ := w.svc.BeginRegistration(store.User{Name: "carol"}, "k")
				stranger := passkeytest.New(origin)
				must(stranger.Create(rb.Options))
				b := w.begin(t)
				return b.State, must(stranger.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrRefused,
		},
		{
			name: "account's key removed",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				u := w.alice.Clone()
				u.Passkeys = nil
				w.list.put(u)
				b := w.begin(t)
				return b.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrRefused,
		},
		{
			name: "account's key replaced by another",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				u := w.alice.Clone()
				u.Passkeys[0].ID = []byte("another key")
				w.list.put(u)
				b := w.begin(t)
				return b.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrRefused,
		},
		{
			name: "key of another account than the handle's",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				// A lookup that returns alice for bob's handle.
				b := w.begin(t)
				lookup := func(context.Context, []byte) (store.User, error) { return w.alice, nil }
				return b.State, must(w.authB.Get(b.Options)), lookup
			},
			want: passkey.ErrRefused,
		},
		{
			name: "lookup returning an account that owns the key but has another handle",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				b := w.begin(t)
				u := w.alice.Clone()
				u.PasskeyUserID = bytes.Repeat([]byte{3}, 32)
				lookup := func(context.Context, []byte) (store.User, error) { return u, nil }
				return b.State, must(w.authA.Get(b.Options)), lookup
			},
			want: passkey.ErrRefused,
		},
		{
			name: "wrong origin",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				b := w.begin(t)
				w.authA.Origin = "https://evil.example.net"
				return b.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrRefused,
		},
		{
			name: "wrong RP ID",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				b := w.begin(t)
				w.authA.RPIDOverride = "evil.example.net"
				return b.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrRefused,
		},
		{
			name: "bad signature",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				b := w.begin(t)
				return b.State, flipSignature(t, must(w.authA.Get(b.Options))), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrRefused,
		},
		{
			name: "answer for challenge A with state B",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				first, second := w.begin(t), w.begin(t)
				return second.State, must(w.authA.Get(first.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrRefused,
		},
		{
			name: "garbage answer",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				return w.begin(t).State, []byte("{"), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrRefused,
		},
		{
			name: "cloned key",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				u := w.alice.Clone()
				u.Passkeys[0].SignCount = 10
				w.list.put(u)
				b := w.begin(t)
				return b.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrCloned,
		},
		{
			name: "login state",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				b := w.beginLogin(w.alice)
				return b.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "registration state",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				rb, _ := w.svc.BeginRegistration(w.alice, "k")
				b := w.begin(t)
				return rb.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "nil state",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				b := w.begin(t)
				return nil, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "garbage state",
			make: func(t *testing.T, w *pwWorld) ([]byte, []byte, passkey.Lookup) {
				b := w.begin(t)
				return []byte("0123456789abcdef0123456789abcdef"), must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list)
			},
			want: passkey.ErrChallenge,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newPWWorld(t)
			state, answer, lookup := tc.make(t, w)
			u, use, err := w.svc.FinishPasswordless(context.Background(), state, answer, lookup)
			t.Logf("error: %v", err)
			wantErr(t, err, tc.want)
			for _, e := range passkeyErrors {
				if e != tc.want && errors.Is(err, e) {
					t.Errorf("error %v is also %v", err, e)
				}
			}
			if tc.want != passkey.ErrCloned && (u.Name != "" || use.ID != nil) {
				t.Errorf("a refused sign-in returned %q, %+v", u.Name, use)
			}
			if tc.want == passkey.ErrCloned && use.SignCount != 0 {
				t.Errorf("a cloned key's use carries counter %d", use.SignCount)
			}
			// Whatever the verdict on a sealed state that opens, its
			// challenge is spent: a good answer to it is refused now.
			if tc.want == passkey.ErrRefused || tc.want == passkey.ErrCloned {
				_, _, err := w.svc.FinishPasswordless(context.Background(), state, answer, lookup)
				wantErr(t, err, passkey.ErrChallenge)
			}
		})
	}
}

// A store failure while finding the account is not a refusal of the key
// (nor a bad challenge): it is returned as itself, and nobody signs in.
func TestPasswordlessLookupFailure(t *testing.T) {
	boom := errors.New("store is down")
	for name, lookup := range map[string]func(w *pwWorld) passkey.Lookup{
		"lister error": func(w *pwWorld) passkey.Lookup {
			w.list.err = boom
			return passkey.OwnerLookup(w.list)
		},
		"lookup error": func(w *pwWorld) passkey.Lookup {
			return func(context.Context, []byte) (store.User, error) {
				return store.User{}, fmt.Errorf("wrapped: %w", boom)
			}
		},
		"context canceled": func(w *pwWorld) passkey.Lookup {
			return func(ctx context.Context, _ []byte) (store.User, error) { return store.User{}, context.Canceled }
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newPWWorld(t)
			b := w.begin(t)
			u, use, err := w.svc.FinishPasswordless(context.Background(), b.State, must(w.authA.Get(b.Options)), lookup(w))
			if err == nil {
				t.Fatal("no error")
			}
			for _, e := range passkeyErrors {
				if errors.Is(err, e) {
					t.Errorf("store failure reported as %v: %v", e, err)
				}
			}
			if name != "context canceled" && !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the store's", err)
			}
			if u.Name != "" || use.ID != nil {
				t.Errorf("signed in %q %+v on a store failure", u.Name, use)
			}
		})
	}
}

// A store failure while spending the challenge: no sign-in, and not
// reported as a refusal.
func TestPasswordlessSpendFailure(t *testing.T) {
	w := newPWWorld(t)
	b := w.begin(t)
	boom := errors.New("counters down")
	w.spent.err = boom
	u, _, err := w.svc.FinishPasswordless(context.Background(), b.State, must(w.authA.Get(b.Options)), passkey.OwnerLookup(w.list))
	if !errors.Is(err, boom) || errors.Is(err, passkey.ErrRefused) || errors.Is(err, passkey.ErrChallenge) {
		t.Fatalf("error %v", err)
	}
	if u.Name != "" {
		t.Errorf("signed in %q", u.Name)
	}
}

func TestPasswordlessOff(t *testing.T) {
	on := newPWWorld(t)
	off, err := passkey.New(func() passkey.Options { o := baseOptions(); o.Passwordless = false; return o }(), on.box, on.spent, on.clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if off.Passwordless() {
		t.Fatal("Passwordless() = true")
	}
	b, err := off.BeginPasswordless()
	if err == nil || b.State != nil || b.Options != nil {
		t.Fatalf("BeginPasswordless when off: %+v, %v", b, err)
	}
	// A state sealed while it was on (same box), answered well.
	sb := on.begin(t)
	answer := must(on.authA.Get(sb.Options))
	u, _, err := off.FinishPasswordless(context.Background(), sb.State, answer, passkey.OwnerLookup(on.list))
	wantErr(t, err, passkey.ErrChallenge)
	if u.Name != "" {
		t.Errorf("signed in %q", u.Name)
	}
	if on.spent.calls != 0 || on.list.calls != 0 {
		t.Errorf("passwordless off still spent (%d) or looked up (%d)", on.spent.calls, on.list.calls)
	}
}

func TestOwnerLookupPages(t *testing.T) {
	ctx := context.Background()
	handle := func(i int) []byte {
		h := make([]byte, 32)
		copy(h, fmt.Sprintf("handle-%d", i))
		return h
	}
	lister := func(n int) *memLister {
		l := &memLister{}
		for i := range n {
			l.users = append(l.users, store.User{
				Name:          fmt.Sprintf("user%04d", i),
				PasskeyUserID: handle(i),
				Passkeys:      []store.Passkey{{ID: fmt.Appendf(nil, "key-%d", i)}},
			})
		}
		return l
	}

	for _, n := range []int{1201, 1000, 500, 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			l := lister(n)
			lookup := passkey.OwnerLookup(l)
			for _, i := range []int{0, n / 2, n - 1} {
				u, err := lookup(ctx, handle(i))
				if err != nil || u.Name != fmt.Sprintf("user%04d", i) {
					t.Errorf("handle %d: %q, %v", i, u.Name, err)
				}
			}
			l.calls = 0
			_, err := lookup(ctx, handle(n))
			wantErr(t, err, store.ErrNotFound)
			if want := n/500 + 1; l.calls != want {
				t.Errorf("unknown handle read %d pages, want %d", l.calls, want)
			}
			for _, lim := range l.limits {
				if lim <= 0 {
					t.Errorf("ListUsers called without a limit")
				}
			}
		})
	}

	l := lister(1201)
	for name, h := range map[string][]byte{"empty": {}, "nil": nil} {
		l.calls = 0
		_, err := passkey.OwnerLookup(l)(ctx, h)
		wantErr(t, err, store.ErrNotFound)
		if l.calls != 0 {
			t.Errorf("%s handle: %d pages read", name, l.calls)
		}
	}

	// An account whose handle matches but has no key left is nobody.
	l.users[1200].Passkeys = nil
	_, err := passkey.OwnerLookup(l)(ctx, handle(1200))
	wantErr(t, err, store.ErrNotFound)

	// A store failure is not "not found".
	boom := errors.New("store is down")
	l.err = boom
	_, err = passkey.OwnerLookup(l)(ctx, handle(3))
	if !errors.Is(err, boom) || errors.Is(err, store.ErrNotFound) {
		t.Errorf("lister error: %v", err)
	}
}

// The spent mark outlives the state: up to the state's last instant, a
// second answer finds the challenge spent (the counter's window covers
// the timeout).
func TestPasswordlessSpentUntilExpiry(t *testing.T) {
	w := newPWWorld(t)
	ctx := context.Background()
	b := w.begin(t)
	answer := must(w.authA.Get(b.Options))
	if _, _, err := w.svc.FinishPasswordless(ctx, b.State, answer, passkey.OwnerLookup(w.list)); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(timeout - time.Nanosecond)
	_, _, err := w.svc.FinishPasswordless(ctx, b.State, answer, passkey.OwnerLookup(w.list))
	wantErr(t, err, passkey.ErrChallenge)
	if !strings.Contains(err.Error(), "already answered") {
		t.Errorf("refused for another reason than the spent challenge: %v", err)
	}
}
