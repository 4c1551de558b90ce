package mongohttp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
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
// writing, when FindConfig.Lookahead is 0.
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
	// Link header first. A page larger than this is streamed as it comes,
	// without a next link. Default is DefaultLookahead (1 MiB).
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

// Find returns a handler that answers GET and HEAD with the documents of
// coll that match the request's query, as a JSON array streamed document by
// document (NDJSON when the Accept header asks for application/x-ndjson).
//
// T is the document type: bson.Raw streams raw BSON straight to the encoder;
// a struct type decodes each document and encodes it with the same JSON. The
// query language and its errors are those of cfg.Policy (see Policy and
// QueryParser). A page that has a next one carries a Link header with
// rel="next"; ?count=exact adds X-Total-Count, the number of documents
// matching the filter (the same on every page), and ?count=estimated the
// collection's estimated size from metadata, whatever the filter.
//
// Find panics if coll is nil or the policy is invalid, as http.Handle does
// for a bad pattern: both are programming errors found at start-up.
func Find[T any](coll *mongo.Collection, cfg FindConfig[T]) http.Handler {
	b := newBase(coll, cfg.Policy, cfg.ReadPreference, cfg.ReadConcern, cfg.BaseFilter, cfg.Transform,
		cfg.ErrorFunc, cfg.Logger, cfg.MaxTime, cfg.Encoder)
	lookahead := cfg.Lookahead
	if lookahead <= 0 {
		lookahead = DefaultLookahead
	}
	return &findHandler[T]{handlerBase: b, lookahead: lookahead}
}

type findHandler[T any] struct {
	*handlerBase[T]
	lookahead int
}

