// Package passkey runs the WebAuthn ceremonies of passkeys and security
// keys with github.com/go-webauthn/webauthn: registering a key for a
// signed-in user, using one as the second factor after the password,
// and (when allowed) signing in with a passkey alone.
//
// The package keeps no state. Each ceremony's begin step returns the
// options for the browser and the ceremony's state (its challenge, for
// whom, of which kind, until when) sealed, for the caller to keep
// server-side (in the session record) or, for a sign-in without a
// session, in a cookie; the finish step opens that state, refuses it when
// it is of another kind, for another user or expired, and checks the
// browser's answer against it. The caller makes a challenge single-use
// (the session moves on, or Spend records it), stores what a ceremony
// produced (Record, inside the store's atomic update) and decides what
// the proof unlocks.
package passkey
