package passkeytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Authenticator-data flag bits (WebAuthn §6.1).
const (
	FlagUserPresent            byte = 0x01 // UP
	FlagUserVerified           byte = 0x04 // UV
	FlagBackupEligible         byte = 0x08 // BE
	FlagBackupState            byte = 0x10 // BS
	FlagAttestedCredentialData byte = 0x40 // AT
)

// AlgES256 is the COSE algorithm identifier of the keys this authenticator
// makes (ECDSA w/ SHA-256 on P-256).
const AlgES256 = -7

// CredentialIDLength is the length in bytes of the credential ids Create
// makes.
const CredentialIDLength = 32

// Authenticator is a software authenticator (ES256 keys) plus the browser
// part (clientDataJSON) for one origin.
//
// The exported fields are behaviour knobs and may be changed between calls;
// an Authenticator is safe for concurrent use as long as the knobs are not
// changed concurrently with Create or Get.
type Authenticator struct {
	// Origin goes into clientDataJSON, e.g. "https://panel.example.com".
	// When the options carry no RP ID its host is used as the RP ID, as a
	// browser would.
	Origin string

	// UserPresent sets the UP flag (default in New: true).
	UserPresent bool
	// UserVerified sets the UV flag (default in New: true). It is not checked
	// against the options' userVerification: with UserVerified false the
	// authenticator still answers, so a test can see the server refuse.
	UserVerified bool
	// BackupEligible and BackupState set the BE and BS flags (default false).
	BackupEligible, BackupState bool

	// FixedCounter stops Get from incrementing the credential's signature
	// counter; the current value (see SetCounter) is signed as is. Leaving it
	// at 0 models authenticators that do not implement a counter.
	FixedCounter bool

	// RPIDOverride, when not empty, is hashed into authData's rpIdHash
	// instead of the options' RP ID (credentials are still looked up and
	// stored under the options' RP ID).
	RPIDOverride string

	// RawUserID makes Create use the bytes of the options' user.id string
	// as the user handle instead of base64url-decoding it (for servers
	// configured with EncodeUserIDAsString).
	RawUserID bool

	mu    sync.Mutex
	creds []*credential
}

type credential struct {
	id           []byte
	rpID         string
	userHandle   []byte
	discoverable bool
	key          *ecdsa.PrivateKey
	counter      uint32
}

// New returns an Authenticator for origin with UP and UV set and no
// credentials.
func New(origin string) *Authenticator {
	return &Authenticator{Origin: origin, UserPresent: true, UserVerified: true}
}

// Clone returns a copy with the same knobs and the same credentials (same
// ids, keys, user handles and current counters). The copies' counters move
// independently afterwards, which models a cloned security key.
func (a *Authenticator) Clone() *Authenticator {
	a.mu.Lock()
	defer a.mu.Unlock()

	c := &Authenticator{
		Origin:         a.Origin,
		UserPresent:    a.UserPresent,
		UserVerified:   a.UserVerified,
		BackupEligible: a.BackupEligible,
		BackupState:    a.BackupState,
		FixedCounter:   a.FixedCounter,
		RPIDOverride:   a.RPIDOverride,
		RawUserID:      a.RawUserID,
	}
	for _, cr := range a.creds {
		cp := *cr
		cp.id = bytes.Clone(cr.id)
		cp.userHandle = bytes.Clone(cr.userHandle)
		c.creds = append(c.creds, &cp)
	}
	return c
}

// Credentials lists the ids of the remembered credentials, oldest first.
func (a *Authenticator) Credentials() [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()

	ids := make([][]byte, 0, len(a.creds))
	for _, c := range a.creds {
		ids = append(ids, bytes.Clone(c.id))
	}
	return ids
}

// Counter returns the current signature counter of credential id.
func (a *Authenticator) Counter(id []byte) (uint32, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()

	if c := a.find(id); c != nil {
		return c.counter, true
	}
	return 0, false
}

// SetCounter sets the signature counter of credential id; the next Get
// signs n+1 (or n with FixedCounter). It reports whether id is known.
func (a *Authenticator) SetCounter(id []byte, n uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()

	if c := a.find(id); c != nil {
		c.counter = n
		return true
	}
	return false
}

// UserHandle returns the user handle remembered with credential id.
func (a *Authenticator) UserHandle(id []byte) ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()

	if c := a.find(id); c != nil {
		return bytes.Clone(c.userHandle), true
	}
	return nil, false
}

// PublicKey returns the public key of credential id.
func (a *Authenticator) PublicKey(id []byte) (*ecdsa.PublicKey, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()

	if c := a.find(id); c != nil {
		return &c.key.PublicKey, true
	}
	return nil, false
}

