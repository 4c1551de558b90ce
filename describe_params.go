package mongohttp

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// This file describes the query parameters a list or a document handler
// accepts, from its QueryParser: the filters, paging, sorting, fields,
// embedding and count, with the problems each can answer.

// countModes are the values ?count= takes.
func (qp *QueryParser) countModes() []CountMode { return []CountMode{CountExact, CountEstimated} }

// filterParams describes the query parameters that filter: each field's
// equality and operators, and filter=.
func (qp *QueryParser) filterParams(c *apiComponents, base string) []apiParam {
	var ps []apiParam
	for _, field := range qp.filterNames {
		t := qp.filter[field]
		if qp.ops.has(opEq) && !isReserved(field) {
			ps = append(ps, apiParam{name: field, schema: queryValueSchema(c, t), emptyValue: t == String,
				description: "Equal to this value (or, for an array field, holding it)."})
		}
		for i, opName := range opNames {
			o := opSet(1 << i)
			if !qp.ops.has(o) {
				continue
			}
			p := apiParam{name: field + "[" + opName + "]", emptyValue: t == String}
			switch o {
			case opEq, opNe, opGt, opGte, opLt, opLte:
				p.schema = queryValueSchema(c, t)
				p.description = opDescriptions[opName]
			case opIn, opNin, opAll:
				p.schema = qp.arraySchema(queryValueSchema(c, t))
				p.schema.MinItems = pointerTo(1)
				p.commaList = true
				p.description = opDescriptions[opName] + " Values are separated by commas."
			case opExists:
				p.schema, p.emptyValue = &jsonSchema{Type: "boolean"}, false
				p.description = "true: the field is present; false: it is absent."
			case opRegex:
				if t != String {
					continue
				}
				p.schema = qp.regexPatternSchema()
				p.description = "Matches this regular expression."
			case opSize:
				p.schema, p.emptyValue = integerSchema(0, math.MaxInt32), false
				p.description = "An array with this many elements."
			default:
				continue // filter= only
			}
			ps = append(ps, p)
		}
	}
	ps = append(ps, apiParam{name: "filter", jsonContent: true, schema: qp.filterSchema(c, base, ""),
		description: qp.filterDescription()})
	return ps
}

// listParams describes the query parameters of a list request, every one
// Parse accepts and no other.
func (qp *QueryParser) listParams(c *apiComponents, base string) []apiParam {
	ps := qp.filterParams(c, base)

	sortItems := make([]any, 0, 2*len(qp.sortNames))
	for _, n := range qp.sortNames {
		sortItems = append(sortItems, n, "-"+n)
	}
	ps = append(ps, apiParam{name: "sort", commaList: true,
		schema: &jsonSchema{Type: "array", Items: &jsonSchema{Type: "string", Enum: sortItems},
			MinItems: pointerTo(1), MaxItems: pointerTo(len(qp.sortNames)), UniqueItems: true},
		description: fmt.Sprintf("Sort keys, in order; \"-\" sorts descending. A field is named at most once, either way. _id is added as the last key. Default: %s.", sortSpec(qp.defaultSort))})
	if p, ok := qp.fieldsParam(); ok {
		ps = append(ps, p)
	}
	ps = append(ps,
		apiParam{name: "limit", schema: schemaWithDefault(integerSchema(1, int64(qp.maxLimit)), qp.defaultLimit),
			description: "The most documents in the page."},
		apiParam{name: "skip", schema: schemaWithDefault(integerSchema(0, int64(qp.maxSkip)), 0),
			description: "Documents to skip before the page. Prefer after, which does not make the server walk past them; the two cannot be combined."},
		apiParam{name: "after", schema: &jsonSchema{Type: "string", Pattern: "^[A-Za-z0-9_-]+$", MinLength: pointerTo(1), MaxLength: pointerTo(MaxCursorLength)},
			description: "Continue after the last document of a page: the token of the Link rel=\"next\" header, valid only with the sort it was made for. Not with skip."},
	)
	modes := qp.countModes()
	enum := make([]any, len(modes))
	for i, m := range modes {
		enum[i] = string(m)
	}
	ps = append(ps, apiParam{name: "count", schema: &jsonSchema{Type: "string", Enum: enum},
		description: "Ask for a total in the X-Total-Count header: exact counts the documents matching the filter, estimated reads the collection's size from its metadata."})
	if p, ok := qp.embedParam(); ok {
		ps = append(ps, p)
	}
	return append(ps, qp.extraParams()...)
}

