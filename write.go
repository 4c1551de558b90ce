package mongohttp

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mongohttp/mongohttp/internal/rawbson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// WriteOp says which write a Prepare hook runs for.
type WriteOp int

// The writes.
const (
	// OpInsert creates a document: POST, or PUT of an id that does not exist.
	OpInsert WriteOp = iota + 1
	// OpReplace replaces the writable fields of a document: PUT.
	OpReplace
	// OpPatch changes some fields of a document: PATCH.
	OpPatch
)

func (op WriteOp) String() string {
	switch op {
	case OpInsert:
		return "insert"
	case OpReplace:
		return "replace"
	case OpPatch:
		return "patch"
	}
	return "WriteOp(" + strconv.Itoa(int(op)) + ")"
}

// Media types the write handlers take.
const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json"
)

// DefaultMaxBodyBytes bounds a request body (one line of an NDJSON bulk
// insert) when Collection.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// DefaultBodyIdleTimeout bounds the wait for the next bytes of a body when
// Collection.BodyIdleTimeout is 0.
const DefaultBodyIdleTimeout = 10 * time.Second

// DefaultVersionField is the field holding a document's version when
// Collection.VersionField is "".
const DefaultVersionField = "_etag"

// maxWriteAttempts bounds the read-merge-write rounds of a PUT or PATCH
// without If-Match that lose a race with another writer. Each round
// merges the body into the version it read, so writes of distinct fields
// all land. With the short pauses between rounds (see pause) a writer that
// lost comes back about as soon as one that just won starts its next
// write, so none starves; a request gives up after 50 lost rounds (about
// a second of pauses), or at its MaxTime.
const maxWriteAttempts = 50

// writer is a write handler of one policy.
type writer[T any] struct {
	*handlerBase[T]
	w      *writeSettings[T]
	id     func(r *http.Request) string
	limit  *limiter
	method string
	serve  func(h *writer[T], w http.ResponseWriter, r *http.Request) error
}

// writeSettings are the write-side settings of a Resource.
type writeSettings[T any] struct {
	wcoll        *mongo.Collection // with the write concern
	validate     func(r *http.Request, doc *T) error
	prepare      func(r *http.Request, op WriteOp, doc *T) error
	requireMatch bool
	maxBody      int64
	bodyIdle     time.Duration // <0: the server's read deadlines apply
	location     func(r *http.Request, id any) string
	known        map[string]bool // the keys T's marshalling writes; nil: every key
	unique       *uniqueIndexes  // for the fields of a duplicate key
	idem         *idempotency
	claims       *claims
	tombs        *tombstones // nil: deletes leave none
}

func (h *writer[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	if r.Method != h.method {
		methodNotAllowed(w, r, h.method)
		return
	}
	if err := admit(r.Context(), h.limit, h.clientLimit); err != nil {
		h.errorFunc(w, r, err)
		return
	}
	defer leave(h.limit, h.clientLimit)
	h.obs(r).admitted()
	if err := h.serve(h, w, r); err != nil {
		// A refusal before the body was read (a bad id, a failed
		// precondition) must reach a client that sends the whole body
		// before it reads; an answer after the body was read finds it at
		// its end. One that stopped arriving is not waited for again.
		if !errors.Is(err, ErrBodyTimeout) && !errors.Is(err, ErrBodyTooLarge) {
			dropRest(w, r, h.body(w, r), false)
		}
		h.errorFunc(w, r, err)
	}
}

// mediaType returns the request's media type, lower case, without
// parameters; "" when it has a charset other than UTF-8, the only
// encoding of JSON (RFC 8259 §8.1): its bytes would be read as something
// other than what was sent.
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	switch ct { // the usual spellings, without the parser's map of parameters
	case mediaJSON, NDJSON, mediaMergePatch:
		return ct
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return ""
	}
	return mt
}

// errMediaType is the 415 answer to a body that is not one of want.
func errMediaType(r *http.Request, want string) error {
	if _, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil {
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return ErrUnsupportedMediaType.Detailf("charset %s is not taken: send %s in UTF-8", clip(cs), want)
		}
	}
	return ErrUnsupportedMediaType.Detailf("send %s", want)
}

