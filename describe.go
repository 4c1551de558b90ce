package mongohttp

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mongohttp/mongohttp/bsonjson"
)

// This file holds what a handler says about itself: the operation it
// serves, described from its declaration and policy, for the API document
// (openapi.go). It describes reality, so a parameter it leaves out is one
// the handler refuses, and a status or problem code it lists is one the
// handler can answer.
//
// Write handlers plug in by filling the same structures: an operation with
// its methods, the request bodies it accepts per media type (bodies), the
// request headers it reads (headers: If-Match, If-None-Match), and its
// answers with their problem codes (responses), then wrapping the handler
// with describedBy so that API.Handle can find it.

// apiOperation describes what one handler accepts and answers.
type apiOperation struct {
	methods     []string // in the order they are documented, GET before HEAD
	summary     string
	description string
	tags        []string

	// id is the path parameter that names a document, for handlers of one
	// document; API.Handle binds it to the pattern's wildcard.
	id *apiParam

	// query lists the query parameters the handler reads. With strictQuery
	// it refuses any other; without, it ignores them.
	query       []apiParam
	strictQuery bool
	headers     []apiParam   // request headers the handler reads
	bodies      []apiContent // request bodies by media type, for writes
	undescribed bool         // a handler that says nothing of itself: its Doc does

	doc Doc // the route's Doc for this operation, set by API.describeRoute

	responses []apiResponse
}

// apiParam is a query, path or header parameter.
type apiParam struct {
	name        string
	description string
	schema      *jsonSchema
	required    bool
	commaList   bool // an array written as one comma-separated value
	jsonContent bool // the value is a JSON document (filter=)
	emptyValue  bool // an empty value is accepted (a string, or a list of one)
}

// apiResponse is one status an operation answers with. A response with
// problems is an application/problem+json answer whose code is one of them.
type apiResponse struct {
	status      int
	description string
	headers     []apiHeader
	contents    []apiContent
	problems    []*Error
}

type apiHeader struct {
	name        string
	description string
	schema      *jsonSchema
	required    bool
}

// apiContent is a body of one media type. For a streamed media type (NDJSON)
// schema is the schema of each line.
type apiContent struct {
	mediaType string
	schema    *jsonSchema
}

// describer is implemented by the handlers that describe themselves.
// policy names the policy the document describes ("" for
// Collection.Policy), for handlers that choose one per request.
type describer interface {
	describe(c *apiComponents, policy string) (*apiOperation, error)
}

// describedHandler is a handler with its description.
type describedHandler struct {
	http.Handler
	describeFunc func(c *apiComponents, policy string) (*apiOperation, error)
}

func (h *describedHandler) describe(c *apiComponents, policy string) (*apiOperation, error) {
	return h.describeFunc(c, policy)
}

// describedBy wraps h so that API.Handle can ask it for its description.
func describedBy(h http.Handler, describe func(c *apiComponents, policy string) (*apiOperation, error)) http.Handler {
	return &describedHandler{Handler: h, describeFunc: describe}
}

// jsonSchema is the part of JSON Schema 2020-12 the descriptions use, as
// OpenAPI 3.1 embeds it.
type jsonSchema struct {
	Ref                  string                 `json:"$ref,omitempty"`
	Type                 any                    `json:"type,omitempty"` // a name, or a list of names
	Format               string                 `json:"format,omitempty"`
	Pattern              string                 `json:"pattern,omitempty"`
	Description          string                 `json:"description,omitempty"`
	Enum                 []any                  `json:"enum,omitempty"`
	Const                any                    `json:"const,omitempty"`
	Minimum              json.Number            `json:"minimum,omitempty"`
	Maximum              json.Number            `json:"maximum,omitempty"`
	MinLength            *int                   `json:"minLength,omitempty"`
	MaxLength            *int                   `json:"maxLength,omitempty"`
	Items                *jsonSchema            `json:"items,omitempty"`
	MinItems             *int                   `json:"minItems,omitempty"`
	MaxItems             *int                   `json:"maxItems,omitempty"`
	UniqueItems          bool                   `json:"uniqueItems,omitempty"`
	Properties           map[string]*jsonSchema `json:"properties,omitempty"`
	Required             []string               `json:"required,omitempty"`
	AdditionalProperties any                    `json:"additionalProperties,omitempty"` // false or a schema
	MinProperties        *int                   `json:"minProperties,omitempty"`
	AnyOf                []*jsonSchema          `json:"anyOf,omitempty"`
	AllOf                []*jsonSchema          `json:"allOf,omitempty"`
	ContentEncoding      string                 `json:"contentEncoding,omitempty"`
	WriteOnly            bool                   `json:"writeOnly,omitempty"`
	Default              any                    `json:"default,omitempty"`
	Examples             []any                  `json:"examples,omitempty"`
}

