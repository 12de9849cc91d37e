package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/authgate/authgate/gateway/store"
)

// Harness is one fresh, empty store under test.
type Harness struct {
	Store store.Store
	// Advance moves the store's notion of time forward by d: a fake clock
	// for backends that take one, a real sleep for those that expire items
	// on their own (Redis).
	Advance func(d time.Duration)
}

// Expiry timings used by the suite. They stay small because a Redis
// harness sleeps for real; the gaps leave room for a slow, -race machine.
const (
	shortTTL  = 600 * time.Millisecond
	beforeTTL = 250 * time.Millisecond // well inside shortTTL
	pastTTL   = 450 * time.Millisecond // beforeTTL+pastTTL > shortTTL
	longTTL   = time.Hour
)

type testCase struct {
	name string
	fn   func(t *testing.T, h Harness)
}

// Run runs the conformance suite. newHarness is called once per subtest,
// possibly concurrently, and must return an isolated, empty store; it
// should register its own cleanup (closing the store) with t.Cleanup.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	var cases []testCase
	cases = append(cases, userCases()...)
	cases = append(cases, passkeyCases()...)
	cases = append(cases, sessionCases()...)
	cases = append(cases, stepCases()...)
	cases = append(cases, counterCases()...)
	cases = append(cases, settingCases()...)
	cases = append(cases, auditCases()...)
	cases = append(cases, banCases()...)
	cases = append(cases, lifecycleCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if h.Store == nil || h.Advance == nil {
				t.Fatal("storetest: harness needs both Store and Advance")
			}
			tc.fn(t, h)
		})
	}
}

// baseTime has nanoseconds and a non-UTC zone on purpose: the contract
// says times come back in UTC with at least millisecond precision.
var baseTime = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*60*60))

// checkTime reports whether got is want stored by the contract's rules.
func checkTime(t *testing.T, field string, got, want time.Time) {
	t.Helper()
	if want.IsZero() {
		if !got.IsZero() {
			t.Errorf("%s = %v, want the zero time", field, got)
		}
		return
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", field, got.Location())
	}
	if d := got.Sub(want); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("%s = %v, want %v (within 1ms)", field, got, want)
	}
}

func checkUser(t *testing.T, got, want store.User) {
	t.Helper()
	checkTime(t, "TOTPEnrolledAt", got.TOTPEnrolledAt, want.TOTPEnrolledAt)
	checkTime(t, "TOTPLastUsedAt", got.TOTPLastUsedAt, want.TOTPLastUsedAt)
	checkTime(t, "RecoveryCodesAt", got.RecoveryCodesAt, want.RecoveryCodesAt)
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	if len(got.DriftSeen) != len(want.DriftSeen) {
		t.Errorf("DriftSeen has %d observations, want %d", len(got.DriftSeen), len(want.DriftSeen))
	} else {
		for i := range want.DriftSeen {
			checkTime(t, fmt.Sprintf("DriftSeen[%d].At", i), got.DriftSeen[i].At, want.DriftSeen[i].At)
		}
	}
	if len(got.Passkeys) != len(want.Passkeys) {
		t.Errorf("Passkeys has %d keys, want %d", len(got.Passkeys), len(want.Passkeys))
	} else {
		for i := range want.Passkeys {
			checkTime(t, fmt.Sprintf("Passkeys[%d].CreatedAt", i), got.Passkeys[i].CreatedAt, want.Passkeys[i].CreatedAt)
			checkTime(t, fmt.Sprintf("Passkeys[%d].LastUsedAt", i), got.Passkeys[i].LastUsedAt, want.Passkeys[i].LastUsedAt)
		}
	}
	g, w := got.Clone(), want.Clone()
	for i := range g.Passkeys {
		g.Passkeys[i].CreatedAt, g.Passkeys[i].LastUsedAt = time.Time{}, time.Time{}
	}
	for i := range w.Passkeys {
		w.Passkeys[i].CreatedAt, w.Passkeys[i].LastUsedAt = time.Time{}, time.Time{}
	}
	for i := range g.DriftSeen {
		g.DriftSeen[i].At = time.Time{}
	}
	for i := range w.DriftSeen {
		w.DriftSeen[i].At = time.Time{}
	}
	g.TOTPEnrolledAt, g.TOTPLastUsedAt, g.RecoveryCodesAt, g.CreatedAt, g.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	w.TOTPEnrolledAt, w.TOTPLastUsedAt, w.RecoveryCodesAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("user mismatch:\n got  %+v\n want %+v", g, w)
	}
}

