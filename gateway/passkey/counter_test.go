package passkey_test

import (
	"bytes"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/passkey"
	"github.com/authgate/authgate/gateway/passkey/passkeytest"
	"github.com/authgate/authgate/gateway/store"
)

func TestClonedAuthenticatorIsRefused(t *testing.T) {
	f := newFixture(t)
	u := store.User{Name: "alice"}
	a := passkeytest.New(origin)
	k := f.register(&u, a, "key")
	clone := a.Clone()

	f.loginRecord(&u, a) // counter 1
	f.loginRecord(&u, a) // counter 2
	if u.Passkeys[0].SignCount != 2 {
		t.Fatalf("stored counter %d, want 2", u.Passkeys[0].SignCount)
	}

	// The clone still counts from 0: its next answer signs 1.
	use, err := f.login(u, clone)
	wantErr(t, err, passkey.ErrCloned)
	if !bytes.Equal(use.ID, k.ID) {
		t.Errorf("ErrCloned names key %x, want %x", use.ID, k.ID)
	}
	// Then 2: equal to the stored counter, still refused.
	_, err = f.login(u, clone)
	wantErr(t, err, passkey.ErrCloned)
	if n, _ := clone.Counter(k.ID); n != 2 {
		t.Fatalf("clone counter %d", n)
	}
	if u.Passkeys[0].SignCount != 2 {
		t.Errorf("a refused use changed the stored counter to %d", u.Passkeys[0].SignCount)
	}
	// The original goes on.
	if use := f.loginRecord(&u, a); use.SignCount != 3 {
		t.Errorf("original's next use: %d", use.SignCount)
	}
}

func TestRecordCounter(t *testing.T) {
	id := []byte("credential")
	used := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		stored, used uint32
		want         error
	}{
		{stored: 5, used: 6},
		{stored: 5, used: 1 << 31},
		{stored: 0, used: 1},
		{stored: 0, used: 0}, // the key keeps no counter
		{stored: 5, used: 5, want: passkey.ErrCloned},
		{stored: 5, used: 4, want: passkey.ErrCloned},
		{stored: 5, used: 0, want: passkey.ErrCloned},
		{stored: 1<<32 - 1, used: 1<<32 - 1, want: passkey.ErrCloned},
	}
	for _, tc := range cases {
		u := store.User{
			Name:          "alice",
			PasskeyUserID: bytes.Repeat([]byte{1}, 32),
			Passkeys: []store.Passkey{
				{ID: []byte("other"), SignCount: 100},
				{ID: id, SignCount: tc.stored, BackupEligible: true, LastUsedAt: used},
			},
		}
		before := u.Clone()
		now := start.Add(time.Hour)
		err := passkey.Record(&u, passkey.Use{ID: id, SignCount: tc.used, BackupState: true}, now)
		if tc.want != nil {
			wantErr(t, err, tc.want)
			if !reflect.DeepEqual(u, before) {
				t.Errorf("stored %d, used %d: a refused Record changed the account: %+v", tc.stored, tc.used, u.Passkeys)
			}
			continue
		}
		if err != nil {
			t.Errorf("stored %d, used %d: %v", tc.stored, tc.used, err)
			continue
		}
		k := u.Passkeys[1]
		if k.SignCount != tc.used || !k.BackupState || !k.LastUsedAt.Equal(now) || k.LastUsedAt.Location() != time.UTC {
			t.Errorf("stored %d, used %d: recorded %+v", tc.stored, tc.used, k)
		}
		if !reflect.DeepEqual(u.Passkeys[0], before.Passkeys[0]) {
			t.Errorf("Record changed another key: %+v", u.Passkeys[0])
		}
	}
}

func TestRecordRemovedKey(t *testing.T) {
	f := newFixture(t)
	u := store.User{Name: "alice"}
	a := passkeytest.New(origin)
	f.register(&u, a, "key")
	use, err := f.login(u, a)
	if err != nil {
		t.Fatal(err)
	}
	// The key was removed while the answer was checked.
	removed := u.Clone()
	removed.Passkeys = nil
	wantErr(t, passkey.Record(&removed, use, f.clock.Now()), passkey.ErrRefused)
	if len(removed.Passkeys) != 0 {
		t.Error("Record of a removed key added it back")
	}
	// Replaced by another key meanwhile.
	replaced := u.Clone()
	replaced.Passkeys[0].ID = []byte("another key")
	before := replaced.Clone()
	err = passkey.Record(&replaced, use, f.clock.Now())
	wantErr(t, err, passkey.ErrRefused)
	if errors.Is(err, passkey.ErrCloned) || !reflect.DeepEqual(replaced, before) {
		t.Errorf("Record of a removed key: %v, account %+v", err, replaced.Passkeys)
	}
}

// Authenticators without a counter sign 0 every time: accepted
// repeatedly (the session's single use is the protection).
func TestZeroCountersAccepted(t *testing.T) {
	f := newFixture(t)
	u := store.User{Name: "alice"}
	a := passkeytest.New(origin)
	k := f.register(&u, a, "key")
	a.FixedCounter = true
	a.SetCounter(k.ID, 0)
	for i := range 3 {
		f.clock.Advance(time.Minute)
		use := f.loginRecord(&u, a)
		if use.SignCount != 0 || u.Passkeys[0].SignCount != 0 || !u.Passkeys[0].LastUsedAt.Equal(f.clock.Now()) {
			t.Fatalf("use %d: %+v, stored %+v", i, use, u.Passkeys[0])
		}
	}

	// A counter that does not move once it is not 0 is a clone's.
	a.SetCounter(k.ID, 7)
	f.loginRecord(&u, a)
	_, err := f.login(u, a)
	wantErr(t, err, passkey.ErrCloned)
	// And a counter going back to 0 too.
	a.SetCounter(k.ID, 0)
	_, err = f.login(u, a)
	wantErr(t, err, passkey.ErrCloned)
}

// Fifty requests carry the same answer to one ceremony (a replay race):
// each checks it against the account it read, then records it inside the
// store's atomic update. Exactly one is recorded.
func TestConcurrentUsesOfOneAnswer(t *testing.T) {
	f := newFixture(t)
	alice := store.User{Name: "alice"}
	a := passkeytest.New(origin)
	f.register(&alice, a, "key")
	b := f.beginLogin(alice)
	answer := must(a.Get(b.Options))

	var mu sync.Mutex
	shared := alice.Clone()
	get := func() store.User {
		mu.Lock()
		defer mu.Unlock()
		return shared.Clone()
	}
	// update is a store's UpdateUser: fn runs on a copy under the lock,
	// and the copy is kept only when fn succeeds.
	update := func(fn func(*store.User) error) error {
		mu.Lock()
		defer mu.Unlock()
		x := shared.Clone()
		if err := fn(&x); err != nil {
			return err
		}
		shared = x
		return nil
	}

	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-ready
			use, err := f.svc.FinishLogin(get(), b.State, answer)
			if err == nil {
				err = update(func(u *store.User) error { return passkey.Record(u, use, f.clock.Now()) })
			}
			errs[i] = err
		})
	}
	close(ready)
	wg.Wait()

	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, passkey.ErrCloned):
			t.Errorf("goroutine %d: %v, want ErrCloned", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d uses recorded, want exactly 1", ok)
	}
	if got := get().Passkeys[0].SignCount; got != 1 {
		t.Errorf("stored counter %d, want 1", got)
	}
}
