package passkey

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/authgate/authgate/gateway/store"
)

// Errors of the finish steps. Callers show one public message for all of
// them; the distinction is for the log and the audit trail.
var (
	// ErrChallenge: the ceremony state is missing, damaged, of another
	// kind or user, expired, or already spent.
	ErrChallenge = errors.New("passkey: no valid challenge for this answer")
	// ErrRefused: the browser's answer does not prove the key (bad
	// signature, another origin or RP ID, a key the user does not have,
	// user verification missing where required, unparsable).
	ErrRefused = errors.New("passkey: the key's answer was refused")
	// ErrCloned: the key's signature counter did not go up: two copies
	// of the key may exist. The use is refused and should be audited.
	ErrCloned = errors.New("passkey: the key's signature counter went backwards (possibly a cloned key)")
	// ErrExists: the key is already registered to this account.
	ErrExists = errors.New("passkey: this key is already registered")
	// ErrNoKeys: the user has no passkey to sign in with.
	ErrNoKeys = errors.New("passkey: the user has no passkeys")
)

// Ceremony kinds: a state sealed for one kind never opens as another.
const (
	kindRegister     = "register"
	kindLogin        = "login"
	kindPasswordless = "passwordless"
)

// userIDLen is the size of a new user handle (WebAuthn allows 64 bytes).
const userIDLen = 32

// MaxNameLen bounds a passkey's name, in bytes.
const MaxNameLen = 64

// MaxAnswerLen bounds a browser's answer (the JSON of its
// PublicKeyCredential) that is looked at; a longer one counts as none.
const MaxAnswerLen = 16 << 10

// Answer returns the answer a form carried in its field, or nil when it
// is longer than MaxAnswerLen.
func Answer(field string) []byte {
	if len(field) > MaxAnswerLen {
		return nil
	}
	return []byte(field)
}

// CleanName checks a name a user gives a key: trimmed, 1..MaxNameLen
// bytes of UTF-8, no control characters and no bidirectional controls
// (which would make the name read otherwise than it is stored where
// admins see it: `authgate 2fa status`, the audit trail).
func CleanName(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > MaxNameLen || !utf8.ValidString(s) || strings.IndexFunc(s, unprintable) >= 0 {
		return "", false
	}
	return s, true
}

func unprintable(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }

// Options are the relying party's settings (config's webauthn section,
// resolved: config.PasskeySettings).
type Options struct {
	RPID    string
	RPName  string
	Origins []string
	// UserVerification: "preferred", "required" or "discouraged" for
	// registration and second-factor use. A passwordless sign-in always
	// requires it.
	UserVerification string
	// Attestation: "none", "indirect" or "direct".
	Attestation string
	// Passwordless allows signing in with a passkey alone.
	Passwordless bool
	// Timeout is how long the browser is given, and how long a challenge
	// is accepted.
	Timeout time.Duration
}

// Box seals ceremony state (a *secretbox.Box).
type Box interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Spender records a challenge as answered, once (store.Counters): the
// passwordless sign-in has no session to move on, so its challenge is
// spent in the store.
type Spender interface {
	Incr(ctx context.Context, key string, delta int64, window time.Duration) (int64, error)
}

// Service runs the ceremonies.
type Service struct {
	wa    *webauthn.WebAuthn
	o     Options
	box   Box
	spend Spender
	now   func() time.Time
	rand  io.Reader
}

