package mongohttp

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/mongohttp/mongohttp/bsonjson"
	"github.com/mongohttp/mongohttp/internal/rawbson"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Aggregation is an aggregation pipeline served as an endpoint by
// Resource.Aggregate. The service writes the stages; clients only fill in
// what the service left open: filters on the policy's fields, which become
// the pipeline's first stage, a $match after the BaseFilter, and the
// declared Params, whose checked values replace the Arg placeholders where
// the pipeline put them. Clients can never add, remove or change a stage.
//
// The pipeline may read any field of the collection, hidden ones included
// (to count or sum them); no answer ever carries a field at a path the
// policy hides.
type Aggregation struct {
	// Pipeline is the stages run after the $match. Its results are the
	// answer: a JSON array streamed result by result, or NDJSON when the
	// Accept header asks for application/x-ndjson. Set Pipeline or Facets,
	// not both.
	Pipeline mongo.Pipeline

	// Facets are named pipelines, each run after the same $match as an
	// aggregate command of its own, one after the other; Reduce makes the
	// answer, one JSON object, from their results. They do what MongoDB's
	// $facet does, for servers without it, and let each figure come from a
	// pipeline the server computes correctly (see docs/relations.md on
	// FerretDB).
	// Default is none.
	Facets map[string]mongo.Pipeline

	// Reduce makes the answer from the results of Facets, by facet name,
	// each in the order its pipeline gave them. What it returns is encoded
	// as one document (a struct, bson.D, bson.M…), like the documents of
	// the other handlers. An *Error it returns is answered as such; another
	// error is a 500. Required with Facets.
	Reduce func(r *http.Request, results map[string][]bson.Raw) (any, error)

	// Params declares the parameters clients may pass, by name, as
	// name=value in the query string. Each must be placed in the pipeline
	// (or a facet) at least once, as Arg(name). Default is none.
	Params map[string]Param

	// MaxResults bounds the results of each pipeline: a final $limit is
	// added, and a pipeline that has more is answered 400 limit_exceeded
	// (or, once a long stream has started, cut). Default is 1000.
	MaxResults int
}

// Arg is a placeholder for the value of a parameter in an Aggregation's
// pipeline: {"$limit": mongohttp.Arg("top")} runs with the request's top
// (or its default), after it has been checked against its Param. An Arg
// counts wherever a value can be written: in bson.D, bson.M, bson.A,
// mongo.Pipeline, and other maps with string keys and slices; not inside
// structs.
type Arg string

// Param declares a parameter of an Aggregation. Its value is a value, never
// a stage, an operator or a field name: the pipeline puts it where it
// wants, and a client can only choose which value.
type Param struct {
	// Type is the type of the value, converted as a filter value of that
	// type is (an Int is an int64, a Date a bson.DateTime, and so on).
	// Required, unless Choices is set.
	Type Type

	// Min and Max bound Int, Float and Date values, written as a client
	// would write them ("1", "2021-01-01"); a value outside them is
	// invalid_parameter. Default is no bound.
	Min, Max string

	// MaxLength caps a String value, in bytes (longer is limit_exceeded).
	// String values may not start with "$", which a pipeline's expressions
	// would read as a field path. Default is 64.
	MaxLength int

	// Choices, when set, lists the values clients may give and, for each,
	// the value the pipeline receives: {"month": "$month", "year": "$year"}
	// lets a client choose a grouping key without ever writing one. Type
	// must then be String or unset. Default is none.
	Choices map[string]any

	// Default is the value when the request does not give the parameter,
	// written as a client would write it. "" makes the parameter
	// required: a request without it is invalid_parameter.
	Default string
}

// DefaultMaxResults bounds an Aggregation's results when MaxResults is 0.
const DefaultMaxResults = 1000

