package mongohttp

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

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
	p := parseState{qp: qp, limit: int64(qp.defaultLimit), acceptedList: plan.accepted}
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
		}
		return qp.notFilterable(key, plan.accepted)
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
