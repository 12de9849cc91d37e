package passkey_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/authgate/authgate/gateway/passkey"
	"github.com/authgate/authgate/gateway/passkey/passkeytest"
	"github.com/authgate/authgate/gateway/secretbox"
	"github.com/authgate/authgate/gateway/store"
)

const (
	rpID    = "example.com"
	origin  = "https://panel.example.com"
	timeout = 2 * time.Minute
)

// start is the fake clock's first reading; deliberately not in UTC so
// that the tests see the package convert the times it stores.
var start = time.Date(2026, 3, 14, 9, 26, 53, 0, time.FixedZone("CET", 3600))

// fakeClock is the injected clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// counters is an honest in-memory store.Counters.Incr: a counter starts
// at delta and expires after window (on the fake clock).
type counters struct {
	mu    sync.Mutex
	clock *fakeClock
	vals  map[string]int64
	until map[string]time.Time
	err   error
	calls int
}

func newCounters(c *fakeClock) *counters {
	return &counters{clock: c, vals: map[string]int64{}, until: map[string]time.Time{}}
}

func (c *counters) Incr(_ context.Context, key string, delta int64, window time.Duration) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.err != nil {
		return 0, c.err
	}
	now := c.clock.Now()
	if u, ok := c.until[key]; !ok || !now.Before(u) {
		c.vals[key] = 0
		c.until[key] = now.Add(window)
	}
	c.vals[key] += delta
	return c.vals[key], nil
}

// fixture is a Service on the fake clock with a real secretbox.
type fixture struct {
	t     *testing.T
	clock *fakeClock
	spent *counters
	box   *secretbox.Box
	opts  passkey.Options
	svc   *passkey.Service
}

func baseOptions() passkey.Options {
	return passkey.Options{
		RPID:         rpID,
		RPName:       "Admin panel",
		Origins:      []string{origin},
		Timeout:      timeout,
		Passwordless: true,
	}
}

func newFixture(t *testing.T, edit ...func(*passkey.Options)) *fixture {
	t.Helper()
	o := baseOptions()
	for _, e := range edit {
		e(&o)
	}
	box, err := secretbox.New(secretbox.Key{0x70, 0x61, 0x73, 0x73})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: start}
	spent := newCounters(clock)
	svc, err := passkey.New(o, box, spent, clock.Now, nil)
	if err != nil {
		t.Fatalf("passkey.New: %v", err)
	}
	return &fixture{t: t, clock: clock, spent: spent, box: box, opts: o, svc: svc}
}

// register runs a whole registration of a new key on a for u and stores
// it in u with Add.
func (f *fixture) register(u *store.User, a *passkeytest.Authenticator, name string) store.Passkey {
	f.t.Helper()
	b, err := f.svc.BeginRegistration(*u, name)
	if err != nil {
		f.t.Fatalf("BeginRegistration(%s): %v", u.Name, err)
	}
	answer, err := a.Create(b.Options)
	if err != nil {
		f.t.Fatalf("authenticator Create: %v", err)
	}
	reg, err := f.svc.FinishRegistration(*u, b.State, answer)
	if err != nil {
		f.t.Fatalf("FinishRegistration(%s): %v", u.Name, err)
	}
	if err := passkey.Add(u, reg); err != nil {
		f.t.Fatalf("Add(%s): %v", u.Name, err)
	}
	return reg.Key
}

func (f *fixture) beginLogin(u store.User) passkey.Begin {
	f.t.Helper()
	b, err := f.svc.BeginLogin(u)
	if err != nil {
		f.t.Fatalf("BeginLogin(%s): %v", u.Name, err)
	}
	return b
}

// login runs a second-factor ceremony with a for u (not recorded).
func (f *fixture) login(u store.User, a *passkeytest.Authenticator) (passkey.Use, error) {
	f.t.Helper()
	b := f.beginLogin(u)
	answer, err := a.Get(b.Options)
	if err != nil {
		f.t.Fatalf("authenticator Get: %v", err)
	}
	return f.svc.FinishLogin(u, b.State, answer)
}

// loginRecord runs a second-factor ceremony that must succeed and
// records it in u.
func (f *fixture) loginRecord(u *store.User, a *passkeytest.Authenticator) passkey.Use {
	f.t.Helper()
	use, err := f.login(*u, a)
	if err != nil {
		f.t.Fatalf("FinishLogin(%s): %v", u.Name, err)
	}
	if err := passkey.Record(u, use, f.clock.Now()); err != nil {
		f.t.Fatalf("Record(%s): %v", u.Name, err)
	}
	return use
}

