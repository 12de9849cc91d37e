package passkeytest_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/authgate/authgate/gateway/passkey/passkeytest"
)

const (
	rpID   = "example.com"
	origin = "https://panel.example.com"
)

// testUser implements webauthn.User.
type testUser struct {
	id    []byte
	name  string
	creds []webauthn.Credential
}

func (u *testUser) WebAuthnID() []byte                         { return u.id }
func (u *testUser) WebAuthnName() string                       { return u.name }
func (u *testUser) WebAuthnDisplayName() string                { return strings.ToUpper(u.name) }
func (u *testUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// store keeps the updated credential record after a login, as an RP would.
func (u *testUser) store(c *webauthn.Credential) {
	for i := range u.creds {
		if bytes.Equal(u.creds[i].ID, c.ID) {
			u.creds[i] = *c
			return
		}
	}
	u.creds = append(u.creds, *c)
}

func newUser(name string) *testUser {
	id := make([]byte, 64)
	copy(id, "user-handle-"+name)
	return &testUser{id: id, name: name}
}

func newRP(t *testing.T) *webauthn.WebAuthn {
	t.Helper()
	return newRPWith(t, func(*webauthn.Config) {})
}

func newRPWith(t *testing.T, edit func(*webauthn.Config)) *webauthn.WebAuthn {
	t.Helper()
	cfg := &webauthn.Config{RPID: rpID, RPDisplayName: "x", RPOrigins: []string{origin}}
	edit(cfg)
	w, err := webauthn.New(cfg)
	if err != nil {
		t.Fatalf("webauthn.New: %v", err)
	}
	return w
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return b
}

// tryRegister runs a registration ceremony; the error is the server's verdict.
func tryRegister(t *testing.T, w *webauthn.WebAuthn, a *passkeytest.Authenticator, u *testUser, opts ...webauthn.RegistrationOption) (*webauthn.Credential, error) {
	t.Helper()
	creation, session, err := w.BeginRegistration(u, opts...)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	body, err := a.Create(mustJSON(t, creation))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, err
	}
	return w.CreateCredential(u, *session, parsed)
}

func register(t *testing.T, w *webauthn.WebAuthn, a *passkeytest.Authenticator, u *testUser, opts ...webauthn.RegistrationOption) *webauthn.Credential {
	t.Helper()
	cred, err := tryRegister(t, w, a, u, opts...)
	if err != nil {
		t.Fatalf("CreateCredential: %v", describe(err))
	}
	u.creds = append(u.creds, *cred)
	return cred
}

// tryLogin runs a login ceremony for u; the error is the server's verdict.
func tryLogin(t *testing.T, w *webauthn.WebAuthn, a *passkeytest.Authenticator, u *testUser, opts ...webauthn.LoginOption) (*webauthn.Credential, error) {
	t.Helper()
	assertion, session, err := w.BeginLogin(u, opts...)
	if err != nil {
		t.Fatalf("BeginLogin: %v", err)
	}
	body, err := a.Get(mustJSON(t, assertion))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, err
	}
	return w.ValidateLogin(u, *session, parsed)
}

func login(t *testing.T, w *webauthn.WebAuthn, a *passkeytest.Authenticator, u *testUser, opts ...webauthn.LoginOption) *webauthn.Credential {
	t.Helper()
	cred, err := tryLogin(t, w, a, u, opts...)
	if err != nil {
		t.Fatalf("ValidateLogin: %v", describe(err))
	}
	u.store(cred)
	return cred
}

// refused fails the test when the server accepted (err == nil) and logs why
// it refused otherwise.
func refused(t *testing.T, err error, accepted string) {
	t.Helper()
	if err == nil {
		t.Fatal(accepted)
	}
	t.Logf("refused as expected: %s", describe(err))
}

func describe(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Error() + ": " + pe.Details + " (" + pe.DevInfo + ")"
	}
	return err.Error()
}

