package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

func passkeyCases() []testCase {
	return []testCase{
		{"Passkeys/CreateThenGet", testPasskeysCreateGet},
		{"Passkeys/Update", testPasskeysUpdate},
		{"Passkeys/ValuesAreCopies", testPasskeyCopies},
		{"Passkeys/UpdateConcurrent", testPasskeysConcurrent},
		{"Passkeys/SessionChallenge", testPasskeyChallenge},
	}
}

// samplePasskey is a credential with every field set, distinct for each
// n. Its times are in a non-UTC zone with nanoseconds, like baseTime.
func samplePasskey(n int) store.Passkey {
	id := make([]byte, 48)
	for i := range id {
		id[i] = byte(n*31 + i*7) // includes 0x00 and bytes above 0x7f
	}
	return store.Passkey{
		ID:              id,
		Name:            fmt.Sprintf("Key %d «portable»", n),
		PublicKey:       append([]byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20}, bytes.Repeat([]byte{byte(n), 0xff, 0x00}, 22)...),
		AttestationType: "none",
		Transports:      []string{"internal", "hybrid"},
		AAGUID:          []byte{0xee, 0x88, 0x28, 0x79, 0x72, 0x1c, 0x49, 0x13, 0x97, 0x75, 0x3d, 0xfc, 0xce, 0x97, 0x07, byte(n)},
		SignCount:       uint32(n + 1),
		Discoverable:    true,
		BackupEligible:  true,
		BackupState:     n%2 == 0,
		CreatedAt:       baseTime.Add(time.Duration(n)*time.Minute + 123456789*time.Nanosecond),
		LastUsedAt:      baseTime.Add(time.Duration(n)*time.Hour + 987654321*time.Nanosecond),
	}
}

// samplePasskeys are the two keys of sampleUser: a security key with a
// counter near its end, and a synced passkey that never signed in (zero
// LastUsedAt, zero counter, all-zero AAGUID).
func samplePasskeys() []store.Passkey {
	key := samplePasskey(1)
	key.Name = "YubiKey 5 NFC"
	key.AttestationType = "basic"
	key.Transports = []string{"usb", "nfc"}
	key.SignCount = 4294967290
	key.Discoverable, key.BackupEligible, key.BackupState = false, false, false

	pk := samplePasskey(2)
	pk.Name = "Laptop ✓"
	pk.ID = pk.ID[:16]
	pk.AAGUID = make([]byte, 16)
	pk.SignCount = 0
	pk.LastUsedAt = time.Time{}
	pk.CreatedAt = baseTime.Add(4 * time.Hour).In(time.FixedZone("UTC-7", -7*60*60))
	return []store.Passkey{key, pk}
}

// testPasskeysCreateGet: a user's passkeys and passkey user handle read
// back as created (times in UTC, within 1ms), for a user with a TOTP
// secret too and for a key-only user.
func testPasskeysCreateGet(t *testing.T, h Harness) {
	ctx := t.Context()
	alice := sampleUser("alice")
	bob := minimalUser("bob")
	bob.PasskeyUserID = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	bob.Passkeys = []store.Passkey{samplePasskey(7)}
	carol := minimalUser("carol")
	for _, want := range []store.User{alice, bob, carol} {
		if err := h.Store.CreateUser(ctx, want); err != nil {
			t.Fatalf("CreateUser(%q): %v", want.Name, err)
		}
		got, err := h.Store.GetUser(ctx, want.Name)
		if err != nil {
			t.Fatalf("GetUser(%q): %v", want.Name, err)
		}
		checkUser(t, got, want)
		if got.HasSecondFactor() != want.HasSecondFactor() {
			t.Errorf("%s: HasSecondFactor = %v, want %v", want.Name, got.HasSecondFactor(), want.HasSecondFactor())
		}
		for i, p := range want.Passkeys {
			if j := got.PasskeyIndex(p.ID); j != i {
				t.Errorf("%s: PasskeyIndex(key %d) = %d", want.Name, i, j)
			}
		}
	}
	got, err := h.Store.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if got.HasTOTP() || !got.HasSecondFactor() {
		t.Errorf("key-only user: HasTOTP = %v, HasSecondFactor = %v; want false, true", got.HasTOTP(), got.HasSecondFactor())
	}
	if j := got.PasskeyIndex(samplePasskey(8).ID); j != -1 {
		t.Errorf("PasskeyIndex(unknown key) = %d, want -1", j)
	}
	if got, err := h.Store.GetUser(ctx, "carol"); err != nil || len(got.Passkeys) != 0 || len(got.PasskeyUserID) != 0 || got.HasSecondFactor() {
		t.Errorf("user without keys read back with %d keys, handle %x, HasSecondFactor %v (err %v)", len(got.Passkeys), got.PasskeyUserID, got.HasSecondFactor(), err)
	}
}