func (h *findHandler[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowGetHead(w, r) {
		return
	}
	if err := h.serve(w, r); err != nil {
		h.errorFunc(w, r, err)
	}
}

// serve answers one request. It returns an error only while nothing has been
// written; after the headers are out, a failure aborts the response (see
// abort) so the client sees a broken stream rather than a short, valid one.
func (h *findHandler[T]) serve(w http.ResponseWriter, r *http.Request) error {
	q, err := h.parser.Parse(r.URL.RawQuery)
	if err != nil {
		return err
	}
	base, err := h.base(r)
	if err != nil {
		return err
	}
	filter := and(base, q.Filter)
	ctx, cancel := context.WithTimeout(r.Context(), h.maxTime)
	defer cancel()

	var total int64 = -1
	switch q.Count {
	case CountExact:
		if total, err = h.coll.CountDocuments(ctx, and(base, q.CountFilter)); err != nil {
			return err
		}
	case CountEstimated:
		if total, err = h.coll.EstimatedDocumentCount(ctx); err != nil {
			return err
		}
	}

	// The find is sent as a command so that the server gets the time limit
	// too (maxTimeMS, from ctx's deadline) and abandons the work when it
	// passes; the driver's Find leaves maxTimeMS out. One document more than
	// the page tells whether a next page exists. A first batch one larger
	// than that lets every server see the result is complete and close the
	// cursor, saving a killCursors round trip. Batches stay small so a large
	// page streams with bounded memory.
	batch := int32(min(q.Limit+2, 1000))
	cmd := make(bson.D, 0, 9)
	cmd = append(cmd, bson.E{Key: "find", Value: h.coll.Name()}, bson.E{Key: "filter", Value: filter})
	if len(q.Sort) > 0 {
		cmd = append(cmd, bson.E{Key: "sort", Value: q.Sort})
	}
	if len(q.Projection) > 0 {
		cmd = append(cmd, bson.E{Key: "projection", Value: q.Projection})
	}
	if q.Skip > 0 {
		cmd = append(cmd, bson.E{Key: "skip", Value: q.Skip})
	}
	cmd = append(cmd, bson.E{Key: "limit", Value: q.Limit + 1}, bson.E{Key: "batchSize", Value: batch})
	if h.readConcern != nil {
		cmd = append(cmd, bson.E{Key: "readConcern", Value: bson.D{{Key: "level", Value: h.readConcern.Level}}})
	}
	var cur *mongo.Cursor
	err = retryRead(ctx, func() (err error) {
		cur, err = h.coll.Database().RunCommandCursor(ctx, cmd, h.runOpts)
		return err
	})
	if err != nil {
		return err
	}
	cur.SetBatchSize(batch) // for the getMores, which do not inherit it
	closed := false
	defer func() {
		if !closed {
			closeInBackground(r.Context(), cur)
		}
	}()

	// Look ahead: hold up to limit+1 raw documents (bounded by lookahead
	// bytes) so the Link header can be decided before the body starts.
	page := getPageBuffer()
	defer putPageBuffer(page)
	streaming := false
	for page.len() <= int(q.Limit) && cur.Next(ctx) {
		page.add(cur.Current)
		if page.size() > h.lookahead && page.len() <= int(q.Limit) {
			streaming = true
			break
		}
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if !streaming {
		// The page is in hand: release the server cursor now rather than
		// after the body is written.
		closed = true
		closeInBackground(r.Context(), cur)
	}

	hdr := w.Header()
	ndjson := acceptsNDJSON(r)
	if ndjson {
		hdr.Set("Content-Type", NDJSON)
	} else {
		hdr.Set("Content-Type", "application/json")
	}
	hdr.Add("Vary", "Accept")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if total >= 0 {
		hdr.Set("X-Total-Count", strconv.FormatInt(total, 10))
	}
	n := page.len()
	if !streaming && n > int(q.Limit) {
		n = int(q.Limit)
		// A page whose last sort key cannot make a token (an array value,
		// a key too long) is still served, without a next link.
		if token, err := h.parser.NextToken(q, page.doc(n-1)); err == nil {
			hdr.Set("Link", "<"+nextURL(r, token)+`>; rel="next"`)
		} else {
			h.logger.LogAttrs(r.Context(), slog.LevelWarn, "mongohttp: no next link for this page",
				slog.String("path", r.URL.Path), slog.Any("error", err))
		}
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}

	var dw *DocumentWriter
	if ndjson {
		dw = h.enc.NewNDJSONWriter(w)
	} else {
		dw = h.enc.NewArrayWriter(w)
	}
	var v T
	narrowed := narrows(q.Projection)
	write := func(raw bson.Raw) error {
		doc, err := h.document(r, raw, &v, narrowed)
		if err != nil {
			return err
		}
		return dw.WriteDocument(doc)
	}
	// The first document is encoded before the status is sent, so that a
	// document that cannot be encoded still gets a proper error answer.
	for i := range n {
		if err := write(page.doc(i)); err != nil {
			if i == 0 {
				// Nothing has reached w yet (the writer buffers), so the
				// client still gets a problem answer. The writer is dropped,
				// not closed, since Close would write the brackets.
				hdr.Del("Link")
				return err
			}
			h.abort(r, err)
		}
	}
	if streaming {
		for dw.Count() < int(q.Limit) && cur.Next(ctx) {
			if err := write(cur.Current); err != nil {
				h.abort(r, err)
			}
		}
		if err := cur.Err(); err != nil {
			h.abort(r, err)
		}
	}
	if err := dw.Close(); err != nil {
		h.abort(r, err)
	}
	return nil
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

// pageBuffer holds the raw documents of a page back to back, so the look
// ahead costs one growing slice rather than one allocation per document.
type pageBuffer struct {
	buf  []byte
	offs []int
}

func (p *pageBuffer) add(doc []byte) {
	p.offs = append(p.offs, len(p.buf))
	p.buf = append(p.buf, doc...)
}

func (p *pageBuffer) len() int  { return len(p.offs) }
func (p *pageBuffer) size() int { return len(p.buf) }

func (p *pageBuffer) doc(i int) bson.Raw {
	end := len(p.buf)
	if i+1 < len(p.offs) {
		end = p.offs[i+1]
	}
	return p.buf[p.offs[i]:end]
}

var pagePool = sync.Pool{New: func() any { return new(pageBuffer) }}

func getPageBuffer() *pageBuffer { return pagePool.Get().(*pageBuffer) }

// putPageBuffer recycles p unless a large page made it big, so one export
// does not pin megabytes in the pool.
func putPageBuffer(p *pageBuffer) {
	if cap(p.buf) > 4*DefaultLookahead {
		return
	}
	p.buf, p.offs = p.buf[:0], p.offs[:0]
	pagePool.Put(p)
}

// acceptsNDJSON reports whether the client asked for NDJSON.
func acceptsNDJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), NDJSON) {
				return true
			}
		}
	}
	return false
}

// nextURL is the request's own path and query with after set to token and
// skip dropped. It is a relative reference (RFC 8288 allows one), built
// from the path the client sent, so it stays right behind StripPrefix and
// proxies that rewrite Host.
func nextURL(r *http.Request, token string) string {
	path := r.URL.EscapedPath()
	if r.RequestURI != "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			path = u.EscapedPath()
		}
	}
	var b strings.Builder
	b.WriteString(path)
	b.WriteByte('?')
	for part := range strings.SplitSeq(r.URL.RawQuery, "&") {
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k // %61fter is after too
		}
		if part == "" || key == "after" || key == "skip" {
			continue
		}
		b.WriteString(part)
		b.WriteByte('&')
	}
	b.WriteString("after=")
	b.WriteString(token)
	return b.String()
}