// embedParam describes ?embed=, when the policy has relations.
func (qp *QueryParser) embedParam() (apiParam, bool) {
	if qp.relations == nil {
		return apiParam{}, false
	}
	paths := relationPaths(qp.relations)
	names := make([]any, len(paths))
	for i, n := range paths {
		names[i] = n
	}
	s := &jsonSchema{Type: "array", Items: &jsonSchema{Type: "string", Enum: names},
		MinItems: pointerTo(1), MaxItems: pointerTo(len(names)), UniqueItems: true}
	return apiParam{name: "embed", schema: s, commaList: true,
		description: "Add the related documents of these relations to each document, under the relation's name; a.b embeds b inside a's documents. Each relation costs one query per page."}, true
}

var opDescriptions = map[string]string{
	"eq": "Equal to this value.", "ne": "Not equal to this value.",
	"gt": "Greater than this value.", "gte": "Greater than or equal to this value.",
	"lt": "Less than this value.", "lte": "Less than or equal to this value.",
	"in": "Equal to one of these values.", "nin": "Equal to none of these values.",
	"all": "An array holding all these values.",
}

func schemaWithDefault(s *jsonSchema, v any) *jsonSchema {
	s.Default = v
	return s
}

// fieldsParam describes ?fields=, when the policy allows projection.
func (qp *QueryParser) fieldsParam() (apiParam, bool) {
	if qp.project == nil {
		return apiParam{}, false
	}
	names := make([]any, len(qp.projectNames))
	for i, n := range qp.projectNames {
		names[i] = n
	}
	// A schema could refuse overlapping fields with "not", which common
	// validators cannot decode in a parameter: the description says it.
	s := &jsonSchema{Type: "array", Items: &jsonSchema{Type: "string", Enum: names},
		MinItems: pointerTo(1), MaxItems: pointerTo(len(names)), UniqueItems: true}
	return apiParam{name: "fields", schema: s, commaList: true,
		description: "Return only these fields (and _id). A field and a field inside it cannot both be named."}, true
}

func (qp *QueryParser) extraParams() []apiParam {
	names := make([]string, 0, len(qp.extras))
	for n := range qp.extras {
		names = append(names, n)
	}
	slices.Sort(names)
	ps := make([]apiParam, len(names))
	for i, n := range names {
		ps[i] = apiParam{name: n, schema: &jsonSchema{Type: "string"}, emptyValue: true, description: "Accepted and ignored by the query language, for the application's own use."}
	}
	return ps
}

// filterDescription says in words what filter= accepts.
func (qp *QueryParser) filterDescription() string {
	var fields []string
	for _, n := range qp.filterNames {
		fields = append(fields, fmt.Sprintf("%s (%s)", n, qp.filter[n]))
	}
	var ops []string
	for i, n := range opNames {
		if qp.ops.has(1 << i) {
			ops = append(ops, "$"+n)
		}
	}
	return fmt.Sprintf("A filter document in relaxed Extended JSON, ANDed with the other conditions. Fields: %s. Operators: %s. "+
		"At most %d levels deep (each document is a level), %d bytes long, and %d values per array; a key may not appear twice in a document.",
		strings.Join(fields, ", "), strings.Join(ops, ", "), qp.maxDepth, qp.maxFilterBytes, qp.maxIn)
}

// parseErrors are the problems Parse answers, for the 400 of a list.
func (qp *QueryParser) parseErrors() []*Error {
	errs := []*Error{ErrInvalidParameter, ErrUnknownParameter, ErrFieldNotAllowed, ErrOperatorNotAllowed, ErrLimitExceeded, ErrInvalidCursor}
	for _, t := range qp.filter {
		if t == ObjectID {
			return append(errs, ErrInvalidObjectID)
		}
	}
	return errs
}

// projectionErrors are the problems ParseProjection and ParseID answer.
func (qp *QueryParser) projectionErrors() []*Error {
	errs := []*Error{ErrInvalidParameter, ErrUnknownParameter, ErrFieldNotAllowed, ErrLimitExceeded}
	if qp.filter["_id"] == ObjectID {
		errs = append(errs, ErrInvalidObjectID)
	}
	return errs
}

// runtimeChecks lists, for the description of a list's 400 answer, the
// checks a schema cannot state, made when the request arrives.
func (qp *QueryParser) runtimeChecks() string {
	return fmt.Sprintf("Besides the parameters' schemas: the whole query string is at most %d bytes (limit_exceeded); "+
		"a parameter appears at most once, a field at most once per operator, sort names a field at most once either way, "+
		"and fields names no field together with a field inside it (invalid_parameter); "+
		"after and skip are not combined (invalid_parameter); an after token must be one this service issued for the same sort (invalid_cursor); "+
		"filter= is at most %d bytes and %d levels deep (limit_exceeded) and has no key twice in a document (invalid_parameter); "+
		"a regular expression is at most %d bytes, not only characters (limit_exceeded), and valid RE2 (invalid_parameter); "+
		"a {\"$numberDouble\": …} holds a finite double, a whole one for an int field (invalid_parameter).",
		qp.maxQuery, qp.maxFilterBytes, qp.maxDepth, qp.maxRegex)
}