func pointerTo[T any](v T) *T { return &v }

func schemaRef(name string) *jsonSchema { return &jsonSchema{Ref: "#/components/schemas/" + name} }

// apiComponents collects the named schemas of one document. A name is given
// once: a different schema under a taken name gets a numbered name.
type apiComponents struct {
	schemas map[string]*jsonSchema
	byType  map[any]string // Go types and other keys already named
}

func newAPIComponents() *apiComponents {
	return &apiComponents{schemas: map[string]*jsonSchema{}, byType: map[any]string{}}
}

// add names s and returns a reference to it: name itself when it is free or
// holds the same schema, else name2, name3…
func (c *apiComponents) add(name string, s *jsonSchema) *jsonSchema {
	want, _ := json.Marshal(s)
	for i := 1; ; i++ {
		n := name
		if i > 1 {
			n = fmt.Sprintf("%s%d", name, i)
		}
		have, ok := c.schemas[n]
		if !ok {
			c.schemas[n] = s
			return schemaRef(n)
		}
		if got, _ := json.Marshal(have); string(got) == string(want) {
			return schemaRef(n)
		}
	}
}

// reserve takes a name for a schema built later (a recursive type), and
// returns the name given.
func (c *apiComponents) reserve(name string) string {
	for i := 1; ; i++ {
		n := name
		if i > 1 {
			n = fmt.Sprintf("%s%d", name, i)
		}
		if _, ok := c.schemas[n]; !ok {
			c.schemas[n] = &jsonSchema{}
			return n
		}
	}
}