// FindOne returns a handler that answers GET and HEAD with the document of
// coll whose _id is the request's id: 400 invalid_object_id for a malformed
// id, 404 not_found when there is no such document. Answers carry a strong
// ETag, and If-None-Match gets 304. The only query parameter accepted is
// ?fields= (when the policy allows projection), plus the policy's
// ExtraParameters.
//
// FindOne panics if coll is nil or the policy is invalid.
func FindOne[T any](coll *mongo.Collection, cfg FindOneConfig[T]) http.Handler {
	b := newBase(coll, cfg.Policy, cfg.ReadPreference, cfg.ReadConcern, cfg.BaseFilter, cfg.Transform,
		cfg.ErrorFunc, cfg.Logger, cfg.MaxTime, cfg.Encoder)
	id := cfg.ID
	if id == nil {
		id = func(r *http.Request) string { return r.PathValue("id") }
	}
	return &findOneHandler[T]{handlerBase: b, id: id}
}

type findOneHandler[T any] struct {
	*handlerBase[T]
	id func(r *http.Request) string
}

func (h *findOneHandler[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowGetHead(w, r) {
		return
	}
	if err := h.serve(w, r); err != nil {
		h.errorFunc(w, r, err)
	}
}

func (h *findOneHandler[T]) serve(w http.ResponseWriter, r *http.Request) error {
	projection, err := h.parser.ParseProjection(r.URL.RawQuery)
	if err != nil {
		return err
	}
	id, err := h.parser.ParseID(h.id(r))
	if err != nil {
		return err
	}
	base, err := h.base(r)
	if err != nil {
		return err
	}
	filter := and(base, bson.D{{Key: "_id", Value: id}})
	ctx, cancel := context.WithTimeout(r.Context(), h.maxTime)
	defer cancel()
	raw, err := h.findOne(ctx, filter, projection)
	if err != nil {
		return err
	}
	var v T
	doc, err := h.document(r, raw, &v, narrows(projection))
	if err != nil {
		return err
	}
	body, err := h.enc.AppendDocument(make([]byte, 0, len(doc)+len(doc)/2+16), doc)
	if err != nil {
		return err
	}
	body = append(body, '\n')

	sum := sha256.Sum256(body)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	hdr := w.Header()
	hdr.Set("ETag", etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// findOne sends one find command with singleBatch, so that no cursor is
// left open on any server, and returns the document of its first batch.
// It reads the reply in place rather than through the driver's cursor.
func (h *findOneHandler[T]) findOne(ctx context.Context, filter, projection bson.D) (bson.Raw, error) {
	cmd := make(bson.D, 0, 6)
	cmd = append(cmd, bson.E{Key: "find", Value: h.coll.Name()}, bson.E{Key: "filter", Value: filter})
	if len(projection) > 0 {
		cmd = append(cmd, bson.E{Key: "projection", Value: projection})
	}
	cmd = append(cmd, bson.E{Key: "limit", Value: 1}, bson.E{Key: "singleBatch", Value: true})
	if h.readConcern != nil {
		cmd = append(cmd, bson.E{Key: "readConcern", Value: bson.D{{Key: "level", Value: h.readConcern.Level}}})
	}
	var reply bson.Raw
	err := retryRead(ctx, func() (err error) {
		reply, err = h.coll.Database().RunCommand(ctx, cmd, h.runOpts).Raw()
		return err
	})
	if err != nil {
		return nil, err
	}
	batch, err := reply.LookupErr("cursor", "firstBatch")
	if err != nil {
		return nil, fmt.Errorf("find reply without cursor.firstBatch: %w", err)
	}
	arr, ok := batch.ArrayOK()
	if !ok {
		return nil, errors.New("find reply: cursor.firstBatch is not an array")
	}
	first, err := arr.IndexErr(0)
	if err != nil {
		return nil, ErrNotFound.Detailf("no document has this id")
	}
	doc, ok := first.DocumentOK()
	if !ok {
		return nil, errors.New("find reply: a batch element is not a document")
	}
	return doc, nil
}

// ParseObjectID parses s as an ObjectID (24 hex digits, either case) and
// returns an error matching ErrInvalidObjectID when it is not one: for
// BaseFilter hooks that read a parent id from the path.
func ParseObjectID(s string) (bson.ObjectID, error) {
	id, err := bson.ObjectIDFromHex(s)
	if err != nil {
		return bson.ObjectID{}, ErrInvalidObjectID.Detailf("an id must be 24 hexadecimal digits")
	}
	return id, nil
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110 13.1.2).
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
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