// readBody reads the whole body, bounded by the handler's limit.
func (h *writer[T]) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := h.body(w, r)
	tooLarge := func(started bool) error {
		// MaxBytesReader tells the server to close the connection through
		// the ResponseWriter, which an observer's wrapper hides; the header
		// says it whatever wraps w.
		w.Header().Set("Connection", "close")
		dropRest(w, r, body, started)
		return ErrBodyTooLarge.Detailf("the body is larger than %d bytes", h.w.maxBody)
	}
	if r.ContentLength > h.w.maxBody {
		return nil, tooLarge(false)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, body, h.w.maxBody))
	var overflow *http.MaxBytesError
	switch {
	case errors.As(err, &overflow):
		return nil, tooLarge(true)
	case err != nil:
		return nil, h.bodyReadError(err)
	}
	return data, nil
}

// scope returns the request's base filter and the fields it fixes by
// equality, which every document written under it carries.
func (h *writer[T]) scope(r *http.Request) (base, fixed bson.D, err error) {
	if base, err = h.base(r); err != nil {
		return nil, nil, err
	}
	return base, equalities(base, nil), nil
}

// decodeInScope decodes a write body and checks it against the request's
// scope. The body's field errors and its conflicts with the scope are
// answered together, in one 422.
func (h *writer[T]) decodeInScope(r *http.Request, data []byte, patch bool) (body, base, fixed bson.D, err error) {
	body, derr := h.parser.write.decodeBody(data, patch)
	var fields *ValidationError
	if derr != nil && !errors.As(derr, &fields) {
		return nil, nil, nil, derr // not a JSON object: nothing to add
	}
	if base, fixed, err = h.scope(r); err != nil {
		return nil, nil, nil, err
	}
	return body, base, fixed, checkScope(body, fields, fixed)
}