// Remove forgets credential id (the user deleted the passkey). It reports
// whether id was known.
func (a *Authenticator) Remove(id []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()

	for i, c := range a.creds {
		if bytes.Equal(c.id, id) {
			a.creds = append(a.creds[:i:i], a.creds[i+1:]...)
			return true
		}
	}
	return false
}

func (a *Authenticator) find(id []byte) *credential {
	for _, c := range a.creds {
		if bytes.Equal(c.id, id) {
			return c
		}
	}
	return nil
}

// Wire formats of the options (only the members this package reads).

type descriptor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type creationOptions struct {
	RP struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rp"`
	User struct {
		ID          json.RawMessage `json:"id"`
		Name        string          `json:"name"`
		DisplayName string          `json:"displayName"`
	} `json:"user"`
	Challenge        string `json:"challenge"`
	PubKeyCredParams []struct {
		Type string `json:"type"`
		Alg  int64  `json:"alg"`
	} `json:"pubKeyCredParams"`
	ExcludeCredentials     []descriptor `json:"excludeCredentials"`
	AuthenticatorSelection struct {
		ResidentKey        string `json:"residentKey"`
		RequireResidentKey bool   `json:"requireResidentKey"`
	} `json:"authenticatorSelection"`
	Extensions map[string]json.RawMessage `json:"extensions"`
}

type requestOptions struct {
	Challenge        string       `json:"challenge"`
	RPID             string       `json:"rpId"`
	AllowCredentials []descriptor `json:"allowCredentials"`
}

// unwrap returns the object under "publicKey" when present, else data
// itself (bare PublicKeyCredential*OptionsJSON are accepted too).
func unwrap(data []byte, v any) error {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(data, &outer); err != nil {
		return fmt.Errorf("passkeytest: parse options: %w", err)
	}
	inner := data
	if pk, ok := outer["publicKey"]; ok {
		inner = pk
	}
	if err := json.Unmarshal(inner, v); err != nil {
		return fmt.Errorf("passkeytest: parse options: %w", err)
	}
	return nil
}

// Wire formats of the responses, as PublicKeyCredential.toJSON() makes them.

type registrationResponse struct {
	ID                      string                     `json:"id"`
	RawID                   string                     `json:"rawId"`
	Type                    string                     `json:"type"`
	Response                attestationResponse        `json:"response"`
	AuthenticatorAttachment string                     `json:"authenticatorAttachment"`
	ClientExtensionResults  map[string]json.RawMessage `json:"clientExtensionResults"`
}

type attestationResponse struct {
	ClientDataJSON     string   `json:"clientDataJSON"`
	AuthenticatorData  string   `json:"authenticatorData"`
	Transports         []string `json:"transports"`
	PublicKey          string   `json:"publicKey"`
	PublicKeyAlgorithm int64    `json:"publicKeyAlgorithm"`
	AttestationObject  string   `json:"attestationObject"`
}

type authenticationResponse struct {
	ID                      string                     `json:"id"`
	RawID                   string                     `json:"rawId"`
	Type                    string                     `json:"type"`
	Response                assertionResponse          `json:"response"`
	AuthenticatorAttachment string                     `json:"authenticatorAttachment"`
	ClientExtensionResults  map[string]json.RawMessage `json:"clientExtensionResults"`
}

type assertionResponse struct {
	ClientDataJSON    string `json:"clientDataJSON"`
	AuthenticatorData string `json:"authenticatorData"`
	Signature         string `json:"signature"`
	UserHandle        string `json:"userHandle,omitempty"`
}

type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

type attestationObject struct {
	Fmt      string         `cbor:"fmt"`
	AttStmt  map[string]any `cbor:"attStmt"`
	AuthData []byte         `cbor:"authData"`
}

var b64 = base64.RawURLEncoding

// decodeB64 accepts base64url or standard base64, padded or not.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// rpIDFor returns rpID, or the host of a.Origin when rpID is empty.
func (a *Authenticator) rpIDFor(rpID string) (string, error) {
	if rpID != "" {
		return rpID, nil
	}
	u, err := url.Parse(a.Origin)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("passkeytest: options carry no RP ID and origin %q has no host", a.Origin)
	}
	return u.Hostname(), nil
}

func (a *Authenticator) clientDataJSON(typ, challenge string) ([]byte, error) {
	return json.Marshal(clientData{Type: typ, Challenge: challenge, Origin: a.Origin})
}

// authData builds rpIdHash | flags | signCount [| attestedCredentialData].
func (a *Authenticator) authData(rpID string, counter uint32, attested []byte) []byte {
	if a.RPIDOverride != "" {
		rpID = a.RPIDOverride
	}
	h := sha256.Sum256([]byte(rpID))
	var flags byte
	if a.UserPresent {
		flags |= FlagUserPresent
	}
	if a.UserVerified {
		flags |= FlagUserVerified
	}
	if a.BackupEligible {
		flags |= FlagBackupEligible
	}
	if a.BackupState {
		flags |= FlagBackupState
	}
	if attested != nil {
		flags |= FlagAttestedCredentialData
	}
	out := make([]byte, 0, 37+len(attested))
	out = append(out, h[:]...)
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, counter)
	return append(out, attested...)
}