// resolve returns the schema s refers to, or s.
func (c *apiComponents) resolve(s *jsonSchema) *jsonSchema {
	for s != nil && s.Ref != "" {
		s = c.schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	return s
}

// Patterns of the values the query language takes and the encoder writes.
const (
	objectIDPattern       = "^[0-9a-fA-F]{24}$" // accepted: either case
	objectIDOutputPattern = "^[0-9a-f]{24}$"    // written: lower case

	// A calendar date, leap years included, as time.Parse checks it.
	datePattern = `[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))` +
		`|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[048]|[2468][048]|[13579][26])00)-02-29`
	// A time of day with its offset, as RFC 3339 has it.
	timePattern = `T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])`
	// dateQueryPattern is what a Date field takes: a date-time or a date.
	dateQueryPattern = `^(?:` + datePattern + `)(?:` + timePattern + `)?$`
)

// The texts of Extended JSON's number wrappers, as the driver reads them
// (strconv.ParseInt, with its sign and leading zeros; a decimal double).
var (
	int64TextPattern = signedDecimalPattern("9223372036854775807", "9223372036854775808")
	int32TextPattern = signedDecimalPattern("2147483647", "2147483648")
)

const decimalPattern = `^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$`

// signedDecimalPattern matches the integers from -minus to plus.
func signedDecimalPattern(plus, minus string) string {
	return `^(?:\+?` + decimalAtMost(plus) + `|-` + decimalAtMost(minus) + `)$`
}

// decimalAtMost matches the decimal numbers from 0 to n, leading zeros
// allowed: any shorter number, or one of n's length that is smaller at
// its first differing digit, or n.
func decimalAtMost(n string) string {
	alts := []string{fmt.Sprintf("[0-9]{1,%d}", len(n)-1)}
	for i := range len(n) {
		if d := n[i]; d > '0' {
			alts = append(alts, fmt.Sprintf("%s[0-%c][0-9]{%d}", n[:i], d-1, len(n)-i-1))
		}
	}
	return "0*(?:" + strings.Join(append(alts, n), "|") + ")"
}

// queryValueSchema is the schema of a query-string value for a field of
// type t, exactly as coerceText reads it.
// pathIDSchema is the schema of an id in a path, as ParseID reads it.
func pathIDSchema(c *apiComponents, t Type) *jsonSchema {
	s := queryValueSchema(c, t)
	if t == String {
		// ParseID counts bytes, JSON Schema characters: the description
		// says which bound holds.
		s.MaxLength = pointerTo(maxPathID)
		s.Description = fmt.Sprintf("At most %d bytes of UTF-8 (400 invalid_parameter beyond).", maxPathID)
	}
	return s
}

func queryValueSchema(c *apiComponents, t Type) *jsonSchema {
	switch t {
	case String:
		return &jsonSchema{Type: "string"}
	case Int:
		s := integerSchema(math.MinInt64, math.MaxInt64)
		s.Format = "int64"
		return s
	case Float:
		return doubleSchema()
	case Bool:
		return &jsonSchema{Type: "boolean"}
	case Date:
		return c.add("DateTimeOrDate", &jsonSchema{Type: "string", Pattern: dateQueryPattern,
			Description: "An RFC 3339 date-time (2024-05-01T12:00:00Z) or a date (2024-05-01, midnight UTC).",
			Examples:    []any{"2024-05-01T12:00:00Z", "2024-05-01"}})
	case ObjectID:
		return c.add("ObjectId", &jsonSchema{Type: "string", Pattern: objectIDPattern, Description: "An ObjectID: 24 hexadecimal digits, in either case."})
	}
	return &jsonSchema{}
}

// outputSchema is the schema of a stored value of declared type t as the
// plain JSON encoder writes it.
func outputSchema(t Type, enc *bsonjson.Encoder) *jsonSchema {
	switch t {
	case String:
		return &jsonSchema{Type: "string"}
	case Int:
		return int64Schema(enc)
	case Float:
		return floatSchema()
	case Bool:
		return &jsonSchema{Type: "boolean"}
	case Date:
		return &jsonSchema{Type: "string", Format: "date-time"}
	case ObjectID:
		return &jsonSchema{Type: "string", Pattern: objectIDOutputPattern}
	}
	return &jsonSchema{}
}

// int64Schema is an int64 as the encoder writes it: a number, or with
// Int64AsString a string beyond what a JavaScript number holds exactly.
func int64Schema(enc *bsonjson.Encoder) *jsonSchema {
	n := &jsonSchema{Type: "integer", Format: "int64"}
	if enc == nil || !enc.Int64AsString {
		return n
	}
	n.Minimum, n.Maximum = jsonInt(-bsonjson.MaxSafeInteger), jsonInt(bsonjson.MaxSafeInteger)
	return &jsonSchema{AnyOf: []*jsonSchema{n, {Type: "string", Pattern: "^-?[0-9]{16,19}$"}},
		Description: "An int64: a number within ±(2^53−1), a string of its digits beyond."}
}

// floatSchema is a double as the encoder writes it: a number, or the
// strings of the values JSON has no number for.
func floatSchema() *jsonSchema {
	return &jsonSchema{AnyOf: []*jsonSchema{doubleSchema(), {Type: "string", Enum: []any{"NaN", "Infinity", "-Infinity"}}}}
}

// doubleSchema is a finite double: the bounds keep out numbers a double
// cannot hold, which JSON can write.
func doubleSchema() *jsonSchema {
	return &jsonSchema{Type: "number", Format: "double", Minimum: "-1.7976931348623157e308", Maximum: "1.7976931348623157e308"}
}

// jsonInt writes an integer bound.
func jsonInt(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }

// integerSchema is an integer between lo and hi.
func integerSchema(lo, hi int64) *jsonSchema {
	return &jsonSchema{Type: "integer", Minimum: jsonInt(lo), Maximum: jsonInt(hi)}
}

// filterValueSchema is a value of type t in filter=, relaxed Extended JSON,
// as coerceValue takes it; with orNull, null too.
func filterValueSchema(c *apiComponents, t Type, orNull bool) *jsonSchema {
	var s *jsonSchema
	switch t {
	case String:
		s = &jsonSchema{Type: "string"}
	case Int:
		s = c.add("ExtendedInt64", &jsonSchema{AnyOf: []*jsonSchema{
			integerSchema(math.MinInt64, math.MaxInt64),
			extJSONWrapper("$numberLong", &jsonSchema{Type: "string", Pattern: int64TextPattern}),
			extJSONWrapper("$numberInt", &jsonSchema{Type: "string", Pattern: int32TextPattern}),
			extJSONWrapper("$numberDouble", &jsonSchema{Type: "string", Pattern: decimalPattern}),
		}, Description: "An integer, or {\"$numberLong\": \"…\"}, {\"$numberInt\": \"…\"}, or {\"$numberDouble\": \"…\"} with a whole value."})
	case Float:
		s = c.add("ExtendedDouble", &jsonSchema{AnyOf: []*jsonSchema{
			doubleSchema(),
			extJSONWrapper("$numberDouble", &jsonSchema{Type: "string", Pattern: decimalPattern}),
			extJSONWrapper("$numberLong", &jsonSchema{Type: "string", Pattern: int64TextPattern}),
			extJSONWrapper("$numberInt", &jsonSchema{Type: "string", Pattern: int32TextPattern}),
		}, Description: "A finite number, or {\"$numberDouble\": \"…\"}, {\"$numberLong\": \"…\"} or {\"$numberInt\": \"…\"}."})
	case Bool:
		s = &jsonSchema{Type: "boolean"}
	case Date:
		s = c.add("ExtendedDate", &jsonSchema{AnyOf: []*jsonSchema{
			queryValueSchema(c, Date),
			extJSONWrapper("$date", &jsonSchema{AnyOf: []*jsonSchema{
				queryValueSchema(c, Date),
				integerSchema(int64(minDate), int64(maxDate)),
				extJSONWrapper("$numberLong", &jsonSchema{Type: "string", Pattern: int64TextPattern}),
			}}),
		}, Description: "A date-time or a date, or {\"$date\": …} with one, with integer milliseconds since 1970, or with {\"$numberLong\": \"…\"} milliseconds; within years 0000 to 9999."})
	case ObjectID:
		s = c.add("ExtendedObjectId", &jsonSchema{AnyOf: []*jsonSchema{
			queryValueSchema(c, ObjectID),
			extJSONWrapper("$oid", queryValueSchema(c, ObjectID)),
		}, Description: "An ObjectID, or {\"$oid\": …}."})
	default:
		s = &jsonSchema{}
	}
	if !orNull {
		return s
	}
	return nullableSchema(s)
}

// extJSONWrapper is an Extended JSON type wrapper such as {"$oid": …}.
func extJSONWrapper(key string, value *jsonSchema) *jsonSchema {
	return &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{key: value},
		Required: []string{key}, AdditionalProperties: false}
}