// checkScope adds to a body's field errors (fields, nil when it has none)
// its conflicts with the fields the scope fixes, and drops the "required"
// errors of fields the scope sets.
func checkScope(body bson.D, fields *ValidationError, fixed bson.D) error {
	var errs []FieldError
	if fields != nil {
		for _, f := range fields.Fields {
			if f.Code != "required" || !slices.ContainsFunc(fixed, func(e bson.E) bool { return f.Pointer == leafPointer(e.Key, "") }) {
				errs = append(errs, f)
			}
		}
	}
	errs = append(errs, conflictsWithScope(body, fixed)...)
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

// equalities collects the fields f fixes to one value: {k: v} and
// {k: {$eq: v}} at the top and inside $and.
func equalities(f, out bson.D) bson.D {
	for _, e := range f {
		switch {
		case e.Key == "$and":
			if a, ok := e.Value.(bson.A); ok {
				for _, c := range a {
					if d, ok := c.(bson.D); ok {
						out = equalities(d, out)
					}
				}
			}
		case strings.HasPrefix(e.Key, "$"):
		default:
			if d, ok := e.Value.(bson.D); ok && len(d) > 0 && strings.HasPrefix(d[0].Key, "$") {
				if len(d) == 1 && d[0].Key == "$eq" {
					out = append(out, bson.E{Key: e.Key, Value: d[0].Value})
				}
				continue
			}
			out = append(out, e)
		}
	}
	return out
}

// finalize turns the merged document m into the document to store: it is
// decoded into T, checked by Validate, changed by Prepare, and encoded
// again; then the id, the version and the scope's fields are set over
// whatever the hooks did, since clients and hooks may not move a document
// out of its scope or change its identity.
func (h *writer[T]) finalize(r *http.Request, op WriteOp, m bson.D, id any, fixed bson.D) (bson.Raw, error) {
	raw, err := rawbson.MarshalD(m)
	if err != nil {
		return nil, err
	}
	var v T
	if h.raw {
		v = any(bson.Raw(raw)).(T)
	} else if err := bson.Unmarshal(raw, &v); err != nil {
		return nil, misfit(err)
	}
	if h.w.validate != nil {
		if err := h.w.validate(r, &v); err != nil {
			return nil, err
		}
	}
	if h.w.prepare != nil {
		if err := h.w.prepare(r, op, &v); err != nil {
			return nil, err
		}
	}
	var out bson.Raw
	if h.raw {
		out = any(v).(bson.Raw)
	} else {
		if out, err = bson.Marshal(&v); err != nil {
			return nil, err
		}
		out = overlay(keepEmpty(keepPresent(out, raw, h.zeroDoc), raw, h.omitEmpty), raw, h.w.known)
	}
	if wo := h.parser.write.writeOnly; len(wo) > 0 {
		out = rawbson.OmitPaths(out, wo) // whatever the hooks left there
	}
	set := append(bson.D{{Key: "_id", Value: id}, {Key: h.version, Value: bson.NewObjectID()}}, fixed...)
	return rawbson.SetFields(out, set)
}

// misfit is the 422 of a document that T cannot hold (a value too large
// for its field's Go type), naming the field the driver could not decode.
func misfit(err error) error {
	pointer := ""
	var de *bson.DecodeError
	if errors.As(err, &de) {
		for _, k := range de.Keys() {
			pointer += "/" + pointerEscape(k)
		}
	}
	return &Error{Status: ErrValidation.Status, Code: ErrValidation.Code, Title: ErrValidation.Title,
		Detail: "the document cannot be written; see errors", Err: err,
		Errors: []FieldError{{Pointer: pointer, Code: "invalid_value", Detail: "the value does not fit the service's type for this field"}}}
}

// respond writes a successful write's answer: the stored document as the
// handlers of one document serve it, or 204 under Prefer: return=minimal.
func (h *writer[T]) respond(w http.ResponseWriter, r *http.Request, status int, stored bson.Raw, location string) error {
	body, etag, err := h.render(r, stored)
	if err != nil {
		return err
	}
	// The header's values share one array: Header.Set allocates one slice
	// per field, a good part of what a write allocates beyond its work.
	hdr := w.Header()
	v := [...]string{etag, "no-store", location, "return=minimal", "application/json", "nosniff", strconv.Itoa(len(body))}
	hdr["Etag"] = v[0:1:1]
	hdr["Cache-Control"] = v[1:2:2]
	if location != "" {
		hdr["Location"] = v[2:3:3]
	}
	if prefersMinimal(r) {
		hdr["Preference-Applied"] = v[3:4:4]
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	hdr["Content-Type"] = v[4:5:5]
	hdr["X-Content-Type-Options"] = v[5:6:6]
	hdr["Content-Length"] = v[6:7:7]
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// prefersMinimal reports whether the request asks for Prefer:
// return=minimal (RFC 7240).
func prefersMinimal(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for part := range strings.SplitSeq(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.EqualFold(k, "return") && strings.EqualFold(strings.Trim(val, `"`), "minimal") {
				return true
			}
		}
	}
	return false
}

// writeContext bounds a write's operations like a read's.
func (h *writer[T]) writeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.maxTime)
}

// loadStored reads the whole stored document (hidden fields included: a
// write must keep them) in the request's scope; nil when there is none.
func (h *writer[T]) loadStored(ctx context.Context, filter bson.D) (bson.Raw, error) {
	var opts []options.Lister[options.FindOneOptions]
	if c := contextComment(ctx); c != nil {
		opts = append(opts, options.FindOne().SetComment(c))
	}
	raw, err := h.w.wcoll.FindOne(ctx, filter, opts...).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	return raw, err
}

// serveInsert answers POST with one JSON document.
func serveInsert[T any](h *writer[T], w http.ResponseWriter, r *http.Request) error {
	switch mediaType(r) {
	case mediaJSON:
	case NDJSON:
		w.Header().Set("Accept-Post", mediaJSON)
		return errMediaType(r, mediaJSON+": one document (a stream of "+NDJSON+" goes to the collection's bulk insert route)")
	default:
		w.Header().Set("Accept-Post", mediaJSON)
		return errMediaType(r, mediaJSON)
	}
	data, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	body, base, fixed, err := h.decodeInScope(r, data, false)
	if err != nil {
		return err
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		scope, err := bson.Marshal(bson.D{{Key: "base", Value: base}})
		if err != nil {
			return err
		}
		return h.w.idem.serve(w, r, key, h.parser.scope, scope, data, func(id bson.ObjectID, rec http.ResponseWriter) error {
			return h.insert(rec, r, body, fixed, id)
		})
	}
	return h.insert(w, r, body, fixed, bson.NewObjectID())
}

