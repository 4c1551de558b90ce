package mongohttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// DefaultMaxTime bounds each query when a handler's MaxTime is 0.
const DefaultMaxTime = 10 * time.Second

// DefaultLookahead is how many bytes of a page Find holds before it starts
// writing, when FindConfig.Lookahead is 0: the most a page holds.
const DefaultLookahead = 1 << 20

// NDJSON is the media type of newline-delimited JSON, which Find writes when
// the request's Accept header asks for it.
const NDJSON = "application/x-ndjson"

// FindConfig configures Find. The zero value serves the collection with the
// zero Policy (filter and sort by _id only), pages of 20, plain JSON.
type FindConfig[T any] struct {
	// Policy says which fields and operators clients may use. Default is the
	// zero Policy: deny everything but _id.
	Policy Policy

	// BaseFilter returns a filter for the request (a tenant, an owner, a
	// parent id from the path) that is ANDed with whatever the client asks,
	// so the client can narrow it but never widen it. An error it returns is
	// answered through ErrorFunc: return an *Error (ErrInvalidObjectID,
	// ErrNotFound…) to choose the status. Default is nil: no base filter.
	BaseFilter func(r *http.Request) (bson.D, error)

	// Transform is called on each document after it is decoded into T and
	// before it is encoded. An error aborts the answer. When the request
	// narrows the fields (?fields=), fields the server did not return are
	// dropped after Transform, so it can change values but not add fields
	// to such answers. Default is nil.
	Transform func(r *http.Request, doc *T) error

	// ErrorFunc answers errors. Default is WriteError after logging: 5xx
	// causes at Error level, the rest at Debug.
	ErrorFunc func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives the handler's logs. Default is slog.Default().
	Logger *slog.Logger

	// MaxTime bounds each request's queries (count included), on top of the
	// request's own context; past it the answer is 504 "timeout" and the
	// driver has the server abandon the operation (maxTimeMS). Default is
	// DefaultMaxTime (10 s).
	MaxTime time.Duration

	// Encoder sets the JSON format. Default (nil) is plain JSON.
	Encoder *Encoder

	// ReadPreference routes this handler's reads (the find and the count),
	// for example readpref.SecondaryPreferred() for list endpoints. Default
	// (nil) is primary: the query is sent as a command, and commands do not
	// inherit the client's or the collection's read preference, so set it
	// here.
	ReadPreference *readpref.ReadPref

	// ReadConcern sets this handler's read concern, for example
	// readconcern.Majority(). Default (nil) is the server's default.
	ReadConcern *readconcern.ReadConcern

	// Lookahead is how many bytes of raw BSON Find may hold before writing a
	// page, so that it can tell whether another page follows and send the
	// Link header first. A page ends before the document that would take it
	// past this (its first document is always served), and links on.
	// Default is DefaultLookahead (1 MiB).
	Lookahead int
}

// FindOneConfig configures FindOne. The zero value serves documents by
// their ObjectID read from r.PathValue("id").
type FindOneConfig[T any] struct {
	// Policy gives the type of _id (Filter["_id"], ObjectID by default), the
	// hidden fields, and the fields ?fields= may name. Default is the zero
	// Policy.
	Policy Policy

	// ID returns the document's id as text from the request. Default is
	// r.PathValue("id"), which suits http.ServeMux patterns such as
	// "GET /users/{id}"; other routers pass their own (chi.URLParam…).
	ID func(r *http.Request) string

	// BaseFilter, Transform, ErrorFunc, Logger, MaxTime, Encoder,
	// ReadPreference and ReadConcern are as in FindConfig. A document that
	// exists but fails BaseFilter is answered 404, like a missing one.
	BaseFilter     func(r *http.Request) (bson.D, error)
	Transform      func(r *http.Request, doc *T) error
	ErrorFunc      func(w http.ResponseWriter, r *http.Request, err error)
	Logger         *slog.Logger
	MaxTime        time.Duration
	Encoder        *Encoder
	ReadPreference *readpref.ReadPref
	ReadConcern    *readconcern.ReadConcern
}

// handlerBase holds what Find and FindOne share.
type handlerBase[T any] struct {
	coll       *mongo.Collection
	parser     *QueryParser
	hidden     []string
	baseFilter func(r *http.Request) (bson.D, error)
	transform  func(r *http.Request, doc *T) error
	errorFunc  func(w http.ResponseWriter, r *http.Request, err error)
	logger     *slog.Logger
	maxTime    time.Duration
	enc        *Encoder
	raw        bool // T is bson.Raw: documents go from the cursor to the encoder untouched

	readConcern *readconcern.ReadConcern // sent with Find's command; nil for the server's default
	runOpts     *options.RunCmdOptionsBuilder
}

