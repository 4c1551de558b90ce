package mongohttp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/mongohttp/mongohttp/bsonjson"
	"github.com/mongohttp/mongohttp/internal/rawbson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
)

// DefaultMaxTime bounds each query when a handler's MaxTime is 0.
const DefaultMaxTime = 10 * time.Second

// DefaultLookahead is how many bytes of a page Find holds before it starts
// writing, when Collection.Lookahead is 0: the most a page holds.
const DefaultLookahead = 1 << 20

// NDJSON is the media type of newline-delimited JSON, which Find writes when
// the request's Accept header asks for it.
const NDJSON = "application/x-ndjson"

// handlerBase is what the handlers of one policy of a Resource share.
type handlerBase[T any] struct {
	coll        *mongo.Collection
	clientLimit *limiter // the client's admission bound, shared by all its handlers
	parser      *QueryParser
	hidden      []string
	baseFilter  func(r *http.Request) (bson.D, error)
	transform   func(r *http.Request, doc *T) error
	errorFunc   func(w http.ResponseWriter, r *http.Request, err error)
	logger      *slog.Logger
	maxTime     time.Duration
	enc         *bsonjson.Encoder
	raw         bool     // T is bson.Raw: documents go from the cursor to the encoder untouched
	zeroDoc     bson.Raw // the zero T marshalled, to tell decoded zero values from set ones
	omitEmpty   omitTree // T's omitempty fields, at every depth, whose empty values keepEmpty puts back
	version     string   // the field holding a document's version

	readConcern *readconcern.ReadConcern // sent with Find's command; nil for the server's default
	runOpts     *options.RunCmdOptionsBuilder

	observed bool                         // requests carry an observation (see observe.go)
	route    func(r *http.Request) string // for log lines
}

// server is a handler's own answer, which returns an error only while
// nothing has been written.
type server interface {
	serve(w http.ResponseWriter, r *http.Request) error
}

// admitted answers r with s once the request has a place in the handler's
// limiter and its client's (see Admission); refusals and s's errors are
// answered through errorFunc. s is the handler itself, so that passing it
// costs no allocation.
func (b *handlerBase[T]) admitted(w http.ResponseWriter, r *http.Request, limit *limiter, s server) {
	if err := admit(r.Context(), limit, b.clientLimit); err != nil {
		b.errorFunc(w, r, err)
		return
	}
	defer leave(limit, b.clientLimit)
	b.obs(r).admitted()
	if err := s.serve(w, r); err != nil {
		b.errorFunc(w, r, err)
	}
}

// logError logs a failed request, in one line: 5xx causes at Error level,
// the rest, and requests whose client left, at Debug; bodies that stopped
// arriving at Warn (with their cause, and how far a bulk insert got). id is
// the request's id, as the answer carries it. The line never holds the
// query string, and holds the error only for 5xx answers and bodies that
// stopped: the detail of a 4xx quotes the client's input, which may be
// personal data.
func logError(logger *slog.Logger, r *http.Request, err error, route, id string) {
	e := AsError(err)
	level := slog.LevelDebug
	if e.Status >= 500 {
		level = slog.LevelError
	}
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		level = slog.LevelDebug // the client left; nobody reads the answer
	case errors.Is(e, ErrOverloaded):
		level = slog.LevelDebug // expected under a burst, and counted in AdmissionStats
	case errors.Is(e, ErrBodyTimeout):
		// The request's context is done by then (net/http cancels it when
		// a read fails), but this is no client that left: an operator
		// tunes BodyIdleTimeout from it.
		level = slog.LevelWarn
	}
	if !logger.Enabled(r.Context(), level) {
		return
	}
	_, traceParent := requestIdentity(r)
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs, slog.String("request_id", id), slog.String("method", r.Method),
		slog.String("route", route), slog.String("path", r.URL.Path),
		slog.Int("status", e.Status), slog.String("code", e.Code))
	if t := traceID(traceParent); t != "" {
		attrs = append(attrs, slog.String("trace_id", t))
	}
	if e.Status >= 500 || level == slog.LevelWarn {
		attrs = append(attrs, slog.Any("error", err))
	}
	for _, k := range [...]string{"inserted", "line"} { // a bulk insert's progress
		if v, ok := e.Extensions[k]; ok {
			attrs = append(attrs, slog.Any(k, v))
		}
	}
	logger.LogAttrs(r.Context(), level, "mongohttp: request failed", attrs...)
}