// regexValueSchema is {"$regularExpression": {"pattern": …, "options": …}}.
func (qp *QueryParser) regexValueSchema() *jsonSchema {
	return extJSONWrapper("$regularExpression", &jsonSchema{
		Type: "object",
		Properties: map[string]*jsonSchema{
			"pattern": qp.regexPatternSchema(),
			"options": {Type: "string", Pattern: "^[imsx]{0,4}$"},
		},
		Required: []string{"pattern", "options"}, AdditionalProperties: false,
	})
}

func (qp *QueryParser) regexPatternSchema() *jsonSchema {
	return &jsonSchema{Type: "string", MaxLength: pointerTo(qp.maxRegex), Pattern: "^[^\\x00]*$",
		Description: fmt.Sprintf("A regular expression in RE2 syntax (no lookarounds or backreferences), at most %d bytes.", qp.maxRegex)}
}

// opsSchema is an operator document such as {"$gte": 30, "$lt": 40} on a
// field of type t, with the operators the policy allows; withNot adds
// $not, which may not contain itself. elemMatch is the schema of a
// $elemMatch body, nil to leave it out.
func (qp *QueryParser) opsSchema(c *apiComponents, t Type, withNot bool, elemMatch *jsonSchema) *jsonSchema {
	props := map[string]*jsonSchema{}
	scalarOrArray := func() *jsonSchema {
		return &jsonSchema{AnyOf: []*jsonSchema{filterValueSchema(c, t, true), qp.arraySchema(filterValueSchema(c, t, true))}}
	}
	for i, name := range opNames {
		o := opSet(1 << i)
		if !qp.ops.has(o) {
			continue
		}
		var s *jsonSchema
		switch o {
		case opEq, opNe:
			s = scalarOrArray()
		case opGt, opGte, opLt, opLte:
			s = filterValueSchema(c, t, false)
		case opIn, opNin:
			s = qp.arraySchema(filterValueSchema(c, t, true))
		case opAll:
			s = qp.arraySchema(filterValueSchema(c, t, false))
		case opExists:
			s = &jsonSchema{Type: "boolean"}
		case opSize:
			s = integerSchema(0, math.MaxInt32)
		case opRegex:
			if t != String {
				continue
			}
			s = &jsonSchema{AnyOf: []*jsonSchema{qp.regexPatternSchema(), qp.regexValueSchema()}}
		case opNot:
			if !withNot {
				continue
			}
			not := []*jsonSchema{qp.opsSchema(c, t, false, elemMatch)}
			if qp.ops.has(opRegex) && t == String {
				not = append(not, qp.regexValueSchema())
			}
			s = &jsonSchema{AnyOf: not}
		case opElemMatch:
			if elemMatch == nil {
				continue
			}
			s = elemMatch
		default:
			continue // and, or, nor: not per field
		}
		props["$"+name] = s
	}
	ops := &jsonSchema{Type: "object", Properties: props, AdditionalProperties: false, MinProperties: pointerTo(1)}
	if _, ok := props["$regex"]; !ok {
		return ops
	}
	// $options goes with $regex only. dependentRequired would say so in
	// one schema, but common validators drop the keyword.
	withOptions := *ops
	withOptions.Properties = maps.Clone(props)
	withOptions.Properties["$options"] = &jsonSchema{Type: "string", Pattern: "^[imsx]{0,4}$"}
	withOptions.Required = []string{"$regex", "$options"}
	return &jsonSchema{AnyOf: []*jsonSchema{ops, &withOptions}}
}

