// Package session issues, reads, renews and ends login sessions. A session
// id is 256 random bits sent only in the cookie; the store keeps the
// session under the id's SHA-256 so a leaked store dump holds no usable
// cookie. Idle timeout and absolute lifetime are enforced here, on every
// read, whatever the backend's own expiry does.
package session