// setRequestID puts the request's id in the answer's RequestIDHeader, so
// that every answer, a success or not, can be matched with its log line
// and report, and returns it. An id the answer already carries (set by the
// application, or earlier in the request) is kept; otherwise it is the
// request's observation's, or its RequestIDHeader when plausible, or a
// new one.
func setRequestID(w http.ResponseWriter, r *http.Request) string {
	h := w.Header()
	if v := h[RequestIDHeader]; len(v) > 0 && v[0] != "" {
		return v[0]
	}
	var id string
	if o := observationFrom(r.Context()); o != nil {
		id = o.rep.RequestID
	} else {
		id = requestID(r)
	}
	h[RequestIDHeader] = []string{id}
	return id
}

// requestIdentity returns the request's id and traceparent: its
// observation's when it has one, else from its headers.
func requestIdentity(r *http.Request) (id, traceParent string) {
	if o := observationFrom(r.Context()); o != nil {
		return o.rep.RequestID, o.rep.TraceParent
	}
	traceParent, _ = parseTraceParent(r.Header.Get("Traceparent"))
	return requestID(r), traceParent
}

// base returns the request's base filter; nil when there is none.
func (b *handlerBase[T]) base(r *http.Request) (bson.D, error) {
	if b.baseFilter == nil {
		return nil, nil
	}
	return b.baseFilter(r)
}

// and combines the base filter with the client's. It uses $and, not a
// merged document, so the client's conditions can only narrow the base,
// even on the same field.
func and(base, client bson.D) bson.D {
	switch {
	case len(base) == 0 && client == nil:
		return bson.D{}
	case len(base) == 0:
		return client
	case len(client) == 0:
		return base
	}
	return bson.D{{Key: "$and", Value: bson.A{base, client}}}
}

// document turns one raw document into the BSON to encode: as is for
// bson.Raw, else decoded into T, transformed, and marshalled back. Hidden
// fields are removed from the result, and so are the fields the stored
// document does not have (it is sparse, or ?fields= narrowed it) and to
// which Transform gave no value: a struct would otherwise write them as
// zero values, and a typed handler would not serve what a bson.Raw one does.
func (b *handlerBase[T]) document(r *http.Request, raw bson.Raw, v *T) ([]byte, error) {
	if b.raw && b.transform == nil {
		return raw, nil
	}
	var zero T
	*v = zero
	if b.raw {
		*v = any(raw).(T)
	} else if err := bson.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("decoding into %T: %w", zero, err)
	}
	if b.transform != nil {
		if err := b.transform(r, v); err != nil {
			return nil, err
		}
	}
	doc, err := bson.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", zero, err)
	}
	if !b.raw {
		doc = keepEmpty(keepPresent(doc, raw, b.zeroDoc), raw, b.omitEmpty)
	}
	if len(b.hidden) > 0 {
		doc = rawbson.OmitPaths(doc, b.hidden)
	}
	return doc, nil
}

// render encodes one document as the handlers of one document answer it,
// newline included, and returns it with its strong ETag. The ETag is a hash
// of the answer, so every representation (a projection, a policy, a
// Transform) has its own; when the stored document carries a version (see
// Collection.VersionField) the ETag starts with it, so that writes can check
// If-Match against the stored version in the same server operation.
func (b *handlerBase[T]) render(r *http.Request, raw bson.Raw) (body []byte, etag string, err error) {
	return b.renderEmbedded(r, raw, nil)
}

// renderEmbedded is render with the related documents of embeds added.
func (b *handlerBase[T]) renderEmbedded(r *http.Request, raw bson.Raw, embeds *embedding) (body []byte, etag string, err error) {
	var v T
	doc, err := b.document(r, raw, &v)
	if err != nil {
		return nil, "", err
	}
	if b.raw && b.transform == nil && len(b.hidden) > 0 {
		// document passes raw through; the read fetched the version for
		// the ETag, and a write's document holds every field.
		doc = rawbson.OmitPaths(doc, b.hidden)
	}
	if embeds != nil {
		doc = embeds.apply(doc, raw)
	}
	body, err = b.enc.AppendDocument(make([]byte, 0, len(doc)+len(doc)/2+16), doc)
	if err != nil {
		return nil, "", err
	}
	body = append(body, '\n')
	return body, etagOf(body, raw, b.version), nil
}