func newBase[T any](coll *mongo.Collection, p Policy, rp *readpref.ReadPref, rc *readconcern.ReadConcern,
	baseFilter func(*http.Request) (bson.D, error), transform func(*http.Request, *T) error,
	errorFunc func(http.ResponseWriter, *http.Request, error), logger *slog.Logger, maxTime time.Duration, enc *Encoder,
) *handlerBase[T] {
	if coll == nil {
		panic("mongohttp: nil collection")
	}
	parser, err := NewQueryParser(p)
	if err != nil {
		panic("mongohttp: invalid policy for " + coll.Name() + ": " + err.Error())
	}
	parser.scope = coll.Database().Name() + "." + coll.Name() // after tokens work only here
	// Every query of the handler uses the same read preference and concern:
	// the configured ones, or primary and the server's default. (Commands do
	// not inherit the client's read preference, so neither do the others.)
	if rp == nil {
		rp = readpref.Primary()
	}
	collOpts := options.Collection().SetReadPreference(rp)
	if rc != nil {
		collOpts.SetReadConcern(rc)
	}
	coll = coll.Clone(collOpts)
	if logger == nil {
		logger = slog.Default()
	}
	if maxTime <= 0 {
		maxTime = DefaultMaxTime
	}
	var zero T
	_, raw := any(zero).(bson.Raw)
	b := &handlerBase[T]{
		coll: coll, parser: parser, hidden: parser.Hidden(),
		readConcern: rc, runOpts: options.RunCmd().SetReadPreference(rp),
		baseFilter: baseFilter, transform: transform, errorFunc: errorFunc,
		logger: logger, maxTime: maxTime, enc: enc, raw: raw,
	}
	if b.errorFunc == nil {
		b.errorFunc = b.logAndWrite
	}
	return b
}

// logAndWrite is the default ErrorFunc.
func (b *handlerBase[T]) logAndWrite(w http.ResponseWriter, r *http.Request, err error) {
	e := AsError(err)
	level := slog.LevelDebug
	if e.Status >= 500 {
		level = slog.LevelError
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		level = slog.LevelDebug // the client left; nobody reads the answer
	}
	b.logger.LogAttrs(r.Context(), level, "mongohttp: request failed",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", e.Status), slog.String("code", e.Code), slog.Any("error", err))
	WriteError(w, r, e)
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
// fields are removed from the result, and so, when the request narrowed the
// projection (?fields=), is every field the server did not return: a struct
// field the projection left out would otherwise come out zero-valued.
func (b *handlerBase[T]) document(r *http.Request, raw bson.Raw, v *T, narrowed bool) ([]byte, error) {
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
	if narrowed && !b.raw {
		doc = keepPresent(doc, raw)
	}
	if len(b.hidden) > 0 {
		doc = omitPaths(doc, b.hidden, "")
	}
	return doc, nil
}

// narrows reports whether a projection includes fields (?fields=) rather
// than only excluding hidden ones.
func narrows(projection bson.D) bool {
	for _, e := range projection {
		if e.Key != "_id" {
			switch v := e.Value.(type) {
			case int32:
				return v != 0
			case int64:
				return v != 0
			case int:
				return v != 0
			case bool:
				return v
			}
		}
	}
	return false
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
	h.logger.LogAttrs(r.Context(), level, "mongohttp: response aborted",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	panic(http.ErrAbortHandler)
}

// keepPresent returns doc without the fields that raw, the document the
// server returned, does not have, at every depth where both are documents.
func keepPresent(doc, raw bson.Raw) bson.Raw {
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
			changed = true
			continue
		}
		if sub, ok := v.DocumentOK(); ok {
			if subRaw, ok := have.DocumentOK(); ok {
				if kept := keepPresent(sub, subRaw); len(kept) != len(sub) {
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

// omitPaths returns doc without the fields at the given dotted paths
// (relative to prefix). It walks with the driver's bson.Raw; it runs only
// for typed documents, which already pay for decoding.
func omitPaths(doc bson.Raw, paths []string, prefix string) bson.Raw {
	elems, err := doc.Elements()
	if err != nil {
		return doc
	}
	out := bson.D{}
	changed := false
	for _, e := range elems {
		key := e.Key()
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		v := e.Value()
		if matchesAny(path, paths) {
			changed = true
			continue
		}
		if v.Type == bson.TypeEmbeddedDocument && hasDescendant(path, paths) {
			out = append(out, bson.E{Key: key, Value: omitPaths(v.Document(), paths, path)})
			changed = true
			continue
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

func matchesAny(path string, paths []string) bool {
	for _, p := range paths {
		if p == path {
			return true
		}
	}
	return false
}

func hasDescendant(path string, paths []string) bool {
	for _, p := range paths {
		if strings.HasPrefix(p, path+".") {
			return true
		}
	}
	return false
}