// world is alice and bob, each with one key registered on their own
// authenticator.
type world struct {
	*fixture
	alice, bob   store.User
	authA, authB *passkeytest.Authenticator
}

func newWorld(t *testing.T, edit ...func(*passkey.Options)) *world {
	t.Helper()
	f := newFixture(t, edit...)
	w := &world{
		fixture: f,
		alice:   store.User{Name: "alice"},
		bob:     store.User{Name: "bob"},
		authA:   passkeytest.New(origin),
		authB:   passkeytest.New(origin),
	}
	f.register(&w.alice, w.authA, "alice's laptop")
	f.register(&w.bob, w.authB, "bob's key")
	return w
}

// Wire formats of the options, as the browser reads them.

type creationJSON struct {
	PublicKey struct {
		RP struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		User struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
		Challenge          string `json:"challenge"`
		Timeout            int64  `json:"timeout"`
		ExcludeCredentials []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
		AuthenticatorSelection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		Attestation string          `json:"attestation"`
		Extensions  map[string]bool `json:"extensions"`
	} `json:"publicKey"`
}

type requestJSON struct {
	PublicKey struct {
		Challenge        string `json:"challenge"`
		Timeout          int64  `json:"timeout"`
		RPID             string `json:"rpId"`
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		UserVerification string `json:"userVerification"`
	} `json:"publicKey"`
}

func decodeJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64url %q: %v", s, err)
	}
	return b
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

// passkeyErrors are the package's sentinel errors.
var passkeyErrors = []error{passkey.ErrChallenge, passkey.ErrRefused, passkey.ErrCloned, passkey.ErrExists, passkey.ErrNoKeys}

func TestNew(t *testing.T) {
	clock := &fakeClock{t: start}
	box, err := secretbox.New(secretbox.Key{1})
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]passkey.Options{
		"no origins":      {RPID: rpID},
		"invalid RP ID":   {RPID: "https://example.com/", Origins: []string{origin}},
		"RP ID with port": {RPID: "example.com:443", Origins: []string{origin}},
	} {
		if _, err := passkey.New(o, box, newCounters(clock), clock.Now, nil); err == nil {
			t.Errorf("New with %s: no error", name)
		}
	}

	// Defaults: a 2-minute timeout, UV preferred, no attestation, the
	// RP ID as its name.
	svc, err := passkey.New(passkey.Options{RPID: rpID, Origins: []string{origin}}, box, newCounters(clock), clock.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Passwordless() {
		t.Error("Passwordless() = true by default")
	}
	b, err := svc.BeginRegistration(store.User{Name: "alice"}, "k")
	if err != nil {
		t.Fatal(err)
	}
	c := decodeJSON[creationJSON](t, b.Options).PublicKey
	if c.Timeout != (2*time.Minute).Milliseconds() || c.RP.Name != rpID || c.AuthenticatorSelection.UserVerification != "preferred" || c.Attestation != "none" {
		t.Errorf("defaults: timeout %d, rp name %q, uv %q, attestation %q", c.Timeout, c.RP.Name, c.AuthenticatorSelection.UserVerification, c.Attestation)
	}
}

