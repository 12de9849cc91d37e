// Package stream keeps the forwarded requests that are running, so that
// those that outlive their session can be ended: a WebSocket tunnel after
// its 101, a streamed (chunked, long) response, a slow download. The gate
// checks a session once, when the request arrives; without this an open
// tunnel would go on after a logout, a revoke or an expiry, since no new
// request ever comes to be refused.
//
// A Tracker holds one entry per running request (Add on the way in,
// Remove when the forward returns: a map insert and delete under a
// mutex). Its watcher (Run, or Start with a real ticker) asks every entry
// that has been open for at least one whole interval to decide again
// whether it may go on (the Stream's Check, which runs the same policy
// decision as the gate) and cancels the context of those that may not.
// httputil.ReverseProxy closes an upgraded connection, and aborts a
// streamed response, when the request's context ends.
package stream
