// Package control is the server's local control socket: the transport
// of users.Admin between the `authgate` commands and a running server.
//
// The embedded (bbolt) store is locked by the running server, so the
// server serves its users.Service on a unix socket (ListenSocket +
// NewSocketHandler, every request acting as the CLI) and the commands
// talk to it with Client, which implements users.Admin. The protocol is
// JSON over HTTP; its request and response types are in wire.go. A
// failure carries the code of the sentinel it matches, the message
// unchanged and the fields of a typed error, so errors.Is and errors.As
// find the same in the Client's error as in the Service's. An
// unreachable socket is ErrUnavailable. The socket also streams a copy
// of the store file for `authgate backup` (WithBackup, Client.Backup).
//
// The socket's 0600 mode is the access control: whoever can connect is
// the server's own user (or root).
package control
