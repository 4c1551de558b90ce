package mongohttp

import (
	"log/slog"
	"net/http"
	"time"
)

// eventSink receives the events of a snapshot or a catch-up.
type eventSink interface {
	send(ev feedEvent, token string) error
}

// eventStream writes Server-Sent Events. Every write has a deadline of
// its own, so a client that stops reading is cut after timeout whatever
// the server's WriteTimeout (which would also cut a stream that lives
// long): the handler then returns, and the client resumes from its token.
type eventStream struct {
	w       http.ResponseWriter
	r       *http.Request
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
}

func newEventStream(w http.ResponseWriter, r *http.Request, timeout time.Duration) *eventStream {
	return &eventStream{w: w, r: r, rc: http.NewResponseController(w), timeout: timeout}
}

func (s *eventStream) arm() { _ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) }

// start writes the headers, and a retry hint for EventSource.
func (s *eventStream) start() error {
	hdr := s.w.Header()
	hdr.Set("Content-Type", EventStream)
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Accel-Buffering", "no") // proxies that buffer answers must not hold events
	hdr.Add("Vary", "Accept")
	s.arm()
	s.w.WriteHeader(http.StatusOK)
	return s.write([]byte("retry: 1000\n\n"), true)
}

func (s *eventStream) write(b []byte, flush bool) error {
	s.arm()
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	if flush {
		return s.rc.Flush()
	}
	return nil
}

// send writes one event; it is flushed with the next mark or heartbeat, or
// when the server's buffer fills.
func (s *eventStream) send(ev feedEvent, token string) error {
	b := append(s.buf[:0], "event: "...)
	b = append(b, ev.kind...)
	b = append(b, "\nid: "...)
	b = append(b, token...)
	b = append(b, "\ndata: "...)
	b = append(b, ev.data...)
	b = append(b, "\n\n"...)
	s.buf = b
	return s.write(b, false)
}

// mark moves the client's last event id to token without an event (an
// SSE message without data sets the id and dispatches nothing), and
// flushes.
func (s *eventStream) mark(token string) error {
	b := append(append(append(s.buf[:0], "id: "...), token...), "\n\n"...)
	s.buf = b
	return s.write(b, true)
}

// heartbeat is a comment that keeps proxies from closing an idle stream,
// with the latest token.
func (s *eventStream) heartbeat(token string) error {
	b := append(append(append(s.buf[:0], ": heartbeat\nid: "...), token...), "\n\n"...)
	s.buf = b
	return s.write(b, true)
}

// abort ends a stream that failed after its headers: the client sees the
// stream end and resumes from its last token.
func (s *eventStream) abort(logger *slog.Logger, err error) {
	level := slog.LevelError
	if s.r.Context().Err() != nil {
		level = slog.LevelDebug
	}
	logger.LogAttrs(s.r.Context(), level, "mongohttp: change feed ended", slog.String("path", s.r.URL.Path), slog.Any("error", err))
}

// pullWriter writes the pull form of a feed: JSON, or NDJSON when the
// client prefers it.
type pullWriter struct {
	w       http.ResponseWriter
	r       *http.Request
	rc      *http.ResponseController
	timeout time.Duration
	ndjson  bool
	started bool
	events  int
	buf     []byte
}

func newPullWriter(w http.ResponseWriter, r *http.Request, timeout time.Duration) *pullWriter {
	return &pullWriter{w: w, r: r, rc: http.NewResponseController(w), timeout: timeout}
}

func (p *pullWriter) begin() error {
	p.started = true
	p.ndjson = setListHeaders(p.w.Header(), p.r)
	p.w.Header().Set("Cache-Control", "no-store")
	_ = p.rc.SetWriteDeadline(time.Now().Add(p.timeout))
	p.w.WriteHeader(http.StatusOK)
	if !p.ndjson {
		return p.write([]byte(`{"changes":[`))
	}
	return nil
}

func (p *pullWriter) write(b []byte) error {
	_ = p.rc.SetWriteDeadline(time.Now().Add(p.timeout))
	_, err := p.w.Write(b)
	return err
}

func (p *pullWriter) send(ev feedEvent, _ string) error {
	if !p.started {
		if err := p.begin(); err != nil {
			return err
		}
	}
	b := p.buf[:0]
	if !p.ndjson && p.events > 0 {
		b = append(b, ',')
	}
	p.events++
	b = append(b, `{"event":"`...)
	b = append(b, ev.kind...)
	b = append(b, `","data":`...)
	b = append(b, ev.data...)
	b = append(b, '}')
	if p.ndjson {
		b = append(b, '\n')
	}
	p.buf = b
	return p.write(b)
}

// finish writes the token to continue from, last: a client that did not
// get it, because the answer broke off, asks again from its old token.
func (p *pullWriter) finish(next string) error {
	if !p.started {
		if err := p.begin(); err != nil {
			return nil // the client left; nothing to answer
		}
	}
	var b []byte
	if p.ndjson {
		b = append(append(append(b, `{"next":"`...), next...), "\"}\n"...)
	} else {
		b = append(append(append(b, `],"next":"`...), next...), "\"}\n"...)
	}
	_ = p.write(b)
	return nil
}