// New returns a Service. now and rnd may be nil (real clock,
// crypto/rand).
func New(o Options, box Box, spend Spender, now func() time.Time, rnd io.Reader) (*Service, error) {
	if now == nil {
		now = time.Now
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	if o.RPID == "" || len(o.Origins) == 0 {
		return nil, errors.New("passkey: an RP ID and at least one origin are required")
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.UserVerification == "" {
		o.UserVerification = string(protocol.VerificationPreferred)
	}
	if o.Attestation == "" {
		o.Attestation = string(protocol.PreferNoAttestation)
	}
	name := o.RPName
	if name == "" {
		name = o.RPID
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  o.RPID,
		RPDisplayName:         name,
		RPOrigins:             o.Origins,
		AttestationPreference: protocol.ConveyancePreference(o.Attestation),
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: o.Timeout, TimeoutUVD: o.Timeout},
			Registration: webauthn.TimeoutConfig{Timeout: o.Timeout, TimeoutUVD: o.Timeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: relying party %q: %w", o.RPID, err)
	}
	return &Service{wa: wa, o: o, box: box, spend: spend, now: now, rand: rnd}, nil
}

// Passwordless reports whether a passkey alone may sign in.
func (s *Service) Passwordless() bool { return s.o.Passwordless }

// state is a ceremony's sealed state.
type state struct {
	Kind    string               `json:"kind"`
	User    string               `json:"user,omitempty"`
	Name    string               `json:"name,omitempty"`
	Expires time.Time            `json:"expires"`
	Data    webauthn.SessionData `json:"data"`
}

// aad binds sealed state to its kind and user.
func aad(kind, user string) []byte { return []byte("authgate passkey\x00" + kind + "\x00" + user) }

func (s *Service) seal(st state) ([]byte, error) {
	st.Expires = s.now().Add(s.o.Timeout).UTC()
	// The library's own expiry uses the wall clock; ours (injected) is
	// the one checked.
	st.Data.Expires = time.Time{}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("passkey: encode state: %w", err)
	}
	return s.box.Seal(b, aad(st.Kind, st.User))
}

// open returns the state sealed for kind and user, if it has not
// expired.
func (s *Service) open(sealed []byte, kind, user string) (state, error) {
	if len(sealed) == 0 {
		return state{}, fmt.Errorf("%w: none", ErrChallenge)
	}
	b, err := s.box.Open(sealed, aad(kind, user))
	if err != nil {
		return state{}, fmt.Errorf("%w: %v", ErrChallenge, err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return state{}, fmt.Errorf("%w: %v", ErrChallenge, err)
	}
	if st.Kind != kind || st.User != user || !s.now().Before(st.Expires) {
		return state{}, fmt.Errorf("%w: expired or not this ceremony's", ErrChallenge)
	}
	return st, nil
}

// Begin is what a begin step produces.
type Begin struct {
	// Options is the JSON for the browser ({"publicKey": {...}}).
	Options []byte
	// State is the sealed ceremony state for the caller to keep.
	State []byte
}

// BeginRegistration starts registering a new key named name for u. The
// options exclude the keys u already has and ask for a passkey
// (discoverable) where the authenticator can make one.
func (s *Service) BeginRegistration(u store.User, name string) (Begin, error) {
	if len(u.PasskeyUserID) == 0 {
		id := make([]byte, userIDLen)
		if _, err := io.ReadFull(s.rand, id); err != nil {
			return Begin{}, fmt.Errorf("passkey: random user handle: %w", err)
		}
		u.PasskeyUserID = id
	}
	wu := user{u}
	creation, data, err := s.wa.BeginRegistration(wu,
		webauthn.WithExclusions(webauthn.Credentials(wu.WebAuthnCredentials()).CredentialDescriptors()),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.UserVerificationRequirement(s.o.UserVerification),
		}),
		webauthn.WithConveyancePreference(protocol.ConveyancePreference(s.o.Attestation)),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()),
	)
	if err != nil {
		return Begin{}, fmt.Errorf("passkey: begin registration: %w", err)
	}
	return s.begin(creation, state{Kind: kindRegister, User: u.Name, Name: name, Data: *data})
}

func (s *Service) begin(options any, st state) (Begin, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return Begin{}, fmt.Errorf("passkey: encode options: %w", err)
	}
	sealed, err := s.seal(st)
	if err != nil {
		return Begin{}, err
	}
	return Begin{Options: opts, State: sealed}, nil
}

// Registered is a key a registration produced.
type Registered struct {
	Key store.Passkey
	// UserID is the user handle the key was made for: store it as
	// User.PasskeyUserID when the account has none yet, and refuse the
	// key when the account has another (Add does both).
	UserID []byte
}