func TestRegisterAndLogin(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")

	cred := register(t, w, a, u)
	ids := a.Credentials()
	if len(ids) != 1 || !bytes.Equal(ids[0], cred.ID) || len(cred.ID) != passkeytest.CredentialIDLength {
		t.Fatalf("Credentials() = %x, server credential id %x", ids, cred.ID)
	}
	if h, ok := a.UserHandle(cred.ID); !ok || !bytes.Equal(h, u.id) {
		t.Fatalf("UserHandle = %x, %v; want %x", h, ok, u.id)
	}
	if cred.Authenticator.SignCount != 0 || !cred.Flags.UserPresent || !cred.Flags.UserVerified || cred.Flags.BackupEligible {
		t.Fatalf("registered credential: count %d flags %+v", cred.Authenticator.SignCount, cred.Flags)
	}
	if cred.AttestationFormat != "none" {
		t.Fatalf("attestation format %q", cred.AttestationFormat)
	}
	if len(cred.Transport) != 1 || cred.Transport[0] != protocol.Internal {
		t.Fatalf("transports %v", cred.Transport)
	}

	for want := uint32(1); want <= 3; want++ {
		got := login(t, w, a, u)
		if !bytes.Equal(got.ID, cred.ID) {
			t.Fatalf("login used credential %x", got.ID)
		}
		if got.Authenticator.SignCount != want || got.Authenticator.CloneWarning {
			t.Fatalf("login %d: SignCount %d CloneWarning %v", want, got.Authenticator.SignCount, got.Authenticator.CloneWarning)
		}
	}
	if n, ok := a.Counter(cred.ID); !ok || n != 3 {
		t.Fatalf("Counter = %d, %v", n, ok)
	}
}