func TestRegistrationRoundTrip(t *testing.T) {
	f := newFixture(t)
	u := store.User{Name: "alice"}
	a := passkeytest.New(origin)

	b, err := f.svc.BeginRegistration(u, "Laptop")
	if err != nil {
		t.Fatal(err)
	}
	opts := decodeJSON[creationJSON](t, b.Options).PublicKey
	if opts.RP.ID != rpID || opts.RP.Name != "Admin panel" || opts.User.Name != "alice" {
		t.Errorf("options rp %+v user %+v", opts.RP, opts.User)
	}
	if opts.Timeout != timeout.Milliseconds() {
		t.Errorf("options timeout = %d ms, want %d", opts.Timeout, timeout.Milliseconds())
	}
	if opts.AuthenticatorSelection.ResidentKey != "preferred" || !opts.Extensions["credProps"] {
		t.Errorf("options ask for no passkey: selection %+v, extensions %v", opts.AuthenticatorSelection, opts.Extensions)
	}
	if len(opts.ExcludeCredentials) != 0 {
		t.Errorf("first registration excludes %d keys", len(opts.ExcludeCredentials))
	}
	handle := b64(t, opts.User.ID)
	if len(handle) != 32 {
		t.Fatalf("user handle is %d bytes, want 32", len(handle))
	}

	answer, err := a.Create(b.Options)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second)
	reg, err := f.svc.FinishRegistration(u, b.State, answer)
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	ids := a.Credentials()
	if len(ids) != 1 {
		t.Fatalf("authenticator holds %d credentials", len(ids))
	}
	k := reg.Key
	if !bytes.Equal(k.ID, ids[0]) {
		t.Errorf("Key.ID = %x, want %x", k.ID, ids[0])
	}
	if k.Name != "Laptop" {
		t.Errorf("Key.Name = %q", k.Name)
	}
	// The stored public key is the authenticator's.
	pub, _ := a.PublicKey(k.ID)
	parsed, err := webauthncose.ParsePublicKey(k.PublicKey)
	if err != nil {
		t.Fatalf("Key.PublicKey does not parse: %v", err)
	}
	ec, ok := parsed.(webauthncose.EC2PublicKeyData)
	raw, _ := pub.Bytes()
	if !ok || !bytes.Equal(ec.XCoord, raw[1:33]) || !bytes.Equal(ec.YCoord, raw[33:]) {
		t.Errorf("Key.PublicKey %T is not the authenticator's key", parsed)
	}
	wantCreated := f.clock.Now().UTC()
	if !k.CreatedAt.Equal(wantCreated) || k.CreatedAt.Location() != time.UTC {
		t.Errorf("Key.CreatedAt = %v, want %v (UTC)", k.CreatedAt, wantCreated)
	}
	if !k.Discoverable {
		t.Error("Key.Discoverable = false although credProps reported rk")
	}
	if k.SignCount != 0 || !k.LastUsedAt.IsZero() {
		t.Errorf("new key: SignCount %d, LastUsedAt %v", k.SignCount, k.LastUsedAt)
	}
	if len(k.Transports) != 1 || k.Transports[0] != "internal" {
		t.Errorf("Key.Transports = %v", k.Transports)
	}
	if len(reg.UserID) != 32 || !bytes.Equal(reg.UserID, handle) {
		t.Errorf("Registered.UserID = %x, want the options' %x", reg.UserID, handle)
	}
	if h, _ := a.UserHandle(k.ID); !bytes.Equal(h, reg.UserID) {
		t.Errorf("authenticator stored handle %x, Registered.UserID %x", h, reg.UserID)
	}

	// Add stores the key and the account's user handle.
	stored := u.Clone()
	if err := passkey.Add(&stored, reg); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if !bytes.Equal(stored.PasskeyUserID, reg.UserID) || len(stored.Passkeys) != 1 || !bytes.Equal(stored.Passkeys[0].ID, k.ID) {
		t.Fatalf("after Add: handle %x, keys %d", stored.PasskeyUserID, len(stored.Passkeys))
	}
	// Add keeps its own copy.
	reg.UserID[0] ^= 0xff
	reg.Key.ID[0] ^= 0xff
	if bytes.Equal(stored.PasskeyUserID, reg.UserID) || bytes.Equal(stored.Passkeys[0].ID, reg.Key.ID) {
		t.Error("Add aliases the Registered's slices")
	}
	reg.UserID[0] ^= 0xff
	reg.Key.ID[0] ^= 0xff

	before := stored.Clone()
	wantErr(t, passkey.Add(&stored, reg), passkey.ErrExists)
	other := reg
	other.UserID = bytes.Repeat([]byte{7}, 32)
	other.Key.ID = []byte("another credential")
	wantErr(t, passkey.Add(&stored, other), passkey.ErrChallenge)
	if len(stored.Passkeys) != len(before.Passkeys) || !bytes.Equal(stored.PasskeyUserID, before.PasskeyUserID) {
		t.Error("a refused Add changed the account")
	}

	// The same answer finished again, now that the account has the key:
	// ErrExists.
	_, err = f.svc.FinishRegistration(stored, b.State, answer)
	wantErr(t, err, passkey.ErrExists)

	// A second registration keeps the user handle and excludes the
	// first key: the first authenticator refuses to make another.
	b2, err := f.svc.BeginRegistration(stored, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	opts2 := decodeJSON[creationJSON](t, b2.Options).PublicKey
	if !bytes.Equal(b64(t, opts2.User.ID), stored.PasskeyUserID) {
		t.Errorf("second registration user handle %x, want %x", b64(t, opts2.User.ID), stored.PasskeyUserID)
	}
	if len(opts2.ExcludeCredentials) != 1 || !bytes.Equal(b64(t, opts2.ExcludeCredentials[0].ID), k.ID) {
		t.Errorf("second registration excludes %v, want the first key", opts2.ExcludeCredentials)
	}
	if _, err := a.Create(b2.Options); err == nil {
		t.Error("the first authenticator registered again despite the exclusion")
	}
	a2 := passkeytest.New(origin)
	answer2, err := a2.Create(b2.Options)
	if err != nil {
		t.Fatal(err)
	}
	reg2, err := f.svc.FinishRegistration(stored, b2.State, answer2)
	if err != nil {
		t.Fatalf("second FinishRegistration: %v", err)
	}
	if !bytes.Equal(reg2.UserID, stored.PasskeyUserID) || reg2.Key.Name != "Phone" {
		t.Errorf("second key: handle %x, name %q", reg2.UserID, reg2.Key.Name)
	}
	if err := passkey.Add(&stored, reg2); err != nil {
		t.Fatalf("second Add: %v", err)
	}
	if len(stored.Passkeys) != 2 || !bytes.Equal(stored.PasskeyUserID, reg.UserID) {
		t.Errorf("after the second Add: %d keys, handle %x", len(stored.Passkeys), stored.PasskeyUserID)
	}
}