// etagOf is the ETag of an answer's body: "<version>.<hash>" when the
// document has a version field, else "<hash>", the hash being the first
// 18 bytes of the body's SHA-256 in unpadded base64url. Made in one
// allocation.
func etagOf(body []byte, raw bson.Raw, versionField string) string {
	sum := sha256.Sum256(body)
	var b [1 + 24 + 1 + 24 + 1]byte
	tag := append(b[:0], '"')
	if version, ok := raw.Lookup(versionField).ObjectIDOK(); ok {
		tag = hex.AppendEncode(tag, version[:])
		tag = append(tag, '.')
	}
	tag = base64.RawURLEncoding.AppendEncode(tag, sum[:18])
	return string(append(tag, '"'))
}

// retryRead runs a read and, if it failed in a way a retry can mend (a
// network error, a connection from a pool the driver has since cleared, a
// server shutting down or electing a primary), runs it once more while ctx
// allows. The driver's retryable reads do this for its own helpers but not
// for commands, which Find and FindOne send so the server gets maxTimeMS.
// Nothing has been written to the client when it runs, so a retry is safe.
func retryRead(ctx context.Context, read func() error) error {
	err := read()
	// A read that ran out of time is not retried: the socket's deadline
	// can fire a moment before ctx reports it, as a network timeout.
	if err == nil || ctx.Err() != nil || mongo.IsTimeout(err) {
		return err
	}
	if mongo.IsNetworkError(err) || serverUnavailable(err) || isPoolCleared(err) {
		return read()
	}
	return err
}

// cursorCloseTimeout bounds the background killing of a cursor that a
// request left open. It is generous because the kill queues for a pool
// connection like any operation, and an exhausted pool can make it wait.
const cursorCloseTimeout = 30 * time.Second

// closeInBackground closes a cursor left open by a request that failed,
// was aborted, or streamed. Killing the server cursor takes a round trip
// that must not hold the response (the request's context may be over: the
// client left, or the time limit passed), so it runs in a goroutine under a
// bounded context of its own. A cursor already exhausted closes at once.
func closeInBackground(ctx context.Context, cur *mongo.Cursor) {
	if cur.ID() == 0 {
		_ = cur.Close(ctx)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cursorCloseTimeout)
		defer cancel()
		_ = cur.Close(ctx)
	}()
}

// abort ends a response whose headers are already out: it logs why and
// panics with http.ErrAbortHandler, which net/http answers by dropping the
// connection without logging a stack trace. The client then sees a
// truncated body, not a well-formed one that silently misses documents.
func (h *handlerBase[T]) abort(r *http.Request, err error) {
	level := slog.LevelError
	if r.Context().Err() != nil {
		level = slog.LevelDebug // the client left or the time limit passed
	}
	h.obs(r).aborted(err)
	id, traceParent := requestIdentity(r)
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs, slog.String("request_id", id), slog.String("method", r.Method),
		slog.String("route", h.route(r)), slog.String("path", r.URL.Path))
	if t := traceID(traceParent); t != "" {
		attrs = append(attrs, slog.String("trace_id", t))
	}
	attrs = append(attrs, slog.Any("error", err))
	h.logger.LogAttrs(r.Context(), level, "mongohttp: response aborted", attrs...)
	panic(http.ErrAbortHandler)
}

// keepPresent returns doc without the fields that raw, the document the
// server returned, does not have, at every depth where both are documents,
// unless the field's value differs from its value in zero, the marshalled
// zero T: that value was set by Transform, not decoded.
func keepPresent(doc, raw, zero bson.Raw) bson.Raw {
	elems, err := doc.Elements()
	if err != nil {
		return doc
	}
	out := make(bson.D, 0, len(elems))
	changed := false
	for _, e := range elems {
		key, v := e.Key(), e.Value()
		have, err := raw.LookupErr(key)
		if err != nil {
			if z, err := zero.LookupErr(key); err == nil && z.Equal(v) {
				changed = true
				continue
			}
			out = append(out, bson.E{Key: key, Value: v})
			continue
		}
		if sub, ok := v.DocumentOK(); ok {
			if subRaw, ok := have.DocumentOK(); ok {
				subZero, _ := zero.Lookup(key).DocumentOK()
				if kept := keepPresent(sub, subRaw, subZero); len(kept) != len(sub) {
					out = append(out, bson.E{Key: key, Value: kept})
					changed = true
					continue
				}
			}
		}
		out = append(out, bson.E{Key: key, Value: v})
	}
	if !changed {
		return doc
	}
	b, err := bson.Marshal(out)
	if err != nil {
		return doc
	}
	return b
}
