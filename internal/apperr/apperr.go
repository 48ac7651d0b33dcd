// Package apperr is Steward's one typed application error. Feature packages
// return *Error with a small, stable Code; the HTTP layer maps codes to status
// codes in a single table, and anything that is not an *Error is an internal
// error whose details are logged but never shown to the caller.
package apperr

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error class. Clients may switch on it, so
// values never change once released.
type Code string

// The codes. Keep the set small: a new code is an API change.
const (
	Invalid          Code = "invalid_request"
	Unauthenticated  Code = "unauthenticated"
	Forbidden        Code = "forbidden"
	NotFound         Code = "not_found"
	Conflict         Code = "conflict"
	Gone             Code = "gone" // existed, and no longer does (an expired download link)
	TooLarge         Code = "payload_too_large"
	UnsupportedMedia Code = "unsupported_media_type"
	MethodNotAllowed Code = "method_not_allowed"
	RateLimited      Code = "rate_limited"
	// Timeout: the request did not arrive within the read timeout (a
	// client that opened a connection and sent nothing, or too slowly).
	Timeout     Code = "request_timeout"
	Unavailable Code = "unavailable"
	Internal    Code = "internal"
)

// FieldError points at one offending input field, so a person can fix it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an application error safe to show to the caller: Message is written
// for a person and never contains personal data.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	Err     error // optional cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error with the given code and message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf is shorthand for an invalid_request error.
func Invalidf(format string, args ...any) *Error { return New(Invalid, format, args...) }

// Field returns an invalid_request error naming the field at fault.
func Field(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Code: Invalid, Message: field + ": " + msg, Fields: []FieldError{{Field: field, Message: msg}}}
}

// CodeOf returns the code of err, or Internal when err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// As returns err as *Error when it is one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
