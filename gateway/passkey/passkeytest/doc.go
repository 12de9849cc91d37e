// Package passkeytest is a software WebAuthn authenticator for Go tests.
//
// An [Authenticator] plays both the browser and the authenticator of a
// passkey ceremony: it takes the JSON options a relying party sends to the
// page (a protocol.CredentialCreation / protocol.CredentialAssertion, i.e.
// {"publicKey":{...}}) and returns the JSON that a browser's
// PublicKeyCredential.toJSON() would POST back, so server code built on
// github.com/go-webauthn/webauthn can be tested end to end without a
// browser.
//
// Keys are ECDSA P-256 (COSE alg -7, ES256); registration uses the "none"
// attestation format with an all-zero AAGUID. Exported fields on
// [Authenticator] control the authenticator-data flags (UP, UV, BE, BS),
// the signature counter, the origin written into clientDataJSON and the RP
// ID whose hash goes into authenticator data, so negative cases (wrong
// origin, wrong RP, missing user verification, cloned keys) can be produced
// deliberately.
//
// Typical use:
//
//	a := passkeytest.New("https://panel.example.com")
//	creation, session, _ := w.BeginRegistration(user)
//	opts, _ := json.Marshal(creation)
//	body, err := a.Create(opts)
//	parsed, _ := protocol.ParseCredentialCreationResponseBytes(body)
//	cred, err := w.CreateCredential(user, *session, parsed)
//
// This package is for tests only: private keys are kept in memory and no
// attempt is made to protect them.
package passkeytest