// coseKey encodes pub as a COSE_Key (kty EC2, alg ES256, crv P-256).
func coseKey(pub *ecdsa.PublicKey) ([]byte, error) {
	raw, err := pub.Bytes() // 0x04 | X(32) | Y(32)
	if err != nil {
		return nil, err
	}
	return webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{
			KeyType:   int64(webauthncose.EllipticKey),
			Algorithm: int64(webauthncose.AlgES256),
		},
		Curve:  int64(webauthncose.P256),
		XCoord: raw[1:33],
		YCoord: raw[33:65],
	})
}

// Create answers creation options: the JSON the server sends to the page
// (a protocol.CredentialCreation, i.e. {"publicKey":{...}}; the bare inner
// object is accepted too). It makes a new P-256 key pair for rp.id (the
// Origin's host when absent), remembers the credential with the user handle
// (discoverable when residentKey is "required" or "preferred", or
// requireResidentKey is true) and returns the registration response JSON:
// id, rawId, type "public-key", response.clientDataJSON,
// response.authenticatorData, response.publicKey (SPKI),
// response.publicKeyAlgorithm -7, response.attestationObject (fmt "none"),
// response.transports ["internal"], clientExtensionResults and
// authenticatorAttachment "platform"; binary fields are base64url without
// padding.
//
// Like a real authenticator it fails when pubKeyCredParams is not empty and
// lacks ES256, or when a remembered credential for the RP is listed in
// excludeCredentials.
func (a *Authenticator) Create(optionsJSON []byte) ([]byte, error) {
	var opts creationOptions
	if err := unwrap(optionsJSON, &opts); err != nil {
		return nil, err
	}
	if opts.Challenge == "" {
		return nil, errors.New("passkeytest: creation options carry no challenge")
	}
	rpID, err := a.rpIDFor(opts.RP.ID)
	if err != nil {
		return nil, err
	}

	if len(opts.PubKeyCredParams) > 0 {
		ok := false
		for _, p := range opts.PubKeyCredParams {
			if p.Type == "public-key" && p.Alg == AlgES256 {
				ok = true
				break
			}
		}
		if !ok {
			return nil, errors.New("passkeytest: NotSupportedError: pubKeyCredParams does not offer ES256 (-7)")
		}
	}

	userHandle, err := a.userHandle(opts.User.ID)
	if err != nil {
		return nil, err
	}

	rk := opts.AuthenticatorSelection.RequireResidentKey ||
		opts.AuthenticatorSelection.ResidentKey == "required" ||
		opts.AuthenticatorSelection.ResidentKey == "preferred"

	a.mu.Lock()
	defer a.mu.Unlock()

	for _, d := range opts.ExcludeCredentials {
		id, err := decodeB64(d.ID)
		if err != nil {
			return nil, fmt.Errorf("passkeytest: excludeCredentials id %q: %w", d.ID, err)
		}
		if c := a.find(id); c != nil && c.rpID == rpID {
			return nil, errors.New("passkeytest: InvalidStateError: authenticator holds a credential listed in excludeCredentials")
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	credID := make([]byte, CredentialIDLength)
	if _, err := rand.Read(credID); err != nil {
		return nil, err
	}
	cose, err := coseKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}

	cred := &credential{id: credID, rpID: rpID, userHandle: userHandle, discoverable: rk, key: key}

	attested := make([]byte, 0, 16+2+len(credID)+len(cose))
	attested = append(attested, make([]byte, 16)...) // AAGUID: zero
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(credID)))
	attested = append(attested, credID...)
	attested = append(attested, cose...)
	authData := a.authData(rpID, cred.counter, attested)

	attObj, err := webauthncbor.Marshal(attestationObject{Fmt: "none", AttStmt: map[string]any{}, AuthData: authData})
	if err != nil {
		return nil, err
	}
	cdj, err := a.clientDataJSON("webauthn.create", opts.Challenge)
	if err != nil {
		return nil, err
	}

	ext := map[string]json.RawMessage{}
	if raw, ok := opts.Extensions["credProps"]; ok && string(raw) == "true" {
		ext["credProps"] = json.RawMessage(fmt.Sprintf(`{"rk":%t}`, rk))
	}

	out, err := json.Marshal(registrationResponse{
		ID:    b64.EncodeToString(credID),
		RawID: b64.EncodeToString(credID),
		Type:  "public-key",
		Response: attestationResponse{
			ClientDataJSON:     b64.EncodeToString(cdj),
			AuthenticatorData:  b64.EncodeToString(authData),
			Transports:         []string{"internal"},
			PublicKey:          b64.EncodeToString(spki),
			PublicKeyAlgorithm: AlgES256,
			AttestationObject:  b64.EncodeToString(attObj),
		},
		AuthenticatorAttachment: "platform",
		ClientExtensionResults:  ext,
	})
	if err != nil {
		return nil, err
	}
	a.creds = append(a.creds, cred)
	return out, nil
}

