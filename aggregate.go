package mongohttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

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
	// pipeline the server computes correctly (see the README on FerretDB).
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

// aggPlan is an Aggregation compiled against one policy.
type aggPlan struct {
	parser     *QueryParser
	params     map[string]*param
	accepted   string // for unknown_parameter details
	pipeline   []any  // normalised stages, with argRef placeholders
	facets     map[string][]any
	facetNames []string
	reduce     func(r *http.Request, results map[string][]bson.Raw) (any, error)
	maxResults int
}

type param struct {
	name       string
	typ        Type
	min, max   any // nil when unbounded
	maxLength  int
	choices    map[string]any
	def        any
	hasDefault bool
}

// argRef is an Arg found in a normalised pipeline.
type argRef struct{ name string }

func compileAggregation(a Aggregation, qp *QueryParser) (*aggPlan, error) {
	plan := &aggPlan{parser: qp, params: map[string]*param{}, reduce: a.Reduce, maxResults: a.MaxResults}
	switch {
	case a.MaxResults < 0:
		return nil, errors.New("Aggregation.MaxResults is negative")
	case a.MaxResults == 0:
		plan.maxResults = DefaultMaxResults
	}
	switch {
	case (a.Pipeline == nil) == (a.Facets == nil):
		return nil, errors.New("set Aggregation.Pipeline or Aggregation.Facets, not both")
	case a.Facets != nil && a.Reduce == nil:
		return nil, errors.New("Aggregation.Facets need Aggregation.Reduce")
	case a.Pipeline != nil && a.Reduce != nil:
		return nil, errors.New("Aggregation.Reduce goes with Facets; the results of a Pipeline are streamed")
	}
	for _, name := range sortedKeys(a.Params) {
		p, err := compileParam(name, a.Params[name], qp)
		if err != nil {
			return nil, fmt.Errorf("Aggregation.Params[%q]: %w", name, err)
		}
		plan.params[name] = p
	}
	used := map[string]bool{}
	stages := func(what string, pipeline mongo.Pipeline) ([]any, error) {
		out := make([]any, len(pipeline))
		for i, stage := range pipeline {
			if len(stage) != 1 || !strings.HasPrefix(stage[0].Key, "$") {
				return nil, fmt.Errorf("stage %d of Aggregation.%s is not a stage: a stage is a document with one $-key", i, what)
			}
			v, err := normalize(stage, plan.params, used)
			if err != nil {
				return nil, fmt.Errorf("stage %d of Aggregation.%s: %w", i, what, err)
			}
			out[i] = v
		}
		return out, nil
	}
	var err error
	if a.Pipeline != nil {
		if plan.pipeline, err = stages("Pipeline", a.Pipeline); err != nil {
			return nil, err
		}
	}
	if a.Facets != nil {
		if len(a.Facets) == 0 {
			return nil, errors.New("Aggregation.Facets is empty")
		}
		plan.facets = map[string][]any{}
		for _, name := range sortedKeys(a.Facets) {
			if plan.facets[name], err = stages(fmt.Sprintf("Facets[%q]", name), a.Facets[name]); err != nil {
				return nil, err
			}
			plan.facetNames = append(plan.facetNames, name)
		}
	}
	for name := range plan.params {
		if !used[name] {
			return nil, fmt.Errorf("Aggregation.Params[%q] is never placed in the pipeline: put Arg(%q) where its value goes", name, name)
		}
	}
	accepted := slices.DeleteFunc(slices.Clone(qp.filterNames), isReserved)
	accepted = append(accepted, "filter")
	accepted = append(accepted, sortedKeys(plan.params)...)
	plan.accepted = nameList(accepted)
	return plan, nil
}