// A registration begun before the account got its user handle (another
// registration finished in between) is refused by Add.
func TestAddRefusesARaceOnTheUserHandle(t *testing.T) {
	f := newFixture(t)
	u := store.User{Name: "alice"}
	b1, err := f.svc.BeginRegistration(u, "one")
	if err != nil {
		t.Fatal(err)
	}
	b2, err := f.svc.BeginRegistration(u, "two")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := f.svc.FinishRegistration(u, b1.State, must(passkeytest.New(origin).Create(b1.Options)))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := f.svc.FinishRegistration(u, b2.State, must(passkeytest.New(origin).Create(b2.Options)))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(r1.UserID, r2.UserID) {
		t.Fatal("two registrations for an account without a handle drew the same handle")
	}
	if err := passkey.Add(&u, r1); err != nil {
		t.Fatal(err)
	}
	wantErr(t, passkey.Add(&u, r2), passkey.ErrChallenge)
	if len(u.Passkeys) != 1 {
		t.Errorf("%d keys stored", len(u.Passkeys))
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestBeginRegistrationRandomFailure(t *testing.T) {
	clock := &fakeClock{t: start}
	box, _ := secretbox.New(secretbox.Key{1})
	svc, err := passkey.New(baseOptions(), box, newCounters(clock), clock.Now, failingReader{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.BeginRegistration(store.User{Name: "alice"}, "k"); err == nil {
		t.Fatal("BeginRegistration without randomness: no error")
	}
}

func TestRegistrationRefusals(t *testing.T) {
	type attempt struct {
		user          store.User
		state, answer []byte
	}
	cases := []struct {
		name string
		edit func(*passkey.Options)
		make func(t *testing.T, f *fixture) attempt
		want error
	}{
		{
			name: "wrong origin",
			make: func(t *testing.T, f *fixture) attempt {
				u := store.User{Name: "alice"}
				b, _ := f.svc.BeginRegistration(u, "k")
				a := passkeytest.New("https://evil.example.net")
				return attempt{u, b.State, must(a.Create(b.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "wrong RP ID",
			make: func(t *testing.T, f *fixture) attempt {
				u := store.User{Name: "alice"}
				b, _ := f.svc.BeginRegistration(u, "k")
				a := passkeytest.New(origin)
				a.RPIDOverride = "evil.example.net"
				return attempt{u, b.State, must(a.Create(b.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "user verification required but missing",
			edit: func(o *passkey.Options) { o.UserVerification = "required" },
			make: func(t *testing.T, f *fixture) attempt {
				u := store.User{Name: "alice"}
				b, _ := f.svc.BeginRegistration(u, "k")
				a := passkeytest.New(origin)
				a.UserVerified = false
				return attempt{u, b.State, must(a.Create(b.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "expired",
			make: func(t *testing.T, f *fixture) attempt {
				u := store.User{Name: "alice"}
				b, _ := f.svc.BeginRegistration(u, "k")
				answer := must(passkeytest.New(origin).Create(b.Options))
				f.clock.Advance(timeout)
				return attempt{u, b.State, answer}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "state of another user",
			make: func(t *testing.T, f *fixture) attempt {
				b, _ := f.svc.BeginRegistration(store.User{Name: "alice"}, "k")
				return attempt{store.User{Name: "bob"}, b.State, must(passkeytest.New(origin).Create(b.Options))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "login state",
			make: func(t *testing.T, f *fixture) attempt {
				u := store.User{Name: "alice"}
				f.register(&u, passkeytest.New(origin), "first")
				b, _ := f.svc.BeginRegistration(u, "k")
				answer := must(passkeytest.New(origin).Create(b.Options))
				return attempt{u, f.beginLogin(u).State, answer}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "no state",
			make: func(t *testing.T, f *fixture) attempt {
				u := store.User{Name: "alice"}
				b, _ := f.svc.BeginRegistration(u, "k")
				return attempt{u, nil, must(passkeytest.New(origin).Create(b.Options))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "garbage answer",
			make: func(t *testing.T, f *fixture) attempt {
				u := store.User{Name: "alice"}
				b, _ := f.svc.BeginRegistration(u, "k")
				return attempt{u, b.State, []byte(`{"id":"nope"`)}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "answer to another challenge",
			make: func(t *testing.T, f *fixture) attempt {
				u := store.User{Name: "alice"}
				b1, _ := f.svc.BeginRegistration(u, "k")
				b2, _ := f.svc.BeginRegistration(u, "k")
				return attempt{u, b2.State, must(passkeytest.New(origin).Create(b1.Options))}
			},
			want: passkey.ErrRefused,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var edits []func(*passkey.Options)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			f := newFixture(t, edits...)
			at := tc.make(t, f)
			reg, err := f.svc.FinishRegistration(at.user, at.state, at.answer)
			t.Logf("error: %v", err)
			wantErr(t, err, tc.want)
			if reg.Key.ID != nil || reg.UserID != nil {
				t.Errorf("a refused registration returned %+v", reg)
			}
		})
	}
}

func TestSecondFactorRoundTrip(t *testing.T) {
	f := newFixture(t, func(o *passkey.Options) { o.UserVerification = "discouraged" })
	u := store.User{Name: "alice"}
	a := passkeytest.New(origin)
	a.BackupEligible = true
	k := f.register(&u, a, "Laptop")
	if !k.BackupEligible || k.BackupState {
		t.Fatalf("registered BE %v BS %v", k.BackupEligible, k.BackupState)
	}

	b := f.beginLogin(u)
	opts := decodeJSON[requestJSON](t, b.Options).PublicKey
	if opts.RPID != rpID || opts.UserVerification != "discouraged" || opts.Timeout != timeout.Milliseconds() {
		t.Errorf("login options: rpId %q, uv %q, timeout %d", opts.RPID, opts.UserVerification, opts.Timeout)
	}
	if len(opts.AllowCredentials) != 1 || !bytes.Equal(b64(t, opts.AllowCredentials[0].ID), k.ID) {
		t.Errorf("login options allow %v, want the key", opts.AllowCredentials)
	}

	a.BackupState = true // the passkey got synced meanwhile
	answer, err := a.Get(b.Options)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	use, err := f.svc.FinishLogin(u, b.State, answer)
	if err != nil {
		t.Fatalf("FinishLogin: %v", err)
	}
	if !bytes.Equal(use.ID, k.ID) || use.SignCount != 1 || !use.BackupState || !use.UserVerified {
		t.Fatalf("Use = %+v, want ID %x SignCount 1 BackupState UserVerified", use, k.ID)
	}
	now := f.clock.Now()
	if err := passkey.Record(&u, use, now); err != nil {
		t.Fatalf("Record: %v", err)
	}
	got := u.Passkeys[0]
	if got.SignCount != 1 || !got.BackupState || !got.LastUsedAt.Equal(now) || got.LastUsedAt.Location() != time.UTC {
		t.Errorf("after Record: SignCount %d, BackupState %v, LastUsedAt %v (want %v UTC)", got.SignCount, got.BackupState, got.LastUsedAt, now.UTC())
	}
	if !got.CreatedAt.Equal(k.CreatedAt) || got.Name != k.Name || !bytes.Equal(got.PublicKey, k.PublicKey) {
		t.Error("Record changed more than the use")
	}

	// A second use counts on, and the state can be used up to (not at)
	// its expiry.
	f.clock.Advance(time.Hour)
	b = f.beginLogin(u)
	answer = must(a.Get(b.Options))
	f.clock.Advance(timeout - time.Second)
	use, err = f.svc.FinishLogin(u, b.State, answer)
	if err != nil {
		t.Fatalf("second FinishLogin, a second before expiry: %v", err)
	}
	if use.SignCount != 2 {
		t.Errorf("second use SignCount %d", use.SignCount)
	}
	if err := passkey.Record(&u, use, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if u.Passkeys[0].SignCount != 2 || !u.Passkeys[0].LastUsedAt.Equal(f.clock.Now()) {
		t.Errorf("after the second Record: %+v", u.Passkeys[0])
	}
}

// The key chosen among several.
func TestSecondFactorWithSeveralKeys(t *testing.T) {
	f := newFixture(t)
	u := store.User{Name: "alice"}
	a1, a2 := passkeytest.New(origin), passkeytest.New(origin)
	k1 := f.register(&u, a1, "one")
	k2 := f.register(&u, a2, "two")
	opts := decodeJSON[requestJSON](t, f.beginLogin(u).Options).PublicKey
	if len(opts.AllowCredentials) != 2 {
		t.Fatalf("allow %d keys, want 2", len(opts.AllowCredentials))
	}
	use := f.loginRecord(&u, a2)
	if !bytes.Equal(use.ID, k2.ID) {
		t.Fatalf("Use.ID %x, want the second key", use.ID)
	}
	if u.Passkeys[0].SignCount != 0 || !u.Passkeys[0].LastUsedAt.IsZero() || u.Passkeys[1].SignCount != 1 {
		t.Errorf("Record touched the wrong key: %+v", u.Passkeys)
	}
	use = f.loginRecord(&u, a1)
	if !bytes.Equal(use.ID, k1.ID) || u.Passkeys[0].SignCount != 1 {
		t.Errorf("first key: use %+v, stored %+v", use, u.Passkeys[0])
	}
}

func TestBeginLoginWithoutKeys(t *testing.T) {
	f := newFixture(t)
	withKey := store.User{Name: "alice"}
	f.register(&withKey, passkeytest.New(origin), "k")
	noHandle := withKey.Clone()
	noHandle.PasskeyUserID = nil
	removed := withKey.Clone()
	removed.Passkeys = nil
	for name, u := range map[string]store.User{
		"new account":      {Name: "carol"},
		"all keys removed": removed,
		"no user handle":   noHandle,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := f.svc.BeginLogin(u)
			wantErr(t, err, passkey.ErrNoKeys)
			if b.State != nil || b.Options != nil {
				t.Errorf("BeginLogin returned %+v with its error", b)
			}
		})
	}
}

// flipSignature returns answer with a bit of the signature flipped.
func flipSignature(t *testing.T, answer []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(answer, &m); err != nil {
		t.Fatal(err)
	}
	resp := m["response"].(map[string]any)
	sig := b64(t, resp["signature"].(string))
	sig[len(sig)-1] ^= 0x01
	resp["signature"] = base64.RawURLEncoding.EncodeToString(sig)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSecondFactorRefusals(t *testing.T) {
	type attempt struct {
		user          store.User
		state, answer []byte
	}
	cases := []struct {
		name string
		edit func(*passkey.Options)
		make func(t *testing.T, w *world) attempt
		want error
	}{
		{
			name: "wrong origin",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				w.authA.Origin = "https://evil.example.net"
				return attempt{w.alice, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "origin on the RP ID's domain but not allowed",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				w.authA.Origin = "https://other.example.com"
				return attempt{w.alice, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "wrong RP ID",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				w.authA.RPIDOverride = "evil.example.net"
				return attempt{w.alice, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "expired",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				answer := must(w.authA.Get(b.Options))
				w.clock.Advance(timeout)
				return attempt{w.alice, b.State, answer}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "expired long ago",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				answer := must(w.authA.Get(b.Options))
				w.clock.Advance(48 * time.Hour)
				return attempt{w.alice, b.State, answer}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "state sealed for another user",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				return attempt{w.bob, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "state sealed for another user, answered by that user's key",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				return attempt{w.bob, b.State, must(w.authB.GetWith(b.Options, w.bob.Passkeys[0].ID))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "registration state",
			make: func(t *testing.T, w *world) attempt {
				b, err := w.svc.BeginRegistration(w.alice, "k")
				if err != nil {
					t.Fatal(err)
				}
				return attempt{w.alice, b.State, must(w.authA.Get(w.beginLogin(w.alice).Options))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "passwordless state",
			make: func(t *testing.T, w *world) attempt {
				b, err := w.svc.BeginPasswordless()
				if err != nil {
					t.Fatal(err)
				}
				return attempt{w.alice, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "nil state",
			make: func(t *testing.T, w *world) attempt {
				return attempt{w.alice, nil, must(w.authA.Get(w.beginLogin(w.alice).Options))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "garbage state",
			make: func(t *testing.T, w *world) attempt {
				return attempt{w.alice, []byte("garbage state, certainly long enough to be opened"), must(w.authA.Get(w.beginLogin(w.alice).Options))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "truncated state",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				return attempt{w.alice, b.State[:len(b.State)-1], must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "tampered state",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				b.State[len(b.State)/2] ^= 0x01
				return attempt{w.alice, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "state sealed with another key",
			make: func(t *testing.T, w *world) attempt {
				box, err := secretbox.New(secretbox.Key{0xee})
				if err != nil {
					t.Fatal(err)
				}
				other, err := passkey.New(w.opts, box, w.spent, w.clock.Now, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, err := other.BeginLogin(w.alice)
				if err != nil {
					t.Fatal(err)
				}
				return attempt{w.alice, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrChallenge,
		},
		{
			name: "garbage answer",
			make: func(t *testing.T, w *world) attempt {
				return attempt{w.alice, w.beginLogin(w.alice).State, []byte("garbage")}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "empty answer",
			make: func(t *testing.T, w *world) attempt {
				return attempt{w.alice, w.beginLogin(w.alice).State, nil}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "empty JSON answer",
			make: func(t *testing.T, w *world) attempt {
				return attempt{w.alice, w.beginLogin(w.alice).State, []byte("{}")}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "registration answer",
			make: func(t *testing.T, w *world) attempt {
				b, _ := w.svc.BeginRegistration(w.alice, "k")
				answer := must(passkeytest.New(origin).Create(b.Options))
				return attempt{w.alice, w.beginLogin(w.alice).State, answer}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "bad signature",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				return attempt{w.alice, b.State, flipSignature(t, must(w.authA.Get(b.Options)))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "answer for challenge A with state B",
			make: func(t *testing.T, w *world) attempt {
				first := w.beginLogin(w.alice)
				second := w.beginLogin(w.alice)
				return attempt{w.alice, second.State, must(w.authA.Get(first.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "key registered to another user",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				return attempt{w.alice, b.State, must(w.authB.GetWith(b.Options, w.bob.Passkeys[0].ID))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "unregistered authenticator",
			make: func(t *testing.T, w *world) attempt {
				// The stranger made a key for alice's account in a
				// registration that was never finished.
				rb, _ := w.svc.BeginRegistration(w.alice, "never finished")
				stranger := passkeytest.New(origin)
				must(stranger.Create(rb.Options))
				b := w.beginLogin(w.alice)
				return attempt{w.alice, b.State, must(stranger.GetWith(b.Options, stranger.Credentials()[0]))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "key removed since the ceremony began",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				u := w.alice.Clone()
				u.Passkeys = nil
				return attempt{u, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "account's user handle changed since the ceremony began",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				u := w.alice.Clone()
				u.PasskeyUserID = bytes.Repeat([]byte{9}, 32)
				return attempt{u, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "user not present",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				w.authA.UserPresent = false
				return attempt{w.alice, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "user verification required but missing",
			edit: func(o *passkey.Options) { o.UserVerification = "required" },
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				w.authA.UserVerified = false
				return attempt{w.alice, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrRefused,
		},
		{
			name: "backup eligibility changed",
			make: func(t *testing.T, w *world) attempt {
				b := w.beginLogin(w.alice)
				w.authA.BackupEligible = true
				return attempt{w.alice, b.State, must(w.authA.Get(b.Options))}
			},
			want: passkey.ErrRefused,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var edits []func(*passkey.Options)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			w := newWorld(t, edits...)
			at := tc.make(t, w)
			use, err := w.svc.FinishLogin(at.user, at.state, at.answer)
			t.Logf("error: %v", err)
			wantErr(t, err, tc.want)
			for _, e := range passkeyErrors {
				if e != tc.want && errors.Is(err, e) {
					t.Errorf("error %v is also %v", err, e)
				}
			}
			if use.ID != nil || use.SignCount != 0 {
				t.Errorf("a refused use returned %+v", use)
			}
		})
	}
}

// The expiry is the injected clock's, whatever the wall clock says, and
// holds for every ceremony.
func TestExpiry(t *testing.T) {
	type ceremony struct {
		name   string
		finish func(f *fixture) error
	}
	for _, after := range []struct {
		d    time.Duration
		want error
	}{
		{0, nil},
		{timeout - time.Nanosecond, nil},
		{timeout, passkey.ErrChallenge},
		{timeout + time.Second, passkey.ErrChallenge},
	} {
		for _, c := range []ceremony{
			{"registration", func(f *fixture) error {
				u := store.User{Name: "alice"}
				b, _ := f.svc.BeginRegistration(u, "k")
				answer := must(passkeytest.New(origin).Create(b.Options))
				f.clock.Advance(after.d)
				_, err := f.svc.FinishRegistration(u, b.State, answer)
				return err
			}},
			{"second factor", func(f *fixture) error {
				u := store.User{Name: "alice"}
				a := passkeytest.New(origin)
				f.register(&u, a, "k")
				b := f.beginLogin(u)
				answer := must(a.Get(b.Options))
				f.clock.Advance(after.d)
				_, err := f.svc.FinishLogin(u, b.State, answer)
				return err
			}},
			{"passwordless", func(f *fixture) error {
				u := store.User{Name: "alice"}
				a := passkeytest.New(origin)
				f.register(&u, a, "k")
				b, _ := f.svc.BeginPasswordless()
				answer := must(a.Get(b.Options))
				f.clock.Advance(after.d)
				_, _, err := f.svc.FinishPasswordless(context.Background(), b.State, answer, func(context.Context, []byte) (store.User, error) { return u, nil })
				return err
			}},
		} {
			t.Run(c.name+"/"+after.d.String(), func(t *testing.T) {
				err := c.finish(newFixture(t))
				if after.want == nil {
					if err != nil {
						t.Fatalf("finished %v after begin: %v", after.d, err)
					}
					return
				}
				wantErr(t, err, after.want)
			})
		}
	}
}

// Discoverable is what the browser's credProps says, and false when it
// says nothing.
func TestRegistrationDiscoverable(t *testing.T) {
	for _, tc := range []struct {
		name string
		ext  map[string]any
		want bool
	}{
		{"rk true", map[string]any{"credProps": map[string]any{"rk": true}}, true},
		{"rk false", map[string]any{"credProps": map[string]any{"rk": false}}, false},
		{"credProps without rk", map[string]any{"credProps": map[string]any{}}, false},
		{"no credProps", map[string]any{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			u := store.User{Name: "alice"}
			b, err := f.svc.BeginRegistration(u, "k")
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(must(passkeytest.New(origin).Create(b.Options)), &m); err != nil {
				t.Fatal(err)
			}
			// Client extension results are not signed: the browser
			// reports them as it likes.
			m["clientExtensionResults"] = tc.ext
			answer, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := f.svc.FinishRegistration(u, b.State, answer)
			if err != nil {
				t.Fatal(err)
			}
			if reg.Key.Discoverable != tc.want {
				t.Errorf("Discoverable = %v, want %v", reg.Key.Discoverable, tc.want)
			}
		})
	}
}

func TestCleanName(t *testing.T) {
	long := strings.Repeat("é", passkey.MaxNameLen/2) // MaxNameLen bytes
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"  YubiKey 5 ", "YubiKey 5", true},
		{"Laptop (Touch ID)", "Laptop (Touch ID)", true},
		{long, long, true},
		{long + "x", "", false},
		{"", "", false},
		{"   ", "", false},
		{"key\x00", "", false},
		{"two\nlines", "", false},
		{"bad \xff utf-8", "", false},
		{"Laptop \u202egnp.exe", "", false}, // right-to-left override
		{"\u2067Key\u2069", "", false},      // isolate
		{"Phone \U0001F4F1", "Phone \U0001F4F1", true},
	} {
		got, ok := passkey.CleanName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("CleanName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