func (a *Authenticator) userHandle(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("passkeytest: creation options carry no user.id")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("passkeytest: user.id is not a string: %w", err)
	}
	if s == "" {
		return nil, errors.New("passkeytest: creation options carry an empty user.id")
	}
	if a.RawUserID {
		return []byte(s), nil
	}
	h, err := decodeB64(s)
	if err != nil {
		return nil, fmt.Errorf("passkeytest: user.id %q is not base64url (set RawUserID for string ids): %w", s, err)
	}
	return h, nil
}

// Get answers request options ({"publicKey":{...}}, a
// protocol.CredentialAssertion; the bare inner object is accepted too). It
// picks a remembered credential for rpId (the Origin's host when absent)
// that is listed in allowCredentials (the first listed one it holds) or,
// when allowCredentials is empty, the newest discoverable one; increments
// its counter unless FixedCounter is set; signs authData ||
// sha256(clientDataJSON) with ECDSA P-256 SHA-256 (ASN.1 DER) and returns
// the assertion response JSON. response.userHandle is set whenever the
// credential's user handle is known. It fails when no credential fits.
func (a *Authenticator) Get(optionsJSON []byte) ([]byte, error) {
	return a.get(optionsJSON, nil)
}

// GetWith is Get using credential id, whether or not it is listed in
// allowCredentials, discoverable, or registered for the options' RP ID (for
// tests of server-side checks and for choosing among several discoverable
// credentials).
func (a *Authenticator) GetWith(optionsJSON []byte, id []byte) ([]byte, error) {
	if id == nil {
		id = []byte{}
	}
	return a.get(optionsJSON, id)
}

func (a *Authenticator) get(optionsJSON []byte, forced []byte) ([]byte, error) {
	var opts requestOptions
	if err := unwrap(optionsJSON, &opts); err != nil {
		return nil, err
	}
	if opts.Challenge == "" {
		return nil, errors.New("passkeytest: request options carry no challenge")
	}
	rpID, err := a.rpIDFor(opts.RPID)
	if err != nil {
		return nil, err
	}

	a.mu.Lock()
	defer a.mu.Unlock()

	var cred *credential
	switch {
	case forced != nil:
		if cred = a.find(forced); cred == nil {
			return nil, fmt.Errorf("passkeytest: NotAllowedError: no credential %s", b64.EncodeToString(forced))
		}
	case len(opts.AllowCredentials) > 0:
		for _, d := range opts.AllowCredentials {
			id, err := decodeB64(d.ID)
			if err != nil {
				return nil, fmt.Errorf("passkeytest: allowCredentials id %q: %w", d.ID, err)
			}
			if c := a.find(id); c != nil && c.rpID == rpID {
				cred = c
				break
			}
		}
	default:
		for i := len(a.creds) - 1; i >= 0; i-- {
			if c := a.creds[i]; c.rpID == rpID && c.discoverable {
				cred = c
				break
			}
		}
	}
	if cred == nil {
		return nil, fmt.Errorf("passkeytest: NotAllowedError: no suitable credential for RP %q", rpID)
	}

	counter := cred.counter
	if !a.FixedCounter {
		counter++
	}
	authData := a.authData(rpID, counter, nil)
	cdj, err := a.clientDataJSON("webauthn.get", opts.Challenge)
	if err != nil {
		return nil, err
	}
	cdh := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(bytes.Clone(authData), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.key, digest[:])
	if err != nil {
		return nil, err
	}

	var uh string
	if len(cred.userHandle) > 0 {
		uh = b64.EncodeToString(cred.userHandle)
	}
	out, err := json.Marshal(authenticationResponse{
		ID:    b64.EncodeToString(cred.id),
		RawID: b64.EncodeToString(cred.id),
		Type:  "public-key",
		Response: assertionResponse{
			ClientDataJSON:    b64.EncodeToString(cdj),
			AuthenticatorData: b64.EncodeToString(authData),
			Signature:         b64.EncodeToString(sig),
			UserHandle:        uh,
		},
		AuthenticatorAttachment: "platform",
		ClientExtensionResults:  map[string]json.RawMessage{},
	})
	if err != nil {
		return nil, err
	}
	cred.counter = counter
	return out, nil
}