// testPasskeysUpdate: registering, using, renaming and removing keys
// through UpdateUser reads back exactly, step by step.
func testPasskeysUpdate(t *testing.T, h Harness) {
	ctx := t.Context()
	if err := h.Store.CreateUser(ctx, minimalUser("alice")); err != nil {
		t.Fatal(err)
	}
	handle := []byte{0xde, 0xad, 0x00, 0xbe, 0xef, 0x00, 0x01, 0x02}
	steps := []struct {
		name  string
		apply func(u *store.User)
	}{
		{"register first key", func(u *store.User) {
			u.PasskeyUserID = slices.Clone(handle)
			u.Passkeys = append(u.Passkeys, samplePasskey(1))
			u.AuthEpoch++
		}},
		{"register second key", func(u *store.User) {
			u.Passkeys = append(u.Passkeys, samplePasskey(2))
			u.AuthEpoch++
		}},
		{"register third key", func(u *store.User) {
			k := samplePasskey(3)
			k.Transports = nil
			k.AAGUID = nil
			k.AttestationType = ""
			k.LastUsedAt = time.Time{}
			k.SignCount = 0
			u.Passkeys = append(u.Passkeys, k)
		}},
		{"sign in with the first key", func(u *store.User) {
			i := u.PasskeyIndex(samplePasskey(1).ID)
			u.Passkeys[i].SignCount = 1000
			u.Passkeys[i].BackupState = true
			u.Passkeys[i].LastUsedAt = baseTime.Add(48*time.Hour + 42*time.Millisecond)
		}},
		{"rename the second key", func(u *store.User) {
			u.Passkeys[u.PasskeyIndex(samplePasskey(2).ID)].Name = "Phone"
		}},
		{"remove the first key", func(u *store.User) {
			i := u.PasskeyIndex(samplePasskey(1).ID)
			u.Passkeys = slices.Delete(u.Passkeys, i, i+1)
			u.AuthEpoch++
		}},
		{"remove the third key", func(u *store.User) {
			i := u.PasskeyIndex(samplePasskey(3).ID)
			u.Passkeys = slices.Delete(u.Passkeys, i, i+1)
		}},
		{"remove the last key", func(u *store.User) {
			u.Passkeys = u.Passkeys[:0]
			u.AuthEpoch++
		}},
	}
	want := minimalUser("alice")
	for _, step := range steps {
		before := want.Clone()
		want = want.Clone()
		step.apply(&want)
		got, err := h.Store.UpdateUser(ctx, "alice", func(u *store.User) error {
			checkUser(t, *u, before) // fn sees the stored user
			step.apply(u)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: UpdateUser: %v", step.name, err)
		}
		checkUser(t, got, want)
		stored, err := h.Store.GetUser(ctx, "alice")
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		checkUser(t, stored, want)
		if t.Failed() {
			t.Fatalf("after step %q", step.name)
		}
	}
	stored, err := h.Store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Passkeys) != 0 || stored.HasSecondFactor() {
		t.Errorf("after removing every key: %d keys, HasSecondFactor %v", len(stored.Passkeys), stored.HasSecondFactor())
	}
	if !bytes.Equal(stored.PasskeyUserID, handle) {
		t.Errorf("PasskeyUserID = %x after removing every key, want %x kept", stored.PasskeyUserID, handle)
	}
}