func checkSession(t *testing.T, got, want store.Session) {
	t.Helper()
	checkTime(t, "TwoFactorAt", got.TwoFactorAt, want.TwoFactorAt)
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "LastSeenAt", got.LastSeenAt, want.LastSeenAt)
	checkTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	g, w := got, want
	g.TwoFactorAt, g.CreatedAt, g.LastSeenAt, g.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	w.TwoFactorAt, w.CreatedAt, w.LastSeenAt, w.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !bytes.Equal(g.PendingTOTPSecret, w.PendingTOTPSecret) {
		t.Errorf("PendingTOTPSecret = %x, want %x", g.PendingTOTPSecret, w.PendingTOTPSecret)
	}
	g.PendingTOTPSecret, w.PendingTOTPSecret = nil, nil
	if !bytes.Equal(g.PasskeyChallenge, w.PasskeyChallenge) {
		t.Errorf("PasskeyChallenge = %x, want %x", g.PasskeyChallenge, w.PasskeyChallenge)
	}
	g.PasskeyChallenge, w.PasskeyChallenge = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("session mismatch:\n got  %+v\n want %+v", g, w)
	}
}

// sampleUser is a user with every field set.
func sampleUser(name string) store.User {
	return store.User{
		Name:               name,
		PasswordHash:       "$argon2id$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		Role:               store.RoleAdmin,
		Groups:             []string{"ops", "dev"},
		TOTPSecret:         []byte{0x01, 0x02, 0x03, 0xfe, 0xff},
		TOTPEnrolledAt:     baseTime.Add(time.Hour),
		TOTPLastUsedAt:     baseTime.Add(2 * time.Hour),
		RecoveryCodes:      []string{"9f86d081884c7d65", "60303ae22b998861"},
		RecoveryCodesAt:    baseTime.Add(90 * time.Minute),
		MustChangePassword: true,
		TOTPDriftSteps:     -3,
		DriftSeen: []store.DriftObservation{
			{At: baseTime.Add(100 * time.Minute), Steps: 10},
			{At: baseTime.Add(110 * time.Minute), Steps: -4},
		},
		PasskeyUserID: []byte{0x00, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x30, 0x40},
		Passkeys:      samplePasskeys(),
		CreatedAt:     baseTime,
		UpdatedAt:     baseTime.Add(3 * time.Hour),
	}
}

// minimalUser is a user with only the required fields.
func minimalUser(name string) store.User {
	return store.User{
		Name:         name,
		PasswordHash: "$2y$10$abcdefghijklmnopqrstuu5Xy0W9zZ8j7zC9d5F5j5l5n5p5r5t5",
		Role:         store.RoleUser,
		CreatedAt:    baseTime,
		UpdatedAt:    baseTime,
	}
}

// sampleSession is a session with every field set, created at offset.
func sampleSession(idHash, user string, offset time.Duration) store.Session {
	created := baseTime.Add(offset)
	return store.Session{
		IDHash:            idHash,
		User:              user,
		Stage:             store.StageFull,
		TwoFactor:         true,
		TwoFactorAt:       created.Add(time.Second),
		CreatedAt:         created,
		LastSeenAt:        created.Add(time.Minute),
		ExpiresAt:         created.Add(12 * time.Hour),
		IP:                "203.0.113.7",
		UserAgent:         "Mozilla/5.0 (X11; Linux x86_64)",
		PendingTOTPSecret: []byte{0xaa, 0xbb},
		PasskeyChallenge:  []byte{0x00, 0xee, 0xff, 0x01},
		AdminResultSealed: []byte{0xcc, 0xdd},
		Redirect:          "/admin/?tab=users",
		UserEpoch:         3,
		Mode:              "on",
	}
}

// hashID makes a lowercase-hex, SHA-256-sized id hash from n.
func hashID(n int) string {
	return fmt.Sprintf("%064x", n)
}