func compileParam(name string, p Param, qp *QueryParser) (*param, error) {
	switch {
	case name == "" || !utf8.ValidString(name) || strings.ContainsAny(name, "[]\x00") || strings.HasPrefix(name, "$"):
		return nil, errors.New("invalid name")
	case isReserved(name):
		return nil, errors.New("the name is a reserved parameter")
	case qp.extras[name]:
		return nil, errors.New("the name is one of the policy's ExtraParameters")
	}
	if _, ok := qp.filter[name]; ok {
		return nil, errors.New("the name is a filterable field")
	}
	c := &param{name: name, typ: p.Type, maxLength: p.MaxLength}
	switch {
	case p.MaxLength < 0:
		return nil, errors.New("its MaxLength is negative")
	case p.MaxLength == 0:
		c.maxLength = 64
	}
	if p.Choices != nil {
		if p.Type != 0 && p.Type != String {
			return nil, errors.New("a parameter with Choices is a String")
		}
		if len(p.Choices) == 0 || p.Min != "" || p.Max != "" {
			return nil, errors.New("a parameter with Choices lists some, and has no Min or Max")
		}
		c.typ = String
		c.choices = make(map[string]any, len(p.Choices))
		for k, v := range p.Choices {
			if k == "" || textProblem(k) != "" {
				return nil, fmt.Errorf("invalid choice %q", k)
			}
			nv, err := normalize(v, nil, nil)
			if err != nil {
				return nil, fmt.Errorf("choice %q: %w", k, err)
			}
			c.choices[k] = nv
		}
	} else if !p.Type.scalar() {
		return nil, fmt.Errorf("invalid type %v", p.Type)
	}
	bound := func(what, s string) (any, error) {
		if s == "" {
			return nil, nil
		}
		switch c.typ {
		case Int, Float, Date:
		default:
			return nil, fmt.Errorf("%s bounds Int, Float and Date parameters only", what)
		}
		v, err := coerceText(name, c.typ, s)
		if err != nil {
			return nil, fmt.Errorf("%s %q is not %s", what, s, c.typ.expects())
		}
		return v, nil
	}
	var err error
	if c.min, err = bound("Min", p.Min); err != nil {
		return nil, err
	}
	if c.max, err = bound("Max", p.Max); err != nil {
		return nil, err
	}
	if c.min != nil && c.max != nil && compareScalar(c.min, c.max) > 0 {
		return nil, errors.New("its Min is above its Max")
	}
	if p.Default != "" {
		if c.def, err = c.value(p.Default); err != nil {
			return nil, fmt.Errorf("its Default: %s", AsError(err).Detail)
		}
		c.hasDefault = true
	}
	return c, nil
}

// value checks a client's text and converts it to what the pipeline
// receives.
func (p *param) value(s string) (any, error) {
	if p.choices != nil {
		v, ok := p.choices[s]
		if !ok {
			return nil, ErrInvalidParameter.Detailf("parameter %s takes one of %s, not %s", clip(p.name), nameList(sortedKeys(p.choices)), clip(s))
		}
		return v, nil
	}
	if p.typ == String {
		if len(s) > p.maxLength {
			return nil, ErrLimitExceeded.Detailf("parameter %s is longer than %d bytes", clip(p.name), p.maxLength)
		}
		if strings.HasPrefix(s, "$") {
			return nil, ErrInvalidParameter.Detailf("parameter %s may not start with \"$\"", clip(p.name))
		}
		return s, nil
	}
	v, err := coerceText(p.name, p.typ, s)
	if err != nil {
		if errors.Is(err, ErrInvalidObjectID) {
			return nil, ErrInvalidObjectID.Detailf("parameter %s takes %s, not %s", clip(p.name), p.typ.expects(), clip(s))
		}
		return nil, ErrInvalidParameter.Detailf("parameter %s takes %s, not %s", clip(p.name), p.typ.expects(), clip(s))
	}
	if (p.min != nil && compareScalar(v, p.min) < 0) || (p.max != nil && compareScalar(v, p.max) > 0) {
		return nil, ErrInvalidParameter.Detailf("parameter %s must be %s, not %s", clip(p.name), p.bounds(), clip(s))
	}
	return v, nil
}

// bounds describes a parameter's bounds for error details.
func (p *param) bounds() string {
	show := func(v any) string {
		switch x := v.(type) {
		case bson.DateTime:
			return x.Time().UTC().Format("2006-01-02T15:04:05.000Z")
		}
		return fmt.Sprint(v)
	}
	switch {
	case p.min != nil && p.max != nil:
		return "between " + show(p.min) + " and " + show(p.max)
	case p.min != nil:
		return "at least " + show(p.min)
	}
	return "at most " + show(p.max)
}

// compareScalar compares two values of one of the bounded types.
func compareScalar(a, b any) int {
	switch x := a.(type) {
	case int64:
		return compareOrdered(x, b.(int64))
	case float64:
		return compareOrdered(x, b.(float64))
	case bson.DateTime:
		return compareOrdered(x, b.(bson.DateTime))
	}
	return 0
}

