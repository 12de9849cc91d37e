package users

import (
	"errors"
	"fmt"
	"strings"

	"github.com/authgate/authgate/gateway/store"
)

// Named errors. Store errors (store.ErrExists, store.ErrNotFound,
// store.ErrConflict) are passed through wrapped.
var (
	// ErrInvalid marks a rejected argument; every rejection is an
	// *InvalidError, which says which argument and why.
	ErrInvalid = errors.New("users: invalid input")
	// ErrLastAdmin refuses a change that would leave no admin.
	ErrLastAdmin = errors.New("users: that would leave no admin")
)

// InvalidError is a rejected argument. It matches ErrInvalid. Callers
// that show the problem to the person who gave the argument (the CLI, a
// form) take Message with errors.As; gateway/control's Client returns the
// same error for a rejection made by the server.
type InvalidError struct {
	// Field names the argument as the person knows it: "user name",
	// "group", "role", "password hash", "user names", "entries",
	// "2FA mode", "issuer", "ban target", "audit view", "status".
	Field string
	// Message says what is wrong, naming the argument (and its value
	// where that helps), e.g. `role "root": must be "admin" or "user"`.
	Message string
}

func (e *InvalidError) Error() string { return ErrInvalid.Error() + ": " + e.Message }

// Unwrap makes the error match ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// invalid returns an *InvalidError about field.
func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// UnknownUsersError refuses an operation on several users because some
// of them do not exist; nothing was changed. It matches store.ErrNotFound.
type UnknownUsersError struct {
	// Names are the users that do not exist, in the order given.
	Names []string
}

func (e *UnknownUsersError) Error() string {
	quoted := make([]string, len(e.Names))
	for i, n := range e.Names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	return fmt.Sprintf("no user %s; nothing changed", strings.Join(quoted, ", "))
}

// Unwrap makes the error match store.ErrNotFound.
func (e *UnknownUsersError) Unwrap() error { return store.ErrNotFound }