// mutatePasskeys changes every shared part of u's passkey data in place.
func mutatePasskeys(u *store.User) {
	if len(u.PasskeyUserID) > 0 {
		u.PasskeyUserID[0] ^= 0xff
	}
	for i := range u.Passkeys {
		p := &u.Passkeys[i]
		p.ID[0] ^= 0xff
		p.PublicKey[0] ^= 0xff
		if len(p.Transports) > 0 {
			p.Transports[0] = "hacked"
		}
		if len(p.AAGUID) > 0 {
			p.AAGUID[0] ^= 0xff
		}
		p.SignCount = 7
		p.Name = "hacked"
	}
}

// testPasskeyCopies: passkeys are values: mutating a user given to or
// returned by the store (its Passkeys' ID, PublicKey, Transports, AAGUID,
// its PasskeyUserID) never changes what the store holds.
func testPasskeyCopies(t *testing.T, h Harness) {
	ctx := t.Context()
	in := sampleUser("alice")
	want := in.Clone()
	if err := h.Store.CreateUser(ctx, in); err != nil {
		t.Fatal(err)
	}
	// The caller's value after Create.
	mutatePasskeys(&in)
	got, err := h.Store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, got, want)
	// Values returned by Get, read repeatedly (a cache answers the later
	// reads from memory).
	for i := range 3 {
		got, err := h.Store.GetUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		checkUser(t, got, want)
		if t.Failed() {
			t.Fatalf("read %d after mutating an earlier read", i)
		}
		mutatePasskeys(&got)
		got.Passkeys = append(got.Passkeys[:1], samplePasskey(9))
	}
	// A failing fn that mutated the user in place writes nothing.
	errBoom := errors.New("boom")
	if _, err := h.Store.UpdateUser(ctx, "alice", func(u *store.User) error {
		mutatePasskeys(u)
		return errBoom
	}); !errors.Is(err, errBoom) {
		t.Fatalf("UpdateUser err = %v, want fn's error", err)
	}
	again, _ := h.Store.GetUser(ctx, "alice")
	checkUser(t, again, want)
	// The user fn was handed, kept past its return, and the value
	// UpdateUser returned.
	var seen *store.User
	updated, err := h.Store.UpdateUser(ctx, "alice", func(u *store.User) error {
		u.Passkeys[1].SignCount = 5
		seen = u
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want.Passkeys[1].SignCount = 5
	checkUser(t, updated, want)
	mutatePasskeys(seen)
	mutatePasskeys(&updated)
	again, _ = h.Store.GetUser(ctx, "alice")
	checkUser(t, again, want)
	// Values returned by ListUsers.
	list, err := h.Store.ListUsers(ctx, store.ListOptions{})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListUsers = %v, %v; want one user", list, err)
	}
	checkUser(t, list[0], want)
	mutatePasskeys(&list[0])
	again, _ = h.Store.GetUser(ctx, "alice")
	checkUser(t, again, want)
}

// testPasskeysConcurrent: keys registered at the same moment (one
// UpdateUser each) are all kept: none is lost to another's write.
func testPasskeysConcurrent(t *testing.T, h Harness) {
	ctx := t.Context()
	if err := h.Store.CreateUser(ctx, minimalUser("alice")); err != nil {
		t.Fatal(err)
	}
	handle := []byte("alice's passkey handle")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			key := samplePasskey(100 + i)
			_, err := h.Store.UpdateUser(ctx, "alice", func(u *store.User) error {
				if u.PasskeyIndex(key.ID) >= 0 {
					return fmt.Errorf("key %d already registered", i)
				}
				if len(u.PasskeyUserID) == 0 {
					u.PasskeyUserID = slices.Clone(handle)
				}
				u.Passkeys = append(u.Passkeys, key.Clone())
				return nil
			})
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent UpdateUser: %v", err)
		}
	}
	got, err := h.Store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Passkeys) != n {
		t.Fatalf("got %d keys, want %d: a registration was lost", len(got.Passkeys), n)
	}
	slices.SortFunc(got.Passkeys, func(a, b store.Passkey) int { return int(a.SignCount) - int(b.SignCount) })
	want := minimalUser("alice")
	want.PasskeyUserID = handle
	for i := range n {
		want.Passkeys = append(want.Passkeys, samplePasskey(100+i))
	}
	checkUser(t, got, want)
}

