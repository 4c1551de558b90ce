package mongohttp

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/mongohttp/mongohttp/bsonjson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// Collection declares, once, how a collection is served: what clients may
// ask of it, the hooks that scope and shape its documents, and the limits
// its handlers work under. New checks it and makes a Resource, from which
// the handlers are made. T is the document type: bson.Raw (documents go
// to the encoder as stored), bson.D, bson.M, a map with string keys, or a
// struct or a pointer to one, into which documents are decoded.
//
// Every field but Client and Coll is optional, and its zero value is a safe
// default.
// A declaration is a plain value: to serve one route differently (a parent
// filter, a longer MaxTime for an export), copy it, change the field and
// call New again.
type Collection[T any] struct {
	// Client is the client the collection belongs to: its Config.Admission
	// bounds the requests of all the handlers on its collections together,
	// and its Config.Observer observes them unless Observer is set. Use
	// Wrap for a *mongo.Client you built yourself. Required.
	Client *Client

	// Coll is the collection served, a collection of Client. Required.
	Coll *mongo.Collection

	// Policy says what clients may ask: which fields they may filter, sort
	// and project, with which operators, and which fields are hidden.
	// Default is the zero Policy: deny everything but _id.
	Policy Policy

	// Policies are further named policies for requests that PolicyFor sends
	// to them, such as an administrator who may see fields a guest cannot.
	// New checks each one as it checks Policy. The name "" is reserved for
	// Policy. Default is none.
	Policies map[string]Policy

	// PolicyFor names the policy a request is served under: "" for Policy,
	// otherwise a key of Policies. A name that is not there is a programming
	// error, answered 500 "internal" and logged. It runs before any query
	// and must be cheap (read an authenticated role from the context).
	// Default (nil) serves every request under Policy.
	PolicyFor func(r *http.Request) string

	// ID returns a document's id as text from the request, for the handlers
	// of one document. Default is r.PathValue("id"), which suits ServeMux
	// patterns such as "GET /users/{id}"; other routers pass their own
	// (chi.URLParam…).
	ID func(r *http.Request) string

	// BaseFilter returns a filter for the request (a tenant, an owner, a
	// parent id from the path) that is ANDed with whatever the client asks,
	// so the client can narrow it but never widen it; a document outside it
	// is answered 404 like a missing one. An error it returns is answered
	// through ErrorFunc: return an *Error (ErrInvalidObjectID,
	// ErrNotFound…) to choose the status. When it reads request headers,
	// list them in Vary. Find's after tokens and Insert's Idempotency-Keys
	// are bound to its result: a token made under one scope is refused
	// (400 invalid_cursor) under another, so a result that changes from
	// one request to the next (one holding the current time) ends paging
	// at each page; keep such conditions out of it. Default is nil: no base
	// filter.
	BaseFilter func(r *http.Request) (bson.D, error)

	// Transform is called on each document after it is decoded into T and
	// before it is encoded. An error aborts the answer. Fields absent from
	// the stored document stay absent from the answer unless Transform
	// gives them a non-zero value. Default is nil.
	Transform func(r *http.Request, doc *T) error

	// ErrorFunc answers errors. Default is WriteError after logging: 5xx
	// causes at Error level, the rest at Debug.
	ErrorFunc func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives the handlers' logs. Default is slog.Default().
	Logger *slog.Logger

	// MaxTime bounds each request's queries (a count included), on top of
	// the request's own context; past it the answer is 504 "timeout" and the
	// server abandons the operation (maxTimeMS). Default is DefaultMaxTime
	// (10 s).
	MaxTime time.Duration

	// Encoder sets the JSON format. Default (nil) is plain JSON.
	Encoder *bsonjson.Encoder

	// ReadPreference routes the reads, for example
	// readpref.SecondaryPreferred() for list endpoints. Default (nil) is
	// primary: queries are sent as commands, and commands do not inherit the
	// client's or the collection's read preference, so set it here.
	ReadPreference *readpref.ReadPref

	// ReadConcern sets the reads' read concern, for example
	// readconcern.Majority(). Default (nil) is the server's default.
	ReadConcern *readconcern.ReadConcern

	// Lookahead is how many bytes of raw BSON Find may hold before writing a
	// page, so that it can tell whether another page follows and send the
	// Link header first. A page ends before the document that would take it
	// past this (its first document is always served), and links on.
	// Default is DefaultLookahead (1 MiB).
	Lookahead int

	// Admission bounds the requests each handler made from this declaration
	// runs at once; past the bound and a short queue, requests are answered
	// 503 "overloaded" at once. Every handler has a limiter of its own, and
	// requests also count against their client's (see Config.Admission).
	// Default is the zero Admission: DefaultMaxActive (8) at once, 16 times
	// as many waiting at most DefaultMaxWait (1 s).
	Admission Admission

	// CacheControl is the Cache-Control header of successful answers.
	// Default ("") is "private, no-cache" when BaseFilter or PolicyFor is
	// set, since answers then depend on who asks, so that no shared cache
	// serves one client's answer to another and every reuse is revalidated;
	// otherwise no header, leaving caching to HTTP's defaults (FindOne's
	// ETag still allows revalidation).
	CacheControl string

	// Validate checks a document about to be written (an insert, a
	// replacement, or a patched document), decoded into T, after the
	// policy's checks. Return a *ValidationError to answer 422 with each
	// failing field; another *Error answers with its status; any other
	// error is mapped by AsError (a failed look-up of a related document
	// is a 503 or 504, not a client's fault). Default is nil.
	Validate func(r *http.Request, doc *T) error

	// Prepare runs after Validate and may change the document about to be
	// stored: set fields clients cannot write (a creation time, an owner,
	// a password hash) and clear fields that only carry input (a
	// password). op says whether the write creates the document. The id,
	// the version and the fields the BaseFilter fixes are set after it.
	// Default is nil.
	Prepare func(r *http.Request, op WriteOp, doc *T) error

	// WriteConcern is the write concern of the write handlers, for example
	// writeconcern.Majority(). Default (nil) is the collection's.
	WriteConcern *writeconcern.WriteConcern

	// RequireIfMatch makes Replace, Patch and Delete answer 428
	// "precondition_required" to requests without If-Match (or, for
	// Replace, If-None-Match: *), so that no client can overwrite a change
	// it has not seen. Default is false.
	RequireIfMatch bool

	// MaxBodyBytes bounds a write's body, and each line of a bulk insert;
	// past it the answer is 413 "body_too_large". Default is
	// DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64

	// BodyIdleTimeout bounds how long a write waits for the next bytes of
	// its body. Before each read of the body the connection's read
	// deadline is moved this far ahead (through http.ResponseController),
	// so a body that keeps flowing is read for as long as it lasts, past
	// the server's ReadTimeout (a bulk insert of a million lines), while a
	// client that stops sending is cut: 408 "body_timeout", with the lines
	// stored so far for a bulk insert. Once the body is read the deadline
	// is lifted: the server's next request sets its own. Default (0) is
	// DefaultBodyIdleTimeout; negative leaves the server's deadlines alone.
	BodyIdleTimeout time.Duration

	// Location returns the URL of a document Insert created, for the
	// Location header. Default is the request's path followed by "/" and
	// the id, which suits "POST /posts" next to "GET /posts/{id}".
	Location func(r *http.Request, id any) string

	// VersionField is the field in which writes store each document's
	// version, a new ObjectID per write, which ETags carry and If-Match is
	// checked against in the write's own server operation. It is never
	// served: answers leave it out as they do Policy.Hidden fields (in
	// related documents too), and the ETag header carries it. It may not be
	// written, filtered, sorted or projected. Default is
	// DefaultVersionField ("_etag").
	VersionField string

	// WriteClaims says whether the writers of one document first take a
	// claim on it in the collection "<name>_claims", which servers whose
	// single-document updates are not atomic need for If-Match and the
	// version check to hold (docs/writes.md, "No lost update"). Default is
	// ClaimsDetect: claims on FerretDB (asked once, from buildInfo), none
	// on MongoDB.
	WriteClaims ClaimMode

	// Idempotency configures Idempotency-Key on Insert. Default is a
	// store in the collection "<name>_idempotency" of the same database,
	// keeping keys for 24 hours.
	Idempotency Idempotency

	// Vary lists request headers that BaseFilter or PolicyFor read (for
	// example "Authorization" or "X-Tenant"), added to every answer's Vary
	// header so that caches keep answers for different clients apart.
	// Default is none ("Accept" is always added to Find's answers).
	Vary []string

	// Observer receives a report of every request the handlers answer
	// (see Observer). Default is Client's Config.Observer, if it was made
	// by ConnectConfig; with none, the handlers do no observing work.
	Observer Observer

	// Route names the route a request matched, for the Observer and the
	// log lines: a template such as "/users/{id}", never the path itself
	// (which holds ids). Default is r.Pattern without its method and host,
	// which http.ServeMux sets; other routers pass theirs
	// (chi.RouteContext(r.Context()).RoutePattern()…).
	Route func(r *http.Request) string

	// ServerTiming adds a Server-Timing header to successful answers of
	// the read handlers: "db" (the time from the first command to the
	// documents in hand) and "enc" (encoding; for Find and Aggregate,
	// whose bodies are written after their headers, in a trailer).
	// Default is false: timings tell clients about the server, and only
	// developers need them.
	ServerTiming bool

	// Changes declares that the collection has a change feed (see
	// Resource.Changes), and configures it: Delete then first records a
	// tombstone in "<name>_changes", so that feeds see deletes. Give every
	// instance that writes the collection the same declaration, whether
	// or not it serves the feed. Default is nil: no feed, no tombstones;
	// &ChangeFeed{} is a feed with every default.
	Changes *ChangeFeed
}

