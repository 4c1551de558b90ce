package mongohttp

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// Error is an error that maps to an HTTP answer: an RFC 9457 problem
// document with a stable machine-readable Code.
//
// The package's sentinel errors (ErrNotFound, ErrFieldNotAllowed, …) are
// *Error values; errors returned by mongohttp wrap them, so compare with
// errors.Is. Two *Error values match under errors.Is when their codes are
// equal, whatever their details. Derive an occurrence with Detailf; an
// ErrorFunc is never handed a sentinel itself, so editing the *Error it
// gets changes nothing for other requests.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is a stable identifier clients may switch on, for example
	// "field_not_allowed". Codes never change once published.
	Code string
	// Title is a short summary of the problem type.
	Title string
	// Detail explains this occurrence. It is shown to clients, so it never
	// holds driver or server messages.
	Detail string
	// Err is the underlying cause, for logs only. It is never shown to clients.
	Err error
	// Errors lists the failing fields of a 422 "validation_failed" answer,
	// written as the problem's "errors" member.
	Errors []FieldError
	// Extensions are further members of the problem document, such as a
	// bulk insert's "inserted" and "line". Members named like the standard
	// ones are ignored.
	Extensions map[string]any
}

// sentinels are the package's own *Error values, registered by newSentinel,
// which no caller may be handed to modify (see detachSentinel). Every
// exported *Error of the package is declared through newSentinel, which
// TestSentinelsAreRegistered checks on the source.
var sentinels []*Error

func newSentinel(status int, code, title string) *Error {
	e := &Error{Status: status, Code: code, Title: title}
	sentinels = append(sentinels, e)
	return e
}

// Errors of queries: the request's parameters break the policy or cannot be
// read.
var (
	ErrInvalidObjectID    = newSentinel(http.StatusBadRequest, "invalid_object_id", "Invalid object id")
	ErrInvalidParameter   = newSentinel(http.StatusBadRequest, "invalid_parameter", "Invalid parameter")
	ErrUnknownParameter   = newSentinel(http.StatusBadRequest, "unknown_parameter", "Unknown parameter")
	ErrFieldNotAllowed    = newSentinel(http.StatusBadRequest, "field_not_allowed", "Field not allowed")
	ErrOperatorNotAllowed = newSentinel(http.StatusBadRequest, "operator_not_allowed", "Operator not allowed")
	ErrLimitExceeded      = newSentinel(http.StatusBadRequest, "limit_exceeded", "Limit exceeded")
	ErrInvalidCursor      = newSentinel(http.StatusBadRequest, "invalid_cursor", "Invalid cursor")
	ErrCountNotAllowed    = newSentinel(http.StatusBadRequest, "count_not_allowed", "Count not allowed")
)

// Errors of any request.
var (
	ErrNotFound         = newSentinel(http.StatusNotFound, "not_found", "Not found")
	ErrMethodNotAllowed = newSentinel(http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed")
	ErrUnavailable      = newSentinel(http.StatusServiceUnavailable, "unavailable", "Database unavailable")
	ErrTimeout          = newSentinel(http.StatusGatewayTimeout, "timeout", "Query timed out")
	ErrInternal         = newSentinel(http.StatusInternalServerError, "internal", "Internal error")
	// ErrOverloaded is answered when a handler or its client has as many
	// requests running and waiting as its Admission allows.
	ErrOverloaded = newSentinel(http.StatusServiceUnavailable, "overloaded", "Too many requests in progress")
)

// Errors of request bodies.
var (
	ErrInvalidBody          = newSentinel(http.StatusBadRequest, "invalid_body", "Invalid request body")
	ErrBodyTooLarge         = newSentinel(http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large")
	ErrBodyTimeout          = newSentinel(http.StatusRequestTimeout, "body_timeout", "Request body timeout")
	ErrUnsupportedMediaType = newSentinel(http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type")
	ErrValidation           = newSentinel(http.StatusUnprocessableEntity, "validation_failed", "Validation failed")
)

// Errors of writes.
var (
	ErrConflict             = newSentinel(http.StatusConflict, "conflict", "Conflict")
	ErrPreconditionFailed   = newSentinel(http.StatusPreconditionFailed, "precondition_failed", "Precondition failed")
	ErrPreconditionRequired = newSentinel(http.StatusPreconditionRequired, "precondition_required", "Precondition required")
)

// Errors of Idempotency-Key.
var (
	ErrIdempotencyKeyReused = newSentinel(http.StatusUnprocessableEntity, "idempotency_key_reused", "Idempotency key reused")
	ErrIdempotencyPending   = newSentinel(http.StatusConflict, "idempotency_in_progress", "Request in progress")
)

// Errors of change feeds.
var (
	ErrInvalidResumeToken = newSentinel(http.StatusBadRequest, "invalid_resume_token", "Invalid resume token")
	ErrResumeExpired      = newSentinel(http.StatusGone, "resume_expired", "Resume token expired")
)

func (e *Error) Error() string {
	msg := e.Code
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return "mongohttp: " + msg
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Detailf returns a copy of e with Detail set from format and args. Use it to
// derive an occurrence from a sentinel: ErrFieldNotAllowed.Detailf("field %q …", f).
func (e *Error) Detailf(format string, args ...any) *Error {
	c := *e
	c.Detail = fmt.Sprintf(format, args...)
	return &c
}

// withCause returns a copy of e whose Err is cause.
func (e *Error) withCause(cause error) *Error {
	c := *e
	c.Err = cause
	return &c
}

// detachSentinel returns err such that the first *Error errors.As finds in
// it is not one of the package's sentinels: an ErrorFunc that edits the
// *Error it is given (application code may return ErrNotFound itself from a
// BaseFilter) must not rewrite the sentinel for the whole process. A bare
// sentinel becomes a copy; a chain holding one is wrapped so that the copy
// comes first, with the same message and errors.Is results.
func detachSentinel(err error) error {
	var e *Error
	if !errors.As(err, &e) || !slices.Contains(sentinels, e) {
		return err
	}
	c := *e
	if err == error(e) {
		return &c
	}
	return &detached{copy: &c, err: err}
}

// detached puts a copy of a sentinel in front of the chain that held it.
type detached struct {
	copy *Error
	err  error
}

func (d *detached) Error() string   { return d.err.Error() }
func (d *detached) Unwrap() []error { return []error{d.copy, d.err} }

// Errors of set-up calls, which no handler answers with.

// ErrNoURI is returned by Connect, ConnectConfig and Default when no
// connection string is given and the MONGODB_URI environment variable is
// empty: mongohttp never guesses a server (such as localhost).
var ErrNoURI = errors.New("mongohttp: no connection string: pass one or set MONGODB_URI")

// ErrIndexConflict is returned by EnsureIndexes when a collection holds an
// index with a needed key pattern whose options keep it from serving the
// need (partial, sparse, with a collation, or without the TTL asked for),
// or another index under the needed name: it cannot be created beside it,
// and mongohttp drops nothing.
var ErrIndexConflict = errors.New("mongohttp: an index with the same key pattern or name exists with other options")
