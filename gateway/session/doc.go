// Package session issues, reads, renews and ends login sessions. A session
// id is 256 random bits sent only in the cookie; the store keeps the
// session under the id's SHA-256 so a leaked store dump holds no usable
// cookie. Idle timeout and absolute lifetime are enforced here, on every
// read, whatever the backend's own expiry does.
//
// The states a session can be in, what each may reach, when a session is
// void (Valid) and the only moves between states (Move, CheckTransition)
// are written down in state.go. A session record is created only under a
// new id; later writes never re-create one that ended (a touch replaces
// only a live record), and every move starts by taking the record, so of
// concurrent moves of one session exactly one succeeds.
package session