// arraySchema is an array of at most MaxInValues items.
func (qp *QueryParser) arraySchema(items *jsonSchema) *jsonSchema {
	return &jsonSchema{Type: "array", Items: items, MaxItems: pointerTo(qp.maxIn)}
}

// filterSchema returns a reference to the schema of a filter= document on
// the fields under prefix ("" at the top; "items." inside items'
// $elemMatch), named after base.
func (qp *QueryParser) filterSchema(c *apiComponents, base, prefix string) *jsonSchema {
	key := [3]string{"filter", base + qp.filterFingerprint(), prefix}
	if name, ok := c.byType[key]; ok {
		return schemaRef(name)
	}
	name := c.reserve(base + "Filter" + pascalName(prefix))
	c.byType[key] = name
	props := map[string]*jsonSchema{}
	for _, field := range qp.filterNames {
		rel, ok := strings.CutPrefix(field, prefix)
		if !ok || rel == "" {
			continue
		}
		t := qp.filter[field]
		if !qp.ops.has(opElemMatch) {
			// Without $elemMatch a condition depends on the type alone.
			props[rel] = qp.conditionRef(c, base, t)
			continue
		}
		// An empty body is neither: it is refused.
		fields := &jsonSchema{AllOf: []*jsonSchema{qp.filterSchema(c, base, field+"."), {MinProperties: pointerTo(1)}}}
		elemMatch := &jsonSchema{AnyOf: []*jsonSchema{qp.opsSchema(c, t, true, nil), fields}}
		props[rel] = qp.conditionSchema(c, t, elemMatch)
	}
	for _, o := range []opSet{opAnd, opOr, opNor} {
		if qp.ops.has(o) {
			props[o.key()] = &jsonSchema{Type: "array", Items: schemaRef(name), MinItems: pointerTo(1), MaxItems: pointerTo(qp.maxIn)}
		}
	}
	c.schemas[name] = &jsonSchema{
		Type: "object", Properties: props, AdditionalProperties: false,
		Description: "A filter document in relaxed Extended JSON. Values take their field's type; ObjectID fields also take {\"$oid\": …} and date fields {\"$date\": …}.",
	}
	return schemaRef(name)
}

