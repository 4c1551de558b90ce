package mongohttp

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Collection declares, once, how a collection is served: what clients may
// ask of it, the hooks that scope and shape its documents, and the limits
// its handlers work under. New checks it and makes a Resource, from which
// the handlers are made. T is the document type, as for Find.
//
// Every field but Coll is optional, and its zero value is a safe default.
// A declaration is a plain value: to serve one route differently (a parent
// filter, a longer MaxTime for an export), copy it, change the field and
// call New again.
type Collection[T any] struct {
	// Coll is the collection served. Required.
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
	// list them in Vary. Default is nil: no base filter.
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
	Encoder *Encoder

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
	// Link header first. Default is DefaultLookahead (1 MiB).
	Lookahead int

	// Admission bounds the requests each handler made from this declaration
	// runs at once; past the bound and a short queue, requests are answered
	// 503 "overloaded" at once. Every handler has a limiter of its own, and
	// requests also count against their client's (see Config.Admission).
	// Default is the zero Admission: DefaultMaxActive at once,
	// DefaultMaxQueued waiting at most DefaultMaxWait.
	Admission Admission

	// CacheControl is the Cache-Control header of successful answers.
	// Default ("") is "private, no-cache" when BaseFilter or PolicyFor is
	// set, since answers then depend on who asks, so that no shared cache
	// serves one client's answer to another and every reuse is revalidated;
	// otherwise no header, leaving caching to HTTP's defaults (FindOne's
	// ETag still allows revalidation).
	CacheControl string

	// Vary lists request headers that BaseFilter or PolicyFor read (for
	// example "Authorization" or "X-Tenant"), added to every answer's Vary
	// header so that caches keep answers for different clients apart.
	// Default is none ("Accept" is always added to Find's answers).
	Vary []string

	// Observer receives a report of every request the handlers answer
	// (see Observer). Default is the Config.Observer of the client the
	// collection belongs to, if it was made by ConnectConfig; with none,
	// the handlers do no observing work.
	Observer Observer

	// Route names the route a request matched, for the Observer and the
	// log lines: a template such as "/users/{id}", never the path itself
	// (which holds ids). Default is r.Pattern without its method and host,
	// which http.ServeMux sets; other routers pass theirs
	// (chi.RouteContext(r.Context()).RoutePattern()…).
	Route func(r *http.Request) string

	// ServerTiming adds a Server-Timing header to successful answers:
	// "db" (the time from the first command to the documents in hand) and
	// "enc" (encoding; for Find, whose body is written after its headers,
	// in a trailer). Default is false: timings tell clients about the
	// server, and only developers need them.
	ServerTiming bool
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
}

// New checks c and returns its Resource. Mistakes in the declaration (no
// collection, an invalid policy, a policy named "") are reported here, as
// errors naming the collection and the field, rather than at request time.
func New[T any](c Collection[T]) (*Resource[T], error) {
	if c.Coll == nil {
		return nil, errors.New("mongohttp: Collection.Coll is nil")
	}
	where := "mongohttp: collection " + c.Coll.Name()
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
	if c.MaxTime < 0 || c.Lookahead < 0 {
		return nil, fmt.Errorf("%s: MaxTime and Lookahead may not be negative", where)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
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
		c.Observer = clientObserver(c.Coll.Database().Client())
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
	res.errorFunc = c.ErrorFunc
	if res.errorFunc == nil {
		res.errorFunc = res.logAndWrite
	}
	res.errorFunc = res.observeErrors(res.errorFunc)
	runOpts := options.RunCmd().SetReadPreference(rp)
	var zero T
	_, raw := any(zero).(bson.Raw)
	zeroDoc, _ := bson.Marshal(zero) // nil for types that are not documents; Find then fails per request
	for name, p := range c.allPolicies() {
		parser, err := NewQueryParser(p)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "mongohttp: ")
			if name != "" {
				return nil, fmt.Errorf("%s: Policies[%q]: %s", where, name, msg)
			}
			return nil, fmt.Errorf("%s: %s", where, msg)
		}
		res.bases[name] = &handlerBase[T]{
			coll: res.coll, parser: parser, hidden: parser.Hidden(),
			readConcern: c.ReadConcern, runOpts: runOpts,
			baseFilter: c.BaseFilter, transform: c.Transform, errorFunc: res.errorFunc,
			logger: c.Logger, maxTime: c.MaxTime, enc: c.Encoder, raw: raw, zeroDoc: zeroDoc,
			observed: c.Observer != nil || c.ServerTiming, route: c.Route,
		}
	}
	return res, nil
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

// Must returns r, and panics if err is not nil. It keeps declarations in
// var blocks short:
//
//	var users = mongohttp.Must(mongohttp.New(mongohttp.Collection[bson.Raw]{…}))
func Must[T any](r *Resource[T], err error) *Resource[T] {
	if err != nil {
		panic(err)
	}
	return r
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
// match the request's query, a page at a time, as a JSON array streamed
// document by document (NDJSON when the Accept header asks for
// application/x-ndjson). See the package's Find function for the answers.
func (r *Resource[T]) Find() http.Handler {
	lim := r.decl.Admission.limiter()
	return r.observe("find", r.perPolicy(func(b *handlerBase[T]) http.Handler {
		return &findHandler[T]{handlerBase: b, lookahead: r.decl.Lookahead, limit: lim}
	}))
}

// FindOne returns a handler that answers GET and HEAD with the document
// whose _id is the request's id (see Collection.ID): 400
// invalid_object_id for a malformed id, 404 not_found when there is no such
// document in the request's scope. Answers carry a strong ETag, and
// If-None-Match gets 304. The only query parameter accepted is ?fields=
// (when the policy allows projection), plus the policy's ExtraParameters.
func (r *Resource[T]) FindOne() http.Handler {
	lim := r.decl.Admission.limiter()
	return r.observe("findOne", r.perPolicy(func(b *handlerBase[T]) http.Handler {
		return &findOneHandler[T]{handlerBase: b, id: r.decl.ID, limit: lim}
	}))
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
	id := logError(r.logger, req, err, r.decl.Route(req))
	w.Header().Set(RequestIDHeader, id)
	WriteError(w, req, err)
}
