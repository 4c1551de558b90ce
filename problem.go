package mongohttp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// ProblemTypeBase prefixes an Error's Code to form the problem's "type" URI.
const ProblemTypeBase = "urn:mongohttp:problem:"

// AsError maps any error to the *Error a client should see:
//   - an *Error anywhere in err's chain is returned as a copy, so that
//     changing the result never changes the package's sentinels; one whose
//     Status is not a client or server error (400–599) becomes ErrInternal,
//     because no other status can carry a problem document;
//   - mongo.ErrNoDocuments becomes ErrNotFound;
//   - an unreachable server or an exhausted connection pool (the operation
//     never got a connection), or a server answering that it cannot serve
//     now (shutting down, electing a primary, overloaded), becomes
//     ErrUnavailable (503);
//   - otherwise an expired deadline, or an operation the server stopped for
//     exceeding its time limit, becomes ErrTimeout (504);
//   - a network error or a closed client becomes ErrUnavailable (503);
//   - anything else becomes ErrInternal (500).
//
// The returned error keeps err as its cause for logging.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Status < 400 || e.Status > 599 {
			return ErrInternal.Detailf("the request could not be completed").withCause(err)
		}
		c := *e
		if c.Title == "" {
			c.Title = http.StatusText(c.Status)
		}
		if c.Status == http.StatusUnprocessableEntity && len(c.Errors) == 0 {
			// A 422 always lists what failed: at worst the whole body.
			c.Errors = []FieldError{{Pointer: "", Code: c.Code, Detail: c.Detail}}
		}
		return &c
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		c := *ErrValidation
		c.Detail = "the document cannot be written; see errors"
		c.Errors = ve.Fields
		c.Err = err
		return &c
	}
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return ErrNotFound.withCause(err)
	case noConnection(err) || serverUnavailable(err):
		return ErrUnavailable.Detailf("the database cannot be reached; retry later").withCause(err)
	case errors.Is(err, context.DeadlineExceeded) || mongo.IsTimeout(err):
		return ErrTimeout.Detailf("the query did not finish within its time limit").withCause(err)
	case errors.Is(err, mongo.ErrClientDisconnected) || mongo.IsNetworkError(err):
		return ErrUnavailable.Detailf("the database cannot be reached; retry later").withCause(err)
	default:
		return ErrInternal.Detailf("the request could not be completed").withCause(err)
	}
}

// unavailableCodes are server error codes that mean "not now, elsewhere or
// later": shutdowns, elections, unreachable peers, overload.
var unavailableCodes = map[int32]bool{
	6: true, 7: true, 89: true, 91: true, 189: true, 462: true, 9001: true,
	10107: true, 11600: true, 11602: true, 13435: true, 13436: true,
}

// serverUnavailable reports whether the server answered that it cannot serve
// the operation now (a shutdown, a primary stepping down, overload), which
// the driver's retryable reads would also retry.
func serverUnavailable(err error) bool {
	var ce mongo.CommandError
	if !errors.As(err, &ce) {
		return false
	}
	return unavailableCodes[ce.Code] || ce.HasErrorLabel("RetryableError") || ce.HasErrorLabel("SystemOverloadedError")
}

// isPoolCleared reports whether err came from a connection pool the driver
// cleared after another connection to the same server failed.
func isPoolCleared(err error) bool { return hasTopologyError(err, "poolClearedError") }

// noConnection reports whether err means the operation never got a usable
// connection: no server could be selected, the pool had none to give within
// the wait, or the pool was cleared after another connection failed. The
// driver reports the first two as timeouts too, so they are checked first;
// a timeout of a query that did run is a 504 instead.
func noConnection(err error) bool {
	return hasTopologyError(err, "ServerSelectionError", "WaitQueueTimeoutError", "poolClearedError")
}

// hasTopologyError reports whether err's chain holds one of the driver's
// topology errors with the given type names. They live in a package
// documented as unstable; matching by name avoids importing it.
func hasTopologyError(err error, names ...string) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		t := reflect.TypeOf(e)
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if strings.HasSuffix(t.PkgPath(), "/x/mongo/driver/topology") && slices.Contains(names, t.Name()) {
			return true
		}
	}
	return false
}

// problemBody is the RFC 9457 document.
type problemBody struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Code     string       `json:"code"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// withExtensions adds extension members to a marshalled problem document.
func withExtensions(body []byte, ext map[string]any) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	for k, v := range ext {
		if _, standard := m[k]; !standard && k != "type" && k != "title" && k != "status" && k != "detail" && k != "instance" && k != "code" && k != "errors" {
			m[k] = v
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

// retryAfter is the value, in seconds, of the Retry-After header sent with
// 503 answers.
const retryAfter = 1

// WriteError writes err as an application/problem+json answer, mapped by
// AsError: any error, nil included, ends in a problem document with a 4xx or
// 5xx status. It never writes the cause's message, and echoes at most a
// bounded, escaped part of the request: the "instance" is the request path,
// percent-encoded and cut to MaxInstanceLength bytes. For HEAD requests it
// writes the headers only.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := AsError(err)
	if e == nil {
		e = ErrInternal.Detailf("the request could not be completed")
	}
	if r != nil {
		setRequestID(w, r)
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("ETag")
	h.Del("Link")
	h.Del("X-Total-Count")
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(retryAfter))
	}
	body, _ := json.Marshal(problemBody{
		Type:     ProblemTypeBase + e.Code,
		Title:    e.Title,
		Status:   e.Status,
		Detail:   cutText(e.Detail, maxDetailLength),
		Instance: instance(r),
		Code:     e.Code,
		Errors:   e.Errors,
	})
	if len(e.Extensions) > 0 {
		body = withExtensions(body, e.Extensions)
	}
	body = append(body, '\n')
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	if r == nil || r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// MaxInstanceLength caps the "instance" of a problem document, in bytes.
const MaxInstanceLength = 256

// maxDetailLength caps a problem's "detail". The package's own details quote
// client input through clip and stay far below it; the cap bounds details
// that applications write themselves.
const maxDetailLength = 1024

// instance returns the request path for a problem's "instance": the
// percent-encoded form in canonical spelling (see canonicalPath), so that
// no control byte or invalid UTF-8 is echoed,
// cut to MaxInstanceLength bytes without splitting an escape.
func instance(r *http.Request) string {
	if r == nil || r.URL == nil {
		return ""
	}
	p := requestPath(r)
	if len(p) <= MaxInstanceLength {
		return p
	}
	cut := MaxInstanceLength
	if i := strings.LastIndexByte(p[cut-2:cut], '%'); i >= 0 {
		cut = cut - 2 + i
	}
	return p[:cut]
}

// cutText cuts s to at most max bytes on a rune boundary, marking the cut.
func cutText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "…"
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
