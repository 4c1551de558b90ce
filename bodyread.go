package mongohttp

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// maxBodyDrain bounds what a write reads and drops of a body it refuses
// as too large. Closing a connection with unread bytes resets it, and a
// client that sends its whole body before it reads the answer (Python's
// urllib, many HTTP libraries) then sees the reset instead of the 413: so
// the rest of a body up to this size is read and dropped, bounded in time
// by BodyIdleTimeout; a larger one is cut.
const maxBodyDrain = 64 << 20

// bodyReader reads a request body with a bound on each wait for bytes
// rather than on the whole body: before each read it moves the
// connection's read deadline idle ahead, and it lifts the deadline once
// the body ends.
type bodyReader struct {
	body io.ReadCloser
	rc   *http.ResponseController // nil when w cannot set deadlines
	idle time.Duration
}

// body returns the request body to read, with the stall bound of
// Collection.BodyIdleTimeout.
func (h *writer[T]) body(w http.ResponseWriter, r *http.Request) io.ReadCloser {
	if h.w.bodyIdle < 0 {
		return r.Body
	}
	return &bodyReader{body: r.Body, rc: http.NewResponseController(w), idle: h.w.bodyIdle}
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.rc != nil && b.rc.SetReadDeadline(time.Now().Add(b.idle)) != nil {
		b.rc = nil // a writer without a connection (a test's recorder)
	}
	n, err := b.body.Read(p)
	if err == io.EOF && b.rc != nil {
		// net/http now reads ahead to notice a client that leaves; at a
		// deadline, that read would fail and cancel the request while its
		// write goes on.
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.body.Close() }

// dropRest prepares the refusal of a body that may not have been read to
// its end: the rest is read and dropped (see maxBodyDrain), and when some
// is left the connection closes after the answer. A client that waits for
// "100 Continue" before it sends anything (started is false and it asked)
// is not read from: reading would send that, and the client would send
// the body the answer refuses.
func dropRest(w http.ResponseWriter, r *http.Request, body io.Reader, started bool) {
	waiting := !started && strings.EqualFold(r.Header.Get("Expect"), "100-continue")
	if !waiting && r.ContentLength <= maxBodyDrain {
		if n, _ := io.CopyN(io.Discard, body, maxBodyDrain); n < maxBodyDrain {
			return // at its end (or broken: the server closes it then)
		}
	}
	w.Header().Set("Connection", "close")
}

// bodyReadError is the answer to a body that could not be read: 408 when
// it stopped arriving, 400 otherwise.
func (h *writer[T]) bodyReadError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if h.w.bodyIdle > 0 {
			return ErrBodyTimeout.Detailf("no bytes of the body arrived for %s", h.w.bodyIdle).withCause(err)
		}
		return ErrBodyTimeout.Detailf("the body was not read in time").withCause(err)
	}
	return ErrInvalidBody.Detailf("the body could not be read").withCause(err)
}