// Aggregate returns a handler that answers GET and HEAD with the results
// of a, run as an aggregate command under the resource's declaration: the
// BaseFilter, the policy (the request's, with PolicyFor), MaxTime (sent as
// maxTimeMS), Admission, the Encoder and the ErrorFunc. Mistakes in a (an
// Arg without a Param, a Param never placed, a bad bound) are reported
// here.
func (r *Resource[T]) Aggregate(a Aggregation) (http.Handler, error) {
	plans := make(map[*handlerBase[T]]*aggPlan, len(r.bases))
	for name, b := range r.bases {
		plan, err := compileAggregation(a, b.parser)
		if err != nil {
			where := "mongohttp: collection " + r.coll.Name() + ": Aggregate"
			if name != "" {
				where += fmt.Sprintf(" (Policies[%q])", name)
			}
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		plans[b] = plan
	}
	lim := r.decl.Admission.limiter()
	return describedBy(r.observe("aggregate", r.perPolicy(func(b *handlerBase[T]) http.Handler {
		return &aggregateHandler[T]{handlerBase: b, plan: plans[b], lookahead: r.decl.Lookahead, limit: lim}
	})), func(c *apiComponents, policy string) (*apiOperation, error) {
		b, ok := r.bases[policy]
		if !ok {
			return nil, fmt.Errorf("mongohttp: collection %s has no policy named %q", r.coll.Name(), policy)
		}
		return r.describeAggregate(c, plans[b])
	}), nil
}

type aggregateHandler[T any] struct {
	*handlerBase[T]
	plan      *aggPlan
	lookahead int
	limit     *limiter
}

func (h *aggregateHandler[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setRequestID(w, r)
	if !allowGetHead(w, r) {
		return
	}
	h.admitted(w, r, h.limit, h)
}

// serve answers one request. It returns an error only while nothing has
// been written; later failures abort the response, as Find's do.
func (h *aggregateHandler[T]) serve(w http.ResponseWriter, r *http.Request) error {
	filter, args, err := h.plan.parse(r.URL.RawQuery)
	if err != nil {
		return err
	}
	o := h.obs(r) // nil unless observed
	o.parsedFilter(filter)
	base, err := h.base(r)
	if err != nil {
		return err
	}
	match := and(base, filter)
	ctx, cancel := context.WithTimeout(r.Context(), h.maxTime)
	defer cancel()
	if h.plan.reduce != nil {
		return h.serveReduced(ctx, w, r, match, args)
	}

	o.issue()
	cur, err := h.run(ctx, h.plan.pipeline, match, args, h.commentFor(r))
	if err != nil {
		return err
	}
	o.firstBatch()
	closed := false
	defer func() {
		if !closed {
			closeInBackground(r.Context(), cur)
		}
	}()
	// Look ahead, as Find does, so that a pipeline with too many results
	// is refused before anything is written, and a short one releases its
	// cursor before the body.
	page := getPageBuffer()
	defer putPageBuffer(page)
	streaming := false
	for cur.Next(ctx) {
		if page.len() == h.plan.maxResults {
			return h.tooMany()
		}
		page.add(cur.Current)
		if page.size() > h.lookahead {
			streaming = true
			break
		}
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if !streaming {
		closed = true
		closeInBackground(r.Context(), cur)
	}

	hdr := w.Header()
	ndjson := setListHeaders(hdr, r)
	o.answering(hdr, false)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	var dw *bsonjson.DocumentWriter
	if ndjson {
		dw = h.enc.NewNDJSONWriter(w)
	} else {
		dw = h.enc.NewArrayWriter(w)
	}
	write := func(doc bson.Raw) error {
		if len(h.hidden) > 0 {
			doc = rawbson.OmitPaths(doc, h.hidden)
		}
		return dw.WriteDocument(doc)
	}
	for i := range page.len() {
		if err := write(page.doc(i)); err != nil {
			if i == 0 {
				return err // nothing has reached w yet
			}
			h.abort(r, err)
		}
	}
	n := page.len()
	if streaming {
		for cur.Next(ctx) {
			if n++; n > h.plan.maxResults {
				h.abort(r, h.tooMany())
			}
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
	o.wrote(n)
	return nil
}

func (h *aggregateHandler[T]) tooMany() error {
	return ErrLimitExceeded.Detailf("the aggregation has more than %d results; narrow the filter", h.plan.maxResults)
}

// serveReduced runs each facet, hands their results to Reduce and answers
// what it returns.
func (h *aggregateHandler[T]) serveReduced(ctx context.Context, w http.ResponseWriter, r *http.Request, match bson.D, args map[string]any) error {
	o := h.obs(r) // nil unless observed
	results := make(map[string][]bson.Raw, len(h.plan.facetNames))
	for _, name := range h.plan.facetNames {
		o.issue()
		rows, err := h.collect(ctx, r, h.plan.facets[name], match, args)
		if err != nil {
			return err
		}
		o.firstBatch()
		results[name] = rows
	}
	o.documentsInHand()
	v, err := h.plan.reduce(r, results)
	if err != nil {
		return err
	}
	doc, err := bson.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the result of Reduce: %w", err)
	}
	if len(h.hidden) > 0 {
		doc = rawbson.OmitPaths(doc, h.hidden)
	}
	body, err := h.enc.AppendDocument(make([]byte, 0, len(doc)+len(doc)/2+16), doc)
	if err != nil {
		return err
	}
	body = append(body, '\n')
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	o.answering(hdr, true)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
		o.wrote(1)
	}
	return nil
}

// collect runs one pipeline and returns its results.
func (h *aggregateHandler[T]) collect(ctx context.Context, r *http.Request, stages []any, match bson.D, args map[string]any) ([]bson.Raw, error) {
	cur, err := h.run(ctx, stages, match, args, h.commentFor(r))
	if err != nil {
		return nil, err
	}
	defer closeInBackground(r.Context(), cur)
	var rows []bson.Raw
	for cur.Next(ctx) {
		if len(rows) == h.plan.maxResults {
			return nil, h.tooMany()
		}
		rows = append(rows, slices.Clone(cur.Current))
	}
	return rows, cur.Err()
}

// run sends one pipeline as an aggregate command: the $match, the
// service's stages with the request's values, and the $limit of
// MaxResults. It is a command so that the server gets the time limit
// (maxTimeMS, from ctx's deadline), as Find's find does.
func (h *aggregateHandler[T]) run(ctx context.Context, stages []any, match bson.D, args map[string]any, comment any) (*mongo.Cursor, error) {
	pipeline := make(bson.A, 0, len(stages)+2)
	if len(match) > 0 {
		pipeline = append(pipeline, bson.D{{Key: "$match", Value: match}})
	}
	for _, stage := range stages {
		pipeline = append(pipeline, substitute(stage, args))
	}
	pipeline = append(pipeline, bson.D{{Key: "$limit", Value: int64(h.plan.maxResults) + 1}})
	// A first batch larger than the results lets the server close the
	// cursor at once, as for Find.
	batch := int32(min(h.plan.maxResults+2, 1000))
	cmd := bson.D{
		{Key: "aggregate", Value: h.coll.Name()},
		{Key: "pipeline", Value: pipeline},
		{Key: "cursor", Value: bson.D{{Key: "batchSize", Value: batch}}},
	}
	if h.readConcern != nil {
		cmd = append(cmd, bson.E{Key: "readConcern", Value: bson.D{{Key: "level", Value: h.readConcern.Level}}})
	}
	cmd = withComment(cmd, comment)
	var cur *mongo.Cursor
	err := retryRead(ctx, func() (err error) {
		cur, err = h.coll.Database().RunCommandCursor(ctx, cmd, h.runOpts)
		return err
	})
	if err != nil {
		return nil, err
	}
	cur.SetBatchSize(batch)
	return cur, nil
}