// filterFingerprint sums up what the filter schemas depend on, so that
// declarations with equal policies share them.
func (qp *QueryParser) filterFingerprint() string {
	var b strings.Builder
	for _, n := range qp.filterNames {
		fmt.Fprintf(&b, "%s:%d,", n, qp.filter[n])
	}
	fmt.Fprintf(&b, "|%d|%d|%d", qp.ops, qp.maxIn, qp.maxRegex)
	return b.String()
}

// conditionSchema is what a field of type t is compared with in filter=:
// a value, an array (exact array equality), an operator document or a
// regular expression.
func (qp *QueryParser) conditionSchema(c *apiComponents, t Type, elemMatch *jsonSchema) *jsonSchema {
	var cond []*jsonSchema
	if qp.ops.has(opEq) {
		cond = append(cond, filterValueSchema(c, t, true), qp.arraySchema(filterValueSchema(c, t, true)))
	}
	cond = append(cond, qp.opsSchema(c, t, true, elemMatch))
	if qp.ops.has(opRegex) && t == String {
		cond = append(cond, qp.regexValueSchema())
	}
	return &jsonSchema{AnyOf: cond, Description: fmt.Sprintf("A condition on %s field: a value, an array, or operators.", withArticle(t))}
}

// conditionRef returns a reference to the condition schema of type t,
// named after base.
func (qp *QueryParser) conditionRef(c *apiComponents, base string, t Type) *jsonSchema {
	key := [3]string{"condition", base + qp.filterFingerprint(), t.String()}
	if name, ok := c.byType[key]; ok {
		return schemaRef(name)
	}
	r := c.add(base+pascalName(t.String())+"Condition", qp.conditionSchema(c, t, nil))
	c.byType[key] = strings.TrimPrefix(r.Ref, "#/components/schemas/")
	return r
}

// pascalName turns a collection name or a path into a schema name part:
// "user_posts" → "UserPosts", "items." → "Items".
func pascalName(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			if up && r >= 'a' && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			up = false
		default:
			up = true
		}
	}
	return b.String()
}

// withArticle names a type with its article: "an int", "a date".
func withArticle(t Type) string {
	if name := t.String(); strings.ContainsRune("aeiouAEIOU", rune(name[0])) {
		return "an " + name
	}
	return "a " + t.String()
}

// serverErrorAnswers are the answers of any handler that queries the database.
func serverErrorAnswers() []apiResponse {
	return []apiResponse{
		{status: http.StatusInternalServerError, description: "An unexpected failure, logged on the server.", problems: []*Error{ErrInternal}},
		{status: http.StatusServiceUnavailable, description: "The database cannot be reached, or too many requests are in progress. Retry after the number of seconds in Retry-After.",
			problems: []*Error{ErrUnavailable, ErrOverloaded}, headers: []apiHeader{retryAfterHeader()}},
		{status: http.StatusGatewayTimeout, description: "The query did not finish within its time limit.", problems: []*Error{ErrTimeout}},
	}
}

func retryAfterHeader() apiHeader {
	return apiHeader{name: "Retry-After", description: "Seconds to wait before retrying.", required: true, schema: &jsonSchema{Type: "integer", Minimum: "0"}}
}

// problemsFrom adds to rs the problems of extra that a handler may answer
// besides its own (a BaseFilter's, say), each under its status.
func problemsFrom(rs []apiResponse, extra []*Error) []apiResponse {
	for _, e := range extra {
		i := slices.IndexFunc(rs, func(r apiResponse) bool { return r.status == e.Status })
		if i < 0 {
			rs = append(rs, apiResponse{status: e.Status, description: e.Title + "."})
			i = len(rs) - 1
		}
		if !slices.ContainsFunc(rs[i].problems, func(p *Error) bool { return p.Code == e.Code }) {
			rs[i].problems = append(rs[i].problems, e)
		}
	}
	slices.SortStableFunc(rs, func(a, b apiResponse) int { return a.status - b.status })
	return rs
}