func TestTwoCredentialsAllowList(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	alice, bob := newUser("alice"), newUser("bob")
	ca := register(t, w, a, alice)
	cb := register(t, w, a, bob)

	if got := login(t, w, a, alice); !bytes.Equal(got.ID, ca.ID) {
		t.Fatalf("alice logged in with %x, want %x", got.ID, ca.ID)
	}
	if got := login(t, w, a, bob); !bytes.Equal(got.ID, cb.ID) {
		t.Fatalf("bob logged in with %x, want %x", got.ID, cb.ID)
	}
	// Another authenticator holds neither credential.
	assertion, _, err := w.BeginLogin(alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := passkeytest.New(origin).Get(mustJSON(t, assertion)); err == nil {
		t.Fatal("Get without a fitting credential succeeded")
	}
}

func TestResponseWireFormat(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")

	creation, _, err := w.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	body, err := a.Create(mustJSON(t, creation))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ID, RawID, Type, AuthenticatorAttachment string
		ClientExtensionResults                   map[string]any
		Response                                 struct {
			ClientDataJSON, AuthenticatorData, PublicKey, AttestationObject string
			PublicKeyAlgorithm                                              int
			Transports                                                      []string
		}
	}
	if err := json.Unmarshal(body, &reg); err != nil {
		t.Fatal(err)
	}
	if reg.ID != reg.RawID || reg.Type != "public-key" || reg.AuthenticatorAttachment != "platform" ||
		reg.ClientExtensionResults == nil || reg.Response.PublicKeyAlgorithm != -7 ||
		len(reg.Response.Transports) != 1 || reg.Response.Transports[0] != "internal" {
		t.Fatalf("registration response: %s", body)
	}
	if strings.ContainsAny(string(body), "=+/") {
		t.Fatalf("padding or non-url base64 in %s", body)
	}
	cdj, err := base64.RawURLEncoding.DecodeString(reg.Response.ClientDataJSON)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"webauthn.create","challenge":"` + creation.Response.Challenge.String() + `","origin":"` + origin + `","crossOrigin":false}`
	if string(cdj) != want {
		t.Fatalf("clientDataJSON %s, want %s", cdj, want)
	}
	authData, _ := base64.RawURLEncoding.DecodeString(reg.Response.AuthenticatorData)
	if len(authData) < 37+16+2+32 || authData[32] != 0x45 || !bytes.Equal(authData[37:53], make([]byte, 16)) {
		t.Fatalf("authData %x", authData)
	}

	// Assertion.
	parsedReg, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	if parsedReg.Response.AttestationObject.Format != "none" || len(parsedReg.Response.AttestationObject.AttStatement) != 0 {
		t.Fatalf("attestation object %+v", parsedReg.Response.AttestationObject)
	}
	u.creds = append(u.creds, webauthn.Credential{ID: parsedReg.RawID})
	assertion, _, err := w.BeginLogin(u)
	if err != nil {
		t.Fatal(err)
	}
	body, err = a.Get(mustJSON(t, assertion))
	if err != nil {
		t.Fatal(err)
	}
	var as struct {
		ID, RawID, Type string
		Response        struct{ ClientDataJSON, AuthenticatorData, Signature, UserHandle string }
	}
	if err := json.Unmarshal(body, &as); err != nil {
		t.Fatal(err)
	}
	if as.ID != reg.ID || as.Type != "public-key" || as.Response.UserHandle != base64.RawURLEncoding.EncodeToString(u.id) {
		t.Fatalf("assertion response: %s", body)
	}
	cdj, _ = base64.RawURLEncoding.DecodeString(as.Response.ClientDataJSON)
	want = `{"type":"webauthn.get","challenge":"` + assertion.Response.Challenge.String() + `","origin":"` + origin + `","crossOrigin":false}`
	if string(cdj) != want {
		t.Fatalf("clientDataJSON %s, want %s", cdj, want)
	}
	authData, _ = base64.RawURLEncoding.DecodeString(as.Response.AuthenticatorData)
	if len(authData) != 37 || authData[32] != 0x05 || !bytes.Equal(authData[33:37], []byte{0, 0, 0, 1}) {
		t.Fatalf("authData %x", authData)
	}
}

func TestDiscoverableLogin(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	alice, bob := newUser("alice"), newUser("bob")
	register(t, w, a, alice, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
	bobCred := register(t, w, a, bob, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementPreferred))
	users := map[string]*testUser{string(alice.id): alice, string(bob.id): bob}

	assertion, session, err := w.BeginDiscoverableLogin()
	if err != nil {
		t.Fatal(err)
	}
	body, err := a.Get(mustJSON(t, assertion))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	user, cred, err := w.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
		if u, ok := users[string(userHandle)]; ok {
			return u, nil
		}
		return nil, errors.New("unknown user handle")
	}, *session, parsed)
	if err != nil {
		t.Fatalf("ValidatePasskeyLogin: %v", describe(err))
	}
	// The newest discoverable credential is chosen.
	if user.(*testUser) != bob || !bytes.Equal(cred.ID, bobCred.ID) || cred.Authenticator.SignCount != 1 {
		t.Fatalf("logged in %s with %x count %d", user.WebAuthnName(), cred.ID, cred.Authenticator.SignCount)
	}

	// GetWith picks a specific credential.
	assertion, session, err = w.BeginDiscoverableLogin()
	if err != nil {
		t.Fatal(err)
	}
	body, err = a.GetWith(mustJSON(t, assertion), alice.creds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err = protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	user, _, err = w.ValidatePasskeyLogin(func(_, userHandle []byte) (webauthn.User, error) {
		return users[string(userHandle)], nil
	}, *session, parsed)
	if err != nil || user.(*testUser) != alice {
		t.Fatalf("GetWith alice: %v, %v", user, err)
	}
}

func TestNonDiscoverableNotUsedWithoutAllowList(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")
	register(t, w, a, u, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementDiscouraged))

	assertion, _, err := w.BeginDiscoverableLogin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(mustJSON(t, assertion)); err == nil {
		t.Fatal("Get answered a discoverable request with a non-discoverable credential")
	}
	login(t, w, a, u) // still fine with an allow list
}

func TestWrongOriginRefused(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New("https://evil.example.net")
	u := newUser("alice")
	_, err := tryRegister(t, w, a, u)
	refused(t, err, "registration from a foreign origin accepted")

	a.Origin = origin
	register(t, w, a, u)
	a.Origin = "https://panel.example.com:8443"
	_, err = tryLogin(t, w, a, u)
	refused(t, err, "login from a foreign origin accepted")
	a.Origin = origin
	login(t, w, a, u)
}

func TestRPIDOverrideRefused(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")

	a.RPIDOverride = "evil.example"
	_, err := tryRegister(t, w, a, u)
	refused(t, err, "registration with a foreign rpIdHash accepted")
	a.RPIDOverride = ""
	register(t, w, a, u)
	a.RPIDOverride = "panel.example.com"
	_, err = tryLogin(t, w, a, u)
	refused(t, err, "login with a foreign rpIdHash accepted")
	a.RPIDOverride = ""
	login(t, w, a, u)
}

func TestChallengeFromOtherCeremonyRefused(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")
	register(t, w, a, u)

	first, _, err := w.BeginLogin(u)
	if err != nil {
		t.Fatal(err)
	}
	_, second, err := w.BeginLogin(u)
	if err != nil {
		t.Fatal(err)
	}
	body, err := a.Get(mustJSON(t, first))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.ValidateLogin(u, *second, parsed)
	refused(t, err, "assertion over another ceremony's challenge accepted")
}

func TestUserVerificationRequired(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")
	register(t, w, a, u)

	a.UserVerified = false
	_, err := tryLogin(t, w, a, u, webauthn.WithUserVerification(protocol.VerificationRequired))
	refused(t, err, "login without UV accepted although the session requires UV")
	// Without the requirement the same authenticator is accepted.
	got := login(t, w, a, u, webauthn.WithUserVerification(protocol.VerificationDiscouraged))
	if got.Authenticator.SignCount == 0 {
		t.Fatal("counter did not advance")
	}
	a.UserVerified = true
	login(t, w, a, u, webauthn.WithUserVerification(protocol.VerificationRequired))
}

func TestUserPresenceRequired(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")
	register(t, w, a, u)
	a.UserPresent = false
	_, err := tryLogin(t, w, a, u)
	refused(t, err, "login without UP accepted")
}

func TestCloneWarning(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")
	cred := register(t, w, a, u)
	clone := a.Clone()
	if ids := clone.Credentials(); len(ids) != 1 || !bytes.Equal(ids[0], cred.ID) {
		t.Fatalf("clone holds %x", ids)
	}

	login(t, w, a, u)
	login(t, w, a, u) // server now at 2
	got, err := tryLogin(t, w, clone, u)
	if err != nil {
		t.Fatalf("clone login: %v", describe(err))
	}
	if got.Authenticator.SignCount != 2 || !got.Authenticator.CloneWarning {
		t.Fatalf("clone login: SignCount %d CloneWarning %v", got.Authenticator.SignCount, got.Authenticator.CloneWarning)
	}
	if n, _ := clone.Counter(cred.ID); n != 1 {
		t.Fatalf("clone counter %d", n)
	}
	if n, _ := a.Counter(cred.ID); n != 2 {
		t.Fatalf("original counter %d", n)
	}
}

func TestSetCounterAndFixedCounter(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")
	cred := register(t, w, a, u)

	if !a.SetCounter(cred.ID, 41) || a.SetCounter([]byte("nope"), 1) {
		t.Fatal("SetCounter result")
	}
	if got := login(t, w, a, u); got.Authenticator.SignCount != 42 || got.Authenticator.CloneWarning {
		t.Fatalf("SignCount %d CloneWarning %v", got.Authenticator.SignCount, got.Authenticator.CloneWarning)
	}
	a.FixedCounter = true
	got, err := tryLogin(t, w, a, u)
	if err != nil {
		t.Fatal(describe(err))
	}
	if !got.Authenticator.CloneWarning {
		t.Fatal("repeated counter not flagged")
	}

	// An authenticator without counter (always 0) is not flagged.
	w2, a2, u2 := newRP(t), passkeytest.New(origin), newUser("bob")
	a2.FixedCounter = true
	register(t, w2, a2, u2)
	for range 2 {
		if got := login(t, w2, a2, u2); got.Authenticator.SignCount != 0 || got.Authenticator.CloneWarning {
			t.Fatalf("zero counter: %d %v", got.Authenticator.SignCount, got.Authenticator.CloneWarning)
		}
	}
}

func TestBackupFlags(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	a.BackupEligible, a.BackupState = true, true
	u := newUser("alice")
	cred := register(t, w, a, u)
	if !cred.Flags.BackupEligible || !cred.Flags.BackupState {
		t.Fatalf("flags %+v", cred.Flags)
	}
	login(t, w, a, u)
	a.BackupEligible, a.BackupState = false, false
	_, err := tryLogin(t, w, a, u)
	refused(t, err, "BE flag change accepted")
}

func TestExcludeCredentials(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")
	cred := register(t, w, a, u)

	creation, _, err := w.BeginRegistration(u, webauthn.WithExclusions([]protocol.CredentialDescriptor{cred.Descriptor()}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Create(mustJSON(t, creation)); err == nil {
		t.Fatal("Create ignored excludeCredentials")
	}
	// A different authenticator may register.
	register(t, w, passkeytest.New(origin), u, webauthn.WithExclusions([]protocol.CredentialDescriptor{cred.Descriptor()}))
}

func TestRemove(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")
	cred := register(t, w, a, u)
	if !a.Remove(cred.ID) || len(a.Credentials()) != 0 {
		t.Fatal("Remove")
	}
	assertion, _, err := w.BeginLogin(u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(mustJSON(t, assertion)); err == nil {
		t.Fatal("Get with a removed credential succeeded")
	}
}

func TestUserIDAsString(t *testing.T) {
	w := newRPWith(t, func(c *webauthn.Config) { c.EncodeUserIDAsString = true })
	a := passkeytest.New(origin)
	a.RawUserID = true
	u := &testUser{id: []byte("alice-0123456789"), name: "alice"}
	register(t, w, a, u, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))

	assertion, session, err := w.BeginDiscoverableLogin()
	if err != nil {
		t.Fatal(err)
	}
	body, err := a.Get(mustJSON(t, assertion))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parsed.Response.UserHandle, u.id) {
		t.Fatalf("user handle %q", parsed.Response.UserHandle)
	}
	if _, _, err := w.ValidatePasskeyLogin(func(_, h []byte) (webauthn.User, error) { return u, nil }, *session, parsed); err != nil {
		t.Fatal(describe(err))
	}
}

func TestBareOptionsAndBadInput(t *testing.T) {
	w := newRP(t)
	a := passkeytest.New(origin)
	u := newUser("alice")
	creation, session, err := w.BeginRegistration(u)
	if err != nil {
		t.Fatal(err)
	}
	body, err := a.Create(mustJSON(t, creation.Response)) // without the "publicKey" wrapper
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreateCredential(u, *session, parsed); err != nil {
		t.Fatal(describe(err))
	}

	for _, in := range []string{``, `{`, `{"publicKey":{}}`, `{"publicKey":{"challenge":"abc","rp":{"id":"example.com"},"user":{"id":"AQ"},"pubKeyCredParams":[{"type":"public-key","alg":-257}]}}`} {
		if _, err := a.Create([]byte(in)); err == nil {
			t.Errorf("Create(%s) succeeded", in)
		}
	}
	for _, in := range []string{``, `{"publicKey":{}}`, `{"publicKey":{"challenge":"abc","rpId":"other.example"}}`} {
		if _, err := a.Get([]byte(in)); err == nil {
			t.Errorf("Get(%s) succeeded", in)
		}
	}
}