// testPasskeyChallenge: a session's PasskeyChallenge (the sealed state of
// a ceremony) survives Put, Get, List, Replace and Take byte for byte, is
// cleared by a Replace without it, and is a copy.
func testPasskeyChallenge(t *testing.T, h Harness) {
	ctx := t.Context()
	sealed := make([]byte, 300)
	for i := range sealed {
		sealed[i] = byte(255 - i) // every byte value, 0x00 included
	}
	// A pending session (password accepted, key owed) holding a ceremony.
	s := store.Session{
		IDHash:           hashID(1),
		User:             "alice",
		Stage:            store.StagePending,
		CreatedAt:        baseTime,
		LastSeenAt:       baseTime,
		ExpiresAt:        baseTime.Add(time.Hour),
		PasskeyChallenge: slices.Clone(sealed),
		Redirect:         "/app/",
	}
	want := s
	want.PasskeyChallenge = slices.Clone(sealed)
	if err := h.Store.PutSession(ctx, s, longTTL); err != nil {
		t.Fatal(err)
	}
	s.PasskeyChallenge[0] ^= 0xff // the caller's value after Put
	for i := range 3 {
		got, err := h.Store.GetSession(ctx, s.IDHash)
		if err != nil {
			t.Fatal(err)
		}
		checkSession(t, got, want)
		if t.Failed() {
			t.Fatalf("read %d after mutating an earlier read", i)
		}
		got.PasskeyChallenge[0] ^= 0xff
		got.PasskeyChallenge[len(got.PasskeyChallenge)-1] ^= 0xff
	}
	list, err := h.Store.ListUserSessions(ctx, "alice")
	if err != nil || len(list) != 1 {
		t.Fatalf("ListUserSessions = %v, %v; want one session", list, err)
	}
	checkSession(t, list[0], want)
	list[0].PasskeyChallenge[0] ^= 0xff
	again, _ := h.Store.GetSession(ctx, s.IDHash)
	checkSession(t, again, want)

	// A new ceremony replaces the challenge.
	next := want
	next.PasskeyChallenge = []byte("sealed:second ceremony\x00\xff")
	next.LastSeenAt = baseTime.Add(time.Minute)
	if err := h.Store.ReplaceSession(ctx, next, longTTL); err != nil {
		t.Fatal(err)
	}
	got, err := h.Store.GetSession(ctx, s.IDHash)
	if err != nil {
		t.Fatal(err)
	}
	checkSession(t, got, next)

	// Finishing the ceremony (the session moved on) clears it.
	done := next
	done.PasskeyChallenge = nil
	done.Stage = store.StageFull
	done.TwoFactor = true
	done.TwoFactorAt = baseTime.Add(2 * time.Minute)
	if err := h.Store.ReplaceSession(ctx, done, longTTL); err != nil {
		t.Fatal(err)
	}
	got, err = h.Store.GetSession(ctx, s.IDHash)
	if err != nil {
		t.Fatal(err)
	}
	checkSession(t, got, done)
	if len(got.PasskeyChallenge) != 0 {
		t.Errorf("PasskeyChallenge = %x after a replacement without one, want none", got.PasskeyChallenge)
	}

	// A step-up ceremony on the full session, then the session is taken
	// (rotated): Take returns the challenge.
	step := done
	step.PasskeyChallenge = slices.Clone(sealed[:64])
	if err := h.Store.ReplaceSession(ctx, step, longTTL); err != nil {
		t.Fatal(err)
	}
	taken, err := h.Store.TakeSession(ctx, s.IDHash)
	if err != nil {
		t.Fatalf("TakeSession: %v", err)
	}
	checkSession(t, taken, step)
	if _, err := h.Store.GetSession(ctx, s.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession after TakeSession err = %v, want ErrNotFound", err)
	}
}
