package mongohttp

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

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

// Errors of writes.
var (
	ErrConflict             = &Error{Status: http.StatusConflict, Code: "conflict", Title: "Conflict"}
	ErrPreconditionFailed   = &Error{Status: http.StatusPreconditionFailed, Code: "precondition_failed", Title: "Precondition failed"}
	ErrPreconditionRequired = &Error{Status: http.StatusPreconditionRequired, Code: "precondition_required", Title: "Precondition required"}
)

// Media types the write handlers take.
const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json"
)

// DefaultMaxBodyBytes bounds a request body (one line of an NDJSON bulk
// insert) when Collection.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// DefaultVersionField is the field holding a document's version when
// Collection.VersionField is "".
const DefaultVersionField = "_etag"

// maxWriteAttempts bounds the read-merge-write rounds of a PUT or PATCH
// without If-Match that lose a race with another writer.
const maxWriteAttempts = 8

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
	location     func(r *http.Request, id any) string
	known        map[string]bool // the keys T's marshalling writes; nil: every key
	idem         *idempotency
	claims       *claims
	tombs        *tombstones // nil: deletes leave none
}

func (h *writer[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	if r.Method != h.method {
		w.Header().Set("Allow", h.method)
		WriteError(w, r, ErrMethodNotAllowed.Detailf("method %s is not allowed; use %s", strconv.Quote(r.Method), h.method))
		return
	}
	if err := admit(r.Context(), h.limit, h.clientLimit); err != nil {
		h.errorFunc(w, r, err)
		return
	}
	defer leave(h.limit, h.clientLimit)
	h.obs(r).admitted()
	if err := h.serve(h, w, r); err != nil {
		h.errorFunc(w, r, err)
	}
}

// mediaType returns the request's media type, lower case, without
// parameters.
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	switch ct { // the usual spellings, without the parser's map of parameters
	case mediaJSON, NDJSON, mediaMergePatch:
		return ct
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

// readBody reads the whole body, bounded by the handler's limit.
func (h *writer[T]) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.w.maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		// The rest of the body is not read: the connection cannot serve
		// another request. MaxBytesReader tells the server so through the
		// ResponseWriter, which an observer's wrapper hides; the header
		// says it whatever wraps w.
		w.Header().Set("Connection", "close")
		return nil, ErrBodyTooLarge.Detailf("the body is larger than %d bytes", h.w.maxBody)
	case err != nil:
		return nil, ErrInvalidBody.Detailf("the body could not be read").withCause(err)
	}
	return body, nil
}

// scope returns the request's base filter and the fields it fixes by
// equality, which every document written under it carries.
func (h *writer[T]) scope(r *http.Request) (base, fixed bson.D, err error) {
	if base, err = h.base(r); err != nil {
		return nil, nil, err
	}
	return base, equalities(base, nil), nil
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
		return nil, ErrValidation.Detailf("the document does not fit the service's type").withCause(err)
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
		out = overlay(keepPresent(out, raw, h.zeroDoc), raw, h.w.known)
	}
	set := append(bson.D{{Key: "_id", Value: id}, {Key: h.version, Value: bson.NewObjectID()}}, fixed...)
	return rawbson.SetFields(out, set)
}

// respond writes a successful write's answer: the stored document as the
// handlers of one document serve it, or 204 under Prefer: return=minimal.
func (h *writer[T]) respond(w http.ResponseWriter, r *http.Request, status int, stored bson.Raw, location string) error {
	if len(h.hidden) > 0 {
		stored = rawbson.OmitPaths(stored, h.hidden)
	}
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

// serveInsert answers POST: one JSON document, or an NDJSON stream of them.
func serveInsert[T any](h *writer[T], w http.ResponseWriter, r *http.Request) error {
	switch mediaType(r) {
	case mediaJSON:
	case NDJSON:
		return h.serveBulk(w, r)
	default:
		w.Header().Set("Accept-Post", mediaJSON+", "+NDJSON)
		return ErrUnsupportedMediaType.Detailf("send %s (one document) or %s (many)", mediaJSON, NDJSON)
	}
	data, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	body, err := h.parser.write.decodeBody(data, false)
	if err != nil {
		return err
	}
	base, fixed, err := h.scope(r)
	if err != nil {
		return err
	}
	if err := conflictsWithScope(body, fixed); err != nil {
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
		return ErrConflict.Detailf("a document with the same unique key exists").withCause(err)
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
		return ErrUnsupportedMediaType.Detailf("send %s", media)
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
	body, err := h.parser.write.decodeBody(data, op == OpPatch)
	if err != nil {
		return err
	}
	base, fixed, err := h.scope(r)
	if err != nil {
		return err
	}
	if err := conflictsWithScope(body, fixed); err != nil {
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
		if stored, err := h.loadStored(ctx, and(base, bson.D{{Key: "_id", Value: id}})); err != nil || stored != nil {
			if err != nil {
				return err
			}
			return errExists
		}
		// Not in the scope: elsewhere, or the duplicate is of another
		// unique key.
		if base != nil {
			if stored, err := h.loadStored(ctx, bson.D{{Key: "_id", Value: id}}); err != nil || stored != nil {
				if err != nil {
					return err
				}
				return ErrNotFound.Detailf("this id cannot be created here")
			}
		}
		return ErrConflict.Detailf("a document with the same unique key exists").withCause(err)
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

// knownKeys returns the top-level keys that marshalling a T writes, read
// from its bson tags as the driver reads them (the lower-cased field name
// when a tag gives none), or nil when T keeps any key (a map, bson.D,
// bson.Raw, or a struct with an inline map).
func knownKeys[T any]() map[string]bool {
	t := reflect.TypeFor[T]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	keys := map[string]bool{}
	if !structKeys(t, keys) {
		return nil
	}
	return keys
}

func structKeys(t reflect.Type, keys map[string]bool) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("bson")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if strings.Contains(","+opts+",", ",inline,") {
			switch ft.Kind() {
			case reflect.Struct:
				if !structKeys(ft, keys) {
					return false
				}
				continue
			case reflect.Map:
				return false
			}
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys[name] = true
	}
	return true
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