// Resource is a checked Collection declaration. Its methods make the
// collection's handlers; it is safe for concurrent use, and each handler
// it makes is an http.Handler that can be mounted on any router.
type Resource[T any] struct {
	decl      Collection[T]
	coll      *mongo.Collection            // with the read preference and concern applied
	bases     map[string]*handlerBase[T]   // by policy name; "" is Policy
	policyFor func(r *http.Request) string // nil: always ""
	errorFunc func(http.ResponseWriter, *http.Request, error)
	logger    *slog.Logger
	writes    *writeSettings[T]
}

// New checks c and returns its Resource. Mistakes in the declaration (no
// client or collection, an invalid policy, a policy named "") are reported
// here, as errors naming the collection and the field, rather than at
// request time.
func New[T any](c Collection[T]) (*Resource[T], error) {
	if c.Coll == nil {
		return nil, errors.New("mongohttp: Collection.Coll is nil")
	}
	where := "mongohttp: collection " + c.Coll.Name()
	if c.Client == nil {
		return nil, fmt.Errorf("%s: Client is nil: set it to the *Client that Coll belongs to (Wrap adopts a *mongo.Client)", where)
	}
	if c.Client.mc != c.Coll.Database().Client() {
		return nil, fmt.Errorf("%s: Coll belongs to another client than Client", where)
	}
	if err := checkDocumentType[T](); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if _, ok := c.Policies[""]; ok {
		return nil, fmt.Errorf("%s: Policies: the name \"\" is reserved for Policy", where)
	}
	if err := c.Admission.check(); err != nil {
		return nil, fmt.Errorf("%s: Admission: %w", where, err)
	}
	for _, v := range c.Vary {
		if v == "" || strings.ContainsAny(v, ", \t\r\n") {
			return nil, fmt.Errorf("%s: Vary: invalid header name %q", where, v)
		}
	}
	if c.MaxTime < 0 || c.Lookahead < 0 || c.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("%s: MaxTime, Lookahead and MaxBodyBytes may not be negative", where)
	}
	if c.VersionField == "" {
		c.VersionField = DefaultVersionField
	}
	if !validPath(c.VersionField) || strings.Contains(c.VersionField, ".") || c.VersionField == "_id" {
		return nil, fmt.Errorf("%s: VersionField %q is not a top-level field name", where, c.VersionField)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.BodyIdleTimeout == 0 {
		c.BodyIdleTimeout = DefaultBodyIdleTimeout
	}
	if c.Location == nil {
		c.Location = defaultLocation
	}
	if err := c.Idempotency.check(); err != nil {
		return nil, fmt.Errorf("%s: Idempotency: %w", where, err)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Changes != nil {
		feed := *c.Changes // the caller's value stays as it was
		if err := feed.withDefaults(); err != nil {
			return nil, fmt.Errorf("%s: Changes: %w", where, err)
		}
		c.Changes = &feed
	}
	if c.WriteClaims < ClaimsDetect || c.WriteClaims > ClaimsNever {
		return nil, fmt.Errorf("%s: WriteClaims %d is not a ClaimMode", where, c.WriteClaims)
	}
	if c.MaxTime == 0 {
		c.MaxTime = DefaultMaxTime
	}
	if c.Lookahead == 0 {
		c.Lookahead = DefaultLookahead
	}
	if c.ID == nil {
		c.ID = func(r *http.Request) string { return r.PathValue("id") }
	}
	if c.Observer == nil {
		c.Observer = c.Client.observer
	}
	if c.Route == nil {
		c.Route = patternRoute
	}
	if c.CacheControl == "" && (c.BaseFilter != nil || c.PolicyFor != nil) {
		c.CacheControl = "private, no-cache"
	}
	c.Policies = maps.Clone(c.Policies)
	c.Vary = slices.Clone(c.Vary)

	// Every query uses the same read preference and concern: the configured
	// ones, or primary and the server's default. (Commands do not inherit the
	// client's read preference, so neither do the other reads.)
	rp := c.ReadPreference
	if rp == nil {
		rp = readpref.Primary()
	}
	collOpts := options.Collection().SetReadPreference(rp)
	if c.ReadConcern != nil {
		collOpts.SetReadConcern(c.ReadConcern)
	}
	res := &Resource[T]{
		decl:      c,
		coll:      c.Coll.Clone(collOpts),
		bases:     make(map[string]*handlerBase[T], 1+len(c.Policies)),
		policyFor: c.PolicyFor,
		logger:    c.Logger,
	}
	res.errorFunc = res.logAndWrite
	if user := c.ErrorFunc; user != nil {
		// An ErrorFunc may edit the *Error it is given: it never receives
		// a package sentinel itself (a BaseFilter may return ErrNotFound).
		res.errorFunc = func(w http.ResponseWriter, r *http.Request, err error) { user(w, r, detachSentinel(err)) }
	}
	res.errorFunc = res.observeErrors(res.errorFunc)
	runOpts := options.RunCmd().SetReadPreference(rp)
	var zero T
	_, raw := any(zero).(bson.Raw)
	zeroDoc, _ := bson.Marshal(zero) // nil for bson.Raw, bson.D and pointers, whose zero is no document
	omitEmpty := omitEmptyKeys[T]()
	for name, p := range c.allPolicies() {
		err := checkVersionField(c.VersionField, p)
		var parser *QueryParser
		if err == nil {
			parser, err = newQueryParser(p, c.VersionField)
		}
		if err != nil {
			if name != "" {
				return nil, fmt.Errorf("%s: Policies[%q]: %w", where, name, err)
			}
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		// After tokens and Idempotency-Keys work only here: this collection,
		// under this policy.
		parser.scope = c.Coll.Database().Name() + "." + c.Coll.Name() + "\x00" + name
		parser.write.ints = intRanges(reflect.TypeFor[T](), parser.write.leaves)
		res.bases[name] = &handlerBase[T]{
			coll: res.coll, clientLimit: c.Client.limit, parser: parser, hidden: parser.hidden,
			readConcern: c.ReadConcern, runOpts: runOpts,
			baseFilter: c.BaseFilter, transform: c.Transform, errorFunc: res.errorFunc,
			logger: c.Logger, maxTime: c.MaxTime, enc: c.Encoder, raw: raw, zeroDoc: zeroDoc, omitEmpty: omitEmpty,
			version: c.VersionField, observed: c.Observer != nil || c.ServerTiming, route: c.Route,
		}
	}
	wcoll := res.coll
	if c.WriteConcern != nil {
		wcoll = res.coll.Clone(options.Collection().SetWriteConcern(c.WriteConcern))
	}
	res.writes = &writeSettings[T]{
		wcoll: wcoll, validate: c.Validate, prepare: c.Prepare, requireMatch: c.RequireIfMatch,
		maxBody: c.MaxBodyBytes, bodyIdle: c.BodyIdleTimeout, location: c.Location, known: knownKeys[T](),
		unique: &uniqueIndexes{coll: c.Coll.Clone(options.Collection().SetReadPreference(readpref.Primary()))},
		idem:   c.Idempotency.store(c.Coll, c.MaxTime), claims: newClaims(c.Coll, c.MaxTime, c.WriteClaims),
		tombs: tombstonesFor(c.Coll, c.Changes, c.Logger),
	}
	return res, nil
}

// checkDocumentType refuses a T that cannot hold a document, which would
// otherwise fail every request: the documents are decoded into T.
func checkDocumentType[T any]() error {
	t := reflect.TypeFor[T]()
	if t == reflect.TypeFor[bson.Raw]() || t == reflect.TypeFor[bson.D]() {
		return nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct || t.Kind() == reflect.Map && t.Key().Kind() == reflect.String {
		return nil
	}
	return fmt.Errorf("type parameter %s is not a document type: use bson.Raw, bson.D, bson.M, a map with string keys, or a struct or a pointer to one", reflect.TypeFor[T]())
}

// checkVersionField refuses a policy that lets clients write, filter,
// sort or project the version field, which is never served.
func checkVersionField(field string, p Policy) error {
	if _, ok := p.Write[field]; ok {
		return fmt.Errorf("Policy.Write: the version field %q is set by the server", field)
	}
	if _, ok := p.Filter[field]; ok || slices.Contains(p.Sort, field) || slices.Contains(p.Project, field) {
		return fmt.Errorf("Policy: the version field %q is never served (the ETag header carries it): it cannot be filtered, sorted or projected", field)
	}
	return nil
}

// defaultLocation is the request's path in canonical form, then "/" and
// the id.
func defaultLocation(r *http.Request, id any) string {
	var s string
	switch v := id.(type) {
	case bson.ObjectID:
		s = v.Hex()
	default:
		s = fmt.Sprint(v)
	}
	return strings.TrimSuffix(requestPath(r), "/") + "/" + url.PathEscape(s)
}

// allPolicies yields Policy under "" and then the named policies.
func (c *Collection[T]) allPolicies() map[string]Policy {
	all := maps.Clone(c.Policies)
	if all == nil {
		all = map[string]Policy{}
	}
	all[""] = c.Policy
	return all
}

// Must returns v, and panics if err is not nil. It keeps what is built
// once at start-up short: declarations and the handlers that can fail.
//
//	var users = mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{…}))
//	mux.Handle("GET /users/stats", mongohttp.Must(users.Aggregate(stats)))
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Collection returns the declaration r was made from, with its defaults
// filled in: for documentation and introspection. Changing the copy does
// not change r.
func (r *Resource[T]) Collection() Collection[T] {
	c := r.decl
	c.Policies = maps.Clone(c.Policies)
	c.Vary = slices.Clone(c.Vary)
	return c
}

// Find returns a handler that answers GET and HEAD with the documents that
// match the request's query, a page at a time, as a JSON array written
// document by document, or as NDJSON when the Accept header prefers
// application/x-ndjson (any other Accept header gets JSON). The query
// language and its errors are those of the request's Policy (see Policy
// and QueryParser).
//
// Paging never stops early: a page that has a next one carries a Link
// header with rel="next", and following the links from any first page
// gives every matching document once, in order, whatever the documents'
// sizes and whatever their sort fields hold. A page holds up to ?limit=
// documents, fewer when they pass Lookahead bytes or when its last
// documents cannot anchor an after token (see the after tokens in docs/paging.md): the
// page then ends at the last document that can. Sort values too long for
// a token (a 700-byte name) do not stop a document from anchoring one: its
// token names the document by _id (of at most 160 bytes) and a digest of
// its sort key, and the next page reads it again to start after it; should
// it have moved meanwhile, the page starts after one of the two documents
// before it, or at the first document sharing the prefix of its sort
// values that the token holds, so that none is left out. If no document
// can, the link continues by position (skipping the documents served, up
// to Policy.MaxSkip). If even that is impossible the request fails with a 500
// problem (code "internal") rather than answer a page without its
// continuation: a client never mistakes a page for the last one.
//
// ?count=exact adds X-Total-Count, the number of documents matching the
// filter (the same on every page); ?count=estimated the collection's size
// from metadata when no filter applies (see Policy.Count).
func (r *Resource[T]) Find() http.Handler {
	lim := r.decl.Admission.limiter()
	return describedBy(r.observe("find", r.perPolicy(func(b *handlerBase[T]) http.Handler {
		return &findHandler[T]{handlerBase: b, lookahead: r.decl.Lookahead, limit: lim}
	})), r.describeFind)
}

// FindOne returns a handler that answers GET and HEAD with the document
// whose _id is the request's id (see Collection.ID): 400
// invalid_object_id for a malformed id, 404 not_found when there is no such
// document in the request's scope. Answers carry a strong ETag, and
// If-None-Match gets 304. The only query parameter accepted is ?fields=
// (when the policy allows projection), plus the policy's ExtraParameters.
func (r *Resource[T]) FindOne() http.Handler {
	lim := r.decl.Admission.limiter()
	return describedBy(r.observe("findOne", r.perPolicy(func(b *handlerBase[T]) http.Handler {
		return &findOneHandler[T]{handlerBase: b, id: r.decl.ID, limit: lim}
	})), r.describeFindOne)
}

// Insert returns a handler that answers POST with a new document: an
// application/json body, answered 201 Created with Location, ETag and the
// stored document as FindOne serves it (204 under Prefer: return=minimal).
// Only the policy's Write fields may be sent; the id is made by the server,
// and the fields the BaseFilter fixes are set from it. A request with an
// Idempotency-Key header is answered, when retried with the same key and
// body, as it was the first time, without inserting again. Streams of
// documents go to BulkInsert.
func (r *Resource[T]) Insert() http.Handler {
	return r.writeHandler("insert", http.MethodPost, serveInsert[T])
}

// BulkInsert returns a handler that answers POST with an
// application/x-ndjson body: one document a line, each checked as Insert
// checks a body, inserted in ordered batches until the first line that
// fails, with memory flat however long the stream (see docs/writes.md).
// The answer is 200 {"inserted": n}, or the failing line's problem with
// its "line" and the "inserted" count. Mount it on a route of its own
// (POST /posts/bulk, say): an operation with one answer type is what
// generated clients type directly.
func (r *Resource[T]) BulkInsert() http.Handler {
	return r.writeHandler("bulkInsert", http.MethodPost, serveBulkInsert[T])
}

// Replace returns a handler that answers PUT with the whole document of
// the request's id: the policy's Write fields are replaced by the body's
// (absent ones removed), the others are kept. A document that does not
// exist is created (201); If-None-Match: * allows only that, and If-Match
// only a replacement of the version it names, checked in the same server
// operation as the write. If-Match compares whole, strong ETags (RFC 9110
// 13.1.1): another ETag, a missing document, or a header that names no
// strong tag (empty, weak tags only) is a 412 "precondition_failed", and
// so is If-Match beside If-None-Match: *; a malformed one is a 400.
// Concurrent PUTs of a new id without a precondition all succeed: one
// creates the document (201), the others replace it (200).
func (r *Resource[T]) Replace() http.Handler {
	return r.writeHandler("replace", http.MethodPut, serveUpdate[T])
}

// Patch returns a handler that answers PATCH with an
// application/merge-patch+json body (RFC 7396): the fields it names change,
// null removes one, and nothing else moves. If-Match is honoured as by
// Replace. A missing document is 404.
func (r *Resource[T]) Patch() http.Handler {
	return r.writeHandler("patch", http.MethodPatch, serveUpdate[T])
}

// Delete returns a handler that answers DELETE: 204, then 404. If-Match is
// honoured as by Replace.
func (r *Resource[T]) Delete() http.Handler {
	return r.writeHandler("delete", http.MethodDelete, serveDelete[T])
}

func (r *Resource[T]) writeHandler(kind, method string, serve func(*writer[T], http.ResponseWriter, *http.Request) error) http.Handler {
	lim := r.decl.Admission.limiter()
	return describedBy(r.observe(kind, r.perPolicy(func(b *handlerBase[T]) http.Handler {
		return &writer[T]{handlerBase: b, w: r.writes, id: r.decl.ID, limit: lim, method: method, serve: serve}
	})), r.describeWrite(kind, method))
}

// perPolicy makes one handler per policy with mk and, when the declaration
// chooses policies per request, a handler that dispatches to them. Each
// policy's handler is complete in itself, so the choice costs one map
// look-up and the serving code never branches on it.
func (r *Resource[T]) perPolicy(mk func(*handlerBase[T]) http.Handler) http.Handler {
	if r.policyFor == nil {
		return r.decorate(mk(r.bases[""]))
	}
	hs := make(map[string]http.Handler, len(r.bases))
	for name, b := range r.bases {
		hs[name] = mk(b)
	}
	return r.decorate(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name := r.policyFor(req)
		h, ok := hs[name]
		if !ok {
			r.errorFunc(w, req, ErrInternal.Detailf("the request could not be completed").
				withCause(fmt.Errorf("PolicyFor named policy %q, which the declaration of %s does not have", name, r.coll.Name())))
			return
		}
		h.ServeHTTP(w, req)
	}))
}

// decorate adds the caching headers every answer of the resource carries.
func (r *Resource[T]) decorate(h http.Handler) http.Handler {
	cc, vary := r.decl.CacheControl, strings.Join(r.decl.Vary, ", ")
	if cc == "" && vary == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hdr := w.Header()
		if cc != "" {
			hdr.Set("Cache-Control", cc) // WriteError replaces it with no-store
		}
		if vary != "" {
			hdr.Add("Vary", vary)
		}
		h.ServeHTTP(w, req)
	})
}

// logAndWrite is the default ErrorFunc.
func (r *Resource[T]) logAndWrite(w http.ResponseWriter, req *http.Request, err error) {
	logError(r.logger, req, err, r.decl.Route(req), setRequestID(w, req))
	WriteError(w, req, err)
}