// insert stores one decoded body under id and answers 201.
func (h *writer[T]) insert(w http.ResponseWriter, r *http.Request, body, fixed bson.D, id any) error {
	doc, err := h.finalize(r, OpInsert, body, id, fixed) // a body holds no removals
	if err != nil {
		return err
	}
	ctx, cancel := h.writeContext(r)
	defer cancel()
	if _, err := h.w.wcoll.InsertOne(ctx, doc, insertComment(ctx)...); err != nil {
		if !isDuplicateKey(err) {
			return err
		}
		// Ids are fresh, so a document with this one can only be an earlier
		// attempt of this very insert (an Idempotency-Key retry taking over
		// a claim whose insert went through): answer as it would have.
		if stored, lerr := h.loadStored(ctx, bson.D{{Key: "_id", Value: id}}); lerr == nil && stored != nil {
			return h.respond(w, r, http.StatusCreated, stored, h.w.location(r, id))
		}
		return h.w.unique.conflictError(ctx, err, doc)
	}
	h.obs(r).wrote(1)
	return h.respond(w, r, http.StatusCreated, doc, h.w.location(r, id))
}

// serveUpdate answers PUT (replace) and PATCH (merge patch).
func serveUpdate[T any](h *writer[T], w http.ResponseWriter, r *http.Request) error {
	op, media := OpReplace, mediaJSON
	if r.Method == http.MethodPatch {
		op, media = OpPatch, mediaMergePatch
	}
	if mediaType(r) != media {
		if op == OpPatch {
			w.Header().Set("Accept-Patch", mediaMergePatch)
		}
		return errMediaType(r, media)
	}
	id, err := h.parser.ParseID(h.id(r))
	if err != nil {
		return err
	}
	pre, err := h.preconditions(r, op == OpReplace)
	if err != nil {
		return err
	}
	data, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	body, base, fixed, err := h.decodeInScope(r, data, op == OpPatch)
	if err != nil {
		return err
	}
	if pre.ifNoneMatch {
		err := h.create(w, r, body, fixed, base, id)
		if errors.Is(err, errExists) {
			return ErrPreconditionFailed.Detailf("a document with this id exists, and If-None-Match: * asks for none")
		}
		return err
	}
	filter := and(base, bson.D{{Key: "_id", Value: id}})
	ctx, cancel := h.writeContext(r)
	defer cancel()
	lostCreate := false
	for attempt := 0; attempt < maxWriteAttempts; attempt++ {
		if attempt > 0 {
			if err := pause(ctx, attempt); err != nil {
				return err
			}
		}
		stored, err := h.loadStored(ctx, filter)
		if err != nil {
			return err
		}
		if stored == nil {
			switch {
			case pre.conditional():
				return errMissing()
			case op == OpPatch:
				return ErrNotFound.Detailf("no document has this id")
			}
			err := h.create(w, r, body, fixed, base, id)
			if !errors.Is(err, errExists) || lostCreate {
				return err
			}
			// Another PUT created it meanwhile: without a precondition,
			// this one replaces it, as if it had come second. Losing that
			// race is not a round of contention on the document.
			lostCreate = true
			attempt--
			continue
		}
		if ok, err := h.matches(r, pre, stored); err != nil {
			return err
		} else if !ok {
			return errPrecondition()
		}
		m := toD(stored)
		if op == OpReplace {
			m = h.stripWritable(m, "")
		}
		doc, err := h.finalize(r, op, h.mergeInto(m, body, ""), id, fixed)
		if err != nil {
			return err
		}
		replaced, err := h.replaceClaimed(ctx, filter, id, stored, doc)
		if err != nil {
			return err
		}
		if replaced {
			h.obs(r).wrote(1)
			return h.respond(w, r, http.StatusOK, doc, "")
		}
		if pre.conditional() {
			return errPrecondition() // another write came between the check and ours
		}
	}
	return ErrConflict.Detailf("the document kept changing while it was written; retry")
}