// FinishRegistration checks the browser's answer (the JSON of the
// PublicKeyCredential) to the registration sealed in state for u.
func (s *Service) FinishRegistration(u store.User, sealed, answer []byte) (Registered, error) {
	st, err := s.open(sealed, kindRegister, u.Name)
	if err != nil {
		return Registered{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return Registered{}, fmt.Errorf("%w: %v", ErrRefused, describe(err))
	}
	u.PasskeyUserID = st.Data.UserID
	cred, err := s.wa.CreateCredential(user{u}, st.Data, parsed)
	if err != nil {
		return Registered{}, fmt.Errorf("%w: %v", ErrRefused, describe(err))
	}
	if u.PasskeyIndex(cred.ID) >= 0 {
		return Registered{}, ErrExists
	}
	k := store.Passkey{
		ID:              cred.ID,
		Name:            st.Name,
		PublicKey:       cred.PublicKey,
		AttestationType: cred.AttestationType,
		AAGUID:          cred.Authenticator.AAGUID,
		SignCount:       cred.Authenticator.SignCount,
		Discoverable:    cred.Extensions.RK != nil && *cred.Extensions.RK,
		BackupEligible:  cred.Flags.BackupEligible,
		BackupState:     cred.Flags.BackupState,
		CreatedAt:       s.now().UTC(),
	}
	for _, t := range cred.Transport {
		k.Transports = append(k.Transports, string(t))
	}
	return Registered{Key: k, UserID: st.Data.UserID}, nil
}

// Add stores a registered key in u (inside the store's atomic update):
// ErrExists when u has it already, ErrChallenge when the account's user
// handle changed since the registration began.
func Add(u *store.User, r Registered) error {
	switch {
	case len(u.PasskeyUserID) == 0:
		u.PasskeyUserID = bytes.Clone(r.UserID)
	case !bytes.Equal(u.PasskeyUserID, r.UserID):
		return fmt.Errorf("%w: the account's user handle changed", ErrChallenge)
	}
	if u.PasskeyIndex(r.Key.ID) >= 0 {
		return ErrExists
	}
	u.Passkeys = append(u.Passkeys, r.Key.Clone())
	return nil
}

// BeginLogin starts a second-factor use of one of u's keys.
func (s *Service) BeginLogin(u store.User) (Begin, error) {
	if len(u.Passkeys) == 0 || len(u.PasskeyUserID) == 0 {
		return Begin{}, ErrNoKeys
	}
	assertion, data, err := s.wa.BeginLogin(user{u},
		webauthn.WithUserVerification(protocol.UserVerificationRequirement(s.o.UserVerification)))
	if err != nil {
		return Begin{}, fmt.Errorf("passkey: begin login: %w", err)
	}
	return s.begin(assertion, state{Kind: kindLogin, User: u.Name, Data: *data})
}

// Use is an accepted use of a key.
type Use struct {
	ID           []byte
	SignCount    uint32
	BackupState  bool
	UserVerified bool
}

// FinishLogin checks the browser's answer to the second-factor
// ceremony sealed in state for u.
func (s *Service) FinishLogin(u store.User, sealed, answer []byte) (Use, error) {
	st, err := s.open(sealed, kindLogin, u.Name)
	if err != nil {
		return Use{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return Use{}, fmt.Errorf("%w: %v", ErrRefused, describe(err))
	}
	cred, err := s.wa.ValidateLogin(user{u}, st.Data, parsed)
	if err != nil {
		return Use{}, fmt.Errorf("%w: %v", ErrRefused, describe(err))
	}
	return use(cred, parsed)
}

func use(cred *webauthn.Credential, parsed *protocol.ParsedCredentialAssertionData) (Use, error) {
	if cred.Authenticator.CloneWarning {
		return Use{ID: cred.ID}, ErrCloned
	}
	return Use{
		ID:           cred.ID,
		SignCount:    cred.Authenticator.SignCount,
		BackupState:  parsed.Response.AuthenticatorData.Flags.HasBackupState(),
		UserVerified: parsed.Response.AuthenticatorData.Flags.HasUserVerified(),
	}, nil
}

// Record stores a use in u (inside the store's atomic update): the new
// signature counter and the time. It checks the counter again against
// the record as it is now, so of two uses answering with one counter
// value only the first is recorded: ErrCloned for the other.
// ErrRefused when the key was removed meanwhile.
func Record(u *store.User, use Use, now time.Time) error {
	i := u.PasskeyIndex(use.ID)
	if i < 0 {
		return fmt.Errorf("%w: the key was removed", ErrRefused)
	}
	k := &u.Passkeys[i]
	if (use.SignCount != 0 || k.SignCount != 0) && use.SignCount <= k.SignCount {
		return ErrCloned
	}
	k.SignCount = use.SignCount
	k.BackupState = use.BackupState
	k.LastUsedAt = now.UTC()
	return nil
}

// BeginPasswordless starts a sign-in with a passkey alone (a
// discoverable credential; user verification required).
func (s *Service) BeginPasswordless() (Begin, error) {
	if !s.o.Passwordless {
		return Begin{}, errors.New("passkey: passwordless sign-in is off")
	}
	assertion, data, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return Begin{}, fmt.Errorf("passkey: begin passwordless: %w", err)
	}
	return s.begin(assertion, state{Kind: kindPasswordless, Data: *data})
}

// Lookup finds the account a passkey's user handle names: store.ErrNotFound
// when none.
type Lookup func(ctx context.Context, userID []byte) (store.User, error)

// FinishPasswordless checks the answer to a passwordless sign-in sealed
// in state: the challenge is spent first (a second answer to it is
// refused whatever it holds), then the account is found by the key's
// user handle and the key checked, user verification included.
func (s *Service) FinishPasswordless(ctx context.Context, sealed, answer []byte, lookup Lookup) (store.User, Use, error) {
	if !s.o.Passwordless {
		return store.User{}, Use{}, fmt.Errorf("%w: passwordless sign-in is off", ErrChallenge)
	}
	st, err := s.open(sealed, kindPasswordless, "")
	if err != nil {
		return store.User{}, Use{}, err
	}
	n, err := s.spend.Incr(ctx, "passkey-challenge:"+st.Data.Challenge, 1, s.o.Timeout+time.Minute)
	if err != nil {
		return store.User{}, Use{}, fmt.Errorf("passkey: spend challenge: %w", err)
	}
	if n != 1 {
		return store.User{}, Use{}, fmt.Errorf("%w: already answered", ErrChallenge)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return store.User{}, Use{}, fmt.Errorf("%w: %v", ErrRefused, describe(err))
	}
	var found store.User
	var lookupErr error
	handler := func(_, userHandle []byte) (webauthn.User, error) {
		u, err := lookup(ctx, userHandle)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		if len(u.Passkeys) == 0 || !bytes.Equal(u.PasskeyUserID, userHandle) {
			return nil, fmt.Errorf("%w: no account has this key", ErrRefused)
		}
		found = u
		return user{u}, nil
	}
	cred, err := s.wa.ValidateDiscoverableLogin(handler, st.Data, parsed)
	if err != nil {
		if lookupErr != nil && !errors.Is(lookupErr, store.ErrNotFound) {
			return store.User{}, Use{}, fmt.Errorf("passkey: find the key's account: %w", lookupErr)
		}
		return store.User{}, Use{}, fmt.Errorf("%w: %v", ErrRefused, describe(err))
	}
	res, err := use(cred, parsed)
	if err != nil {
		return found, res, err
	}
	if !res.UserVerified {
		// The library checks it already (UV required); a sign-in
		// without the password never rests on presence alone.
		return store.User{}, Use{}, fmt.Errorf("%w: no user verification", ErrRefused)
	}
	return found, res, nil
}

// describe renders a library error with its details (protocol.Error
// keeps them apart from its short message).
func describe(err error) string {
	if pe, ok := errors.AsType[*protocol.Error](err); ok {
		if pe.DevInfo != "" {
			return pe.Details + ": " + pe.DevInfo
		}
		return pe.Details
	}
	return err.Error()
}

// user adapts a store.User to webauthn.User.
type user struct{ u store.User }

func (w user) WebAuthnID() []byte          { return w.u.PasskeyUserID }
func (w user) WebAuthnName() string        { return w.u.Name }
func (w user) WebAuthnDisplayName() string { return w.u.Name }

func (w user) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(w.u.Passkeys))
	for _, k := range w.u.Passkeys {
		c := webauthn.Credential{
			ID:              k.ID,
			PublicKey:       k.PublicKey,
			AttestationType: k.AttestationType,
			Flags: webauthn.CredentialFlags{
				UserPresent:    true,
				BackupEligible: k.BackupEligible,
				BackupState:    k.BackupState,
			},
			Authenticator: webauthn.Authenticator{AAGUID: k.AAGUID, SignCount: k.SignCount},
		}
		for _, t := range k.Transports {
			c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
		}
		out = append(out, c)
	}
	return out
}

// Lister pages through the accounts in name order (store.Users).
type Lister interface {
	ListUsers(ctx context.Context, opts store.ListOptions) ([]store.User, error)
}

// listPage is how many accounts OwnerLookup reads per call.
const listPage = 500

// OwnerLookup finds the account whose passkey user handle is userID by
// reading the account list: a passwordless sign-in happens once per
// session, and gateways in front of admin panels have few accounts, so
// no second index has to be kept in step with the accounts.
func OwnerLookup(l Lister) Lookup {
	return func(ctx context.Context, userID []byte) (store.User, error) {
		if len(userID) == 0 {
			return store.User{}, store.ErrNotFound
		}
		after := ""
		for {
			page, err := l.ListUsers(ctx, store.ListOptions{After: after, Limit: listPage})
			if err != nil {
				return store.User{}, fmt.Errorf("passkey: list accounts: %w", err)
			}
			for _, u := range page {
				if len(u.Passkeys) > 0 && bytes.Equal(u.PasskeyUserID, userID) {
					return u, nil
				}
			}
			if len(page) < listPage {
				return store.User{}, store.ErrNotFound
			}
			after = page[len(page)-1].Name
		}
	}
}