func compareOrdered[V int64 | float64 | bson.DateTime](a, b V) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// normalize copies a pipeline value into bson.D, bson.A and leaves, with
// each Arg replaced by an argRef to a declared parameter (recorded in
// used), so that substitution at request time need only walk those two
// container types. Maps become bson.D in key order. With params nil, no
// Arg is allowed.
func normalize(v any, params map[string]*param, used map[string]bool) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case Arg:
		if params[string(x)] == nil {
			return nil, fmt.Errorf("Arg(%q) has no Param", string(x))
		}
		used[string(x)] = true
		return argRef{string(x)}, nil
	case bson.D:
		out := make(bson.D, len(x))
		for i, e := range x {
			nv, err := normalize(e.Value, params, used)
			if err != nil {
				return nil, err
			}
			out[i] = bson.E{Key: e.Key, Value: nv}
		}
		return out, nil
	case bson.Raw, bson.RawValue, bson.ObjectID, bson.DateTime:
		return x, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return v, nil
		}
		out := make(bson.D, 0, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			nv, err := normalize(it.Value().Interface(), params, used)
			if err != nil {
				return nil, err
			}
			out = append(out, bson.E{Key: it.Key().String(), Value: nv})
		}
		slices.SortFunc(out, func(a, b bson.E) int { return strings.Compare(a.Key, b.Key) })
		return out, nil
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return v, nil // bytes are binary data, not an array
		}
		out := make(bson.A, rv.Len())
		for i := range out {
			nv, err := normalize(rv.Index(i).Interface(), params, used)
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	}
	return v, nil
}

// substitute copies a normalised value with the request's values in place
// of its placeholders.
func substitute(v any, args map[string]any) any {
	switch x := v.(type) {
	case argRef:
		return args[x.name]
	case bson.D:
		out := make(bson.D, len(x))
		for i, e := range x {
			out[i] = bson.E{Key: e.Key, Value: substitute(e.Value, args)}
		}
		return out
	case bson.A:
		out := make(bson.A, len(x))
		for i, e := range x {
			out[i] = substitute(e, args)
		}
		return out
	}
	return v
}

// parse checks a request's query string: filters under the policy, the
// declared parameters, the policy's extra parameters, nothing else. It
// returns the client's filter and the parameters' values, defaults filled
// in.
func (plan *aggPlan) parse(rawQuery string) (bson.D, map[string]any, error) {
	qp := plan.parser
	p := parseState{qp: qp, limit: int64(qp.defaultLimit)}
	args := make(map[string]any, len(plan.params))
	err := qp.scan(rawQuery, func(key, val string) error {
		if prm := plan.params[key]; prm != nil {
			// ObjectIDs answer invalid_object_id to any bad text, NUL
			// bytes included, as everywhere else.
			if prm.typ != ObjectID {
				if err := checkText(key, val); err != nil {
					return err
				}
			}
			v, err := prm.value(val)
			args[key] = v
			return err
		}
		_, filterable := qp.filter[key]
		switch {
		case key == "filter" || qp.extras[key] || strings.ContainsAny(key, "[]"):
			return p.param(key, val)
		case isReserved(key):
			return ErrUnknownParameter.Detailf("parameter %s does not apply to this aggregation; accepted: %s", clip(key), plan.accepted)
		case filterable:
			return p.param(key, val)
		case strings.HasPrefix(key, "$") || strings.Contains(key, ".") || qp.related[key]:
			return qp.unknownName(key)
		}
		return ErrUnknownParameter.Detailf("unknown parameter %s; accepted: %s", clip(key), plan.accepted)
	})
	if err != nil {
		return nil, nil, err
	}
	for _, name := range sortedKeys(plan.params) {
		if _, ok := args[name]; ok {
			continue
		}
		prm := plan.params[name]
		if !prm.hasDefault {
			return nil, nil, ErrInvalidParameter.Detailf("parameter %s is required", clip(name))
		}
		args[name] = prm.def
	}
	q, err := p.finish()
	if err != nil {
		return nil, nil, err
	}
	return q.Filter, args, nil
}

type aggregateHandler[T any] struct {
	*handlerBase[T]
	plan      *aggPlan
	lookahead int
	limit     *limiter
}

func (h *aggregateHandler[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	ndjson := prefersNDJSON(r.Header)
	if ndjson {
		hdr.Set("Content-Type", NDJSON)
	} else {
		hdr.Set("Content-Type", "application/json")
	}
	hdr.Add("Vary", "Accept")
	hdr.Set("X-Content-Type-Options", "nosniff")
	o.answering(hdr, false)
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
	write := func(doc bson.Raw) error {
		if len(h.hidden) > 0 {
			doc = omitPaths(doc, h.hidden, "")
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
		doc = omitPaths(doc, h.hidden, "")
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