// errExists is create's answer when a document with the id exists in the
// request's scope: another request created it first.
var errExists = errors.New("mongohttp: a document with this id exists")

// create answers a PUT that creates its document. An id that exists
// outside the request's scope is a 404, so a scope never learns of the
// documents of another; one that exists inside it is errExists, for the
// caller to decide.
func (h *writer[T]) create(w http.ResponseWriter, r *http.Request, body, fixed, base bson.D, id any) error {
	doc, err := h.finalize(r, OpInsert, body, id, fixed) // a body holds no removals
	if err != nil {
		return err
	}
	ctx, cancel := h.writeContext(r)
	defer cancel()
	if _, err := h.w.wcoll.InsertOne(ctx, doc, insertComment(ctx)...); err != nil {
		if !isDuplicateKey(err) {
			return err
		}
		if stored, lerr := h.loadStored(ctx, and(base, bson.D{{Key: "_id", Value: id}})); lerr != nil || stored != nil {
			if lerr != nil {
				return lerr
			}
			return errExists
		}
		// Not in the scope: elsewhere, or the duplicate is of another
		// unique key.
		if base != nil {
			if stored, lerr := h.loadStored(ctx, bson.D{{Key: "_id", Value: id}}); lerr != nil || stored != nil {
				if lerr != nil {
					return lerr
				}
				return ErrNotFound.Detailf("this id cannot be created here")
			}
		}
		return h.w.unique.conflictError(ctx, err, doc) // another unique index than _id's
	}
	h.obs(r).wrote(1)
	return h.respond(w, r, http.StatusCreated, doc, "")
}

// serveDelete answers DELETE: 204, then 404.
func serveDelete[T any](h *writer[T], w http.ResponseWriter, r *http.Request) error {
	id, err := h.parser.ParseID(h.id(r))
	if err != nil {
		return err
	}
	pre, err := h.preconditions(r, false)
	if err != nil {
		return err
	}
	base, _, err := h.scope(r)
	if err != nil {
		return err
	}
	filter := and(base, bson.D{{Key: "_id", Value: id}})
	ctx, cancel := h.writeContext(r)
	defer cancel()
	if pre.conditional() {
		stored, err := h.loadStored(ctx, filter)
		if err != nil {
			return err
		}
		if stored == nil {
			return errMissing()
		}
		ok, err := h.matches(r, pre, stored)
		if err != nil {
			return err
		}
		if !ok {
			return errPrecondition()
		}
		claimed, release, err := h.claim(ctx, id, stored)
		if err != nil {
			return err
		}
		if !claimed {
			return errPrecondition()
		}
		defer release()
		filter = h.claimedFilter(id, filter, stored)
	}
	// The change feeds learn of the delete from its tombstone, written
	// first so that no delete goes without one.
	if err := h.w.tombs.record(ctx, id); err != nil {
		return err
	}
	var opts []options.Lister[options.DeleteOneOptions]
	if c := contextComment(ctx); c != nil {
		opts = append(opts, options.DeleteOne().SetComment(c))
	}
	res, err := h.w.wcoll.DeleteOne(ctx, filter, opts...)
	if err != nil {
		return err
	}
	h.obs(r).wrote(int(res.DeletedCount))
	if res.DeletedCount == 0 {
		if pre.conditional() {
			return errPrecondition() // changed between the check and the delete
		}
		return ErrNotFound.Detailf("no document has this id")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// isDuplicateKey reports whether err is a unique index violation. FerretDB
// 1.x reports one raised by an update as an InternalError (code 1) that
// quotes SQLite's "UNIQUE constraint failed" instead of code 11000; that
// one form is recognised too, so it is a 409, not a 500.
func isDuplicateKey(err error) bool {
	if mongo.IsDuplicateKeyError(err) {
		return true
	}
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == 1 && strings.Contains(ce.Message, "UNIQUE constraint failed")
}
