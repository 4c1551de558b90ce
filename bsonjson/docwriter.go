package bsonjson

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// DocumentWriter streams a sequence of documents to an io.Writer as one
// JSON array (NewArrayWriter) or as NDJSON (NewNDJSONWriter), one document
// at a time, through a bounded buffer: whenever the buffer holds more than
// 32 KiB it is written out, so memory stays flat however many documents
// pass. Nothing reaches the writer before that, or before Flush or Close,
// so a handler that fails before its first documents can still answer with
// an error status.
//
// A document that fails to encode leaves no trace in the output: the
// buffer is truncated back to where the document began and the error is
// returned; the writer stays usable. An error from the underlying writer
// is sticky: every later call returns it.
//
// Create one with Encoder.NewArrayWriter or Encoder.NewNDJSONWriter. A
// DocumentWriter is not safe for concurrent use. Close it when done, to
// finish the output and return its buffer to a pool; a writer abandoned
// without Close (say, to answer an error instead) is simply collected.
type DocumentWriter struct {
	enc    Encoder
	w      io.Writer
	bufp   *[]byte // pooled buffer; nil after Close
	buf    []byte
	ndjson bool
	n      int
	peak   int // largest len(buf) seen, for tests of the bound
	closed bool
	err    error
}

var streamBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, streamFlushThreshold+8<<10)
	return &b
}}

// NewArrayWriter returns a DocumentWriter that writes the documents as
// one JSON array: "[", the documents separated by ",", and "]" on Close
// ("[]" when there were none).
func (e *Encoder) NewArrayWriter(w io.Writer) *DocumentWriter {
	return e.newDocumentWriter(w, false)
}

// NewNDJSONWriter returns a DocumentWriter that writes newline-delimited
// JSON (application/x-ndjson): each document on its own line, ended by
// "\n". Nothing is written for an empty sequence.
func (e *Encoder) NewNDJSONWriter(w io.Writer) *DocumentWriter {
	return e.newDocumentWriter(w, true)
}

func (e *Encoder) newDocumentWriter(w io.Writer, ndjson bool) *DocumentWriter {
	dw := &DocumentWriter{w: w, ndjson: ndjson}
	if e != nil {
		dw.enc = *e
	}
	dw.bufp = streamBufPool.Get().(*[]byte)
	dw.buf = (*dw.bufp)[:0]
	return dw
}

// WriteDocument writes one raw BSON document (bson.Raw, cursor.Current).
// The bytes are not retained, so cursor.Current may be passed as it is.
func (dw *DocumentWriter) WriteDocument(doc []byte) error {
	return dw.write(doc, nil, true)
}

// WriteValue writes one typed value, encoded as Encoder.AppendValue does.
func (dw *DocumentWriter) WriteValue(v any) error {
	return dw.write(nil, v, false)
}

func (dw *DocumentWriter) write(doc []byte, v any, raw bool) error {
	if dw.closed {
		return ErrWriterClosed
	}
	if dw.err != nil {
		return dw.err
	}
	mark := len(dw.buf)
	switch {
	case dw.ndjson:
	case dw.n == 0:
		dw.buf = append(dw.buf, '[')
	default:
		dw.buf = append(dw.buf, ',')
	}
	var err error
	if raw {
		dw.buf, err = dw.enc.AppendDocument(dw.buf, doc)
	} else {
		dw.buf, err = dw.enc.AppendValue(dw.buf, v)
	}
	if err != nil {
		dw.buf = dw.buf[:mark]
		return err
	}
	if dw.ndjson {
		dw.buf = append(dw.buf, '\n')
	}
	dw.n++
	if len(dw.buf) > dw.peak {
		dw.peak = len(dw.buf)
	}
	if len(dw.buf) > streamFlushThreshold {
		return dw.writeOut()
	}
	return nil
}

// writeOut writes the buffer to w and empties it.
func (dw *DocumentWriter) writeOut() error {
	if len(dw.buf) == 0 || dw.err != nil {
		return dw.err
	}
	_, err := dw.w.Write(dw.buf)
	dw.buf = dw.buf[:0]
	if err != nil {
		dw.err = err
	}
	return err
}

// Count returns the number of documents written so far.
func (dw *DocumentWriter) Count() int { return dw.n }

// Flush writes the buffered bytes to the underlying writer and then
// flushes it if it can be flushed (an http.ResponseWriter, through
// http.ResponseController, or a writer with a FlushError() error or
// Flush() method), so that an HTTP client receives the documents now.
// Writing out past the threshold does not flush: it leaves the batching of
// network writes to net/http.
func (dw *DocumentWriter) Flush() error {
	if dw.closed {
		return ErrWriterClosed
	}
	return dw.flush()
}

func (dw *DocumentWriter) flush() error {
	if err := dw.writeOut(); err != nil {
		return err
	}
	if err := flushWriter(dw.w); err != nil {
		dw.err = err
		return err
	}
	return nil
}

// flushWriter flushes w if it can be flushed. An http.ResponseWriter goes
// through http.ResponseController, which finds the flusher behind
// middleware wrappers that implement Unwrap.
func flushWriter(w io.Writer) error {
	switch f := w.(type) {
	case http.ResponseWriter:
		err := http.NewResponseController(f).Flush()
		if errors.Is(err, http.ErrNotSupported) {
			return nil
		}
		return err
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
	}
	return nil
}

// Close ends the output (the closing "]" of an array), flushes it, and
// returns the buffer to its pool. It does not close the underlying writer.
// Close is idempotent: later calls return the first call's result.
func (dw *DocumentWriter) Close() error {
	if dw.closed {
		return dw.err
	}
	dw.closed = true
	if dw.err == nil && !dw.ndjson {
		if dw.n == 0 {
			dw.buf = append(dw.buf, '[', ']')
		} else {
			dw.buf = append(dw.buf, ']')
		}
	}
	err := dw.flush()
	if dw.bufp != nil && cap(dw.buf) <= maxPooledBuffer {
		*dw.bufp = dw.buf[:0]
		streamBufPool.Put(dw.bufp)
	}
	dw.bufp, dw.buf = nil, nil
	return err
}
