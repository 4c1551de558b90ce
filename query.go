package mongohttp

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Type is the declared type of a filterable field. Query-string values are
// converted to it, and filter= values must already be of it (with the few
// conversions listed on each constant), so a client can never compare a field
// with a value of a type the application did not intend.
type Type int

// The types a filterable field may be declared with.
const (
	// String fields take the query-string value as is; filter= needs a JSON string.
	String Type = iota + 1
	// Int fields are stored in filters as int64. Documents holding int32 or
	// double values still match, because MongoDB compares numbers across
	// numeric types. filter= accepts any JSON number with an integral value.
	Int
	// Float fields are stored in filters as float64; filter= accepts any
	// finite JSON number. NaN and infinities are refused.
	Float
	// Bool fields take "true" or "false".
	Bool
	// Date fields are stored as bson.DateTime (milliseconds). They take
	// RFC 3339 timestamps ("2024-05-01T12:00:00Z") or plain dates
	// ("2024-05-01", midnight UTC); filter= also accepts {"$date": …}.
	Date
	// ObjectID fields are stored as bson.ObjectID. They take 24 hexadecimal
	// digits; filter= also accepts {"$oid": …}. Anything else is
	// invalid_object_id.
	ObjectID
)

// String returns the type's name as used in error details.
func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Int:
		return "int"
	case Float:
		return "float"
	case Bool:
		return "bool"
	case Date:
		return "date"
	case ObjectID:
		return "ObjectID"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// expects describes, for error details, the values a field of type t takes.
func (t Type) expects() string {
	switch t {
	case String:
		return "a string"
	case Int:
		return "an integer"
	case Float:
		return "a finite number"
	case Bool:
		return "true or false"
	case Date:
		return "a date (RFC 3339 or YYYY-MM-DD)"
	case ObjectID:
		return "an ObjectID (24 hexadecimal digits)"
	}
	return "nothing"
}

// Policy says what clients may ask of a collection. It denies by default: the
// zero Policy allows filtering by _id only, sorting by _id only, no fields=
// parameter and no regular expressions. Compile it with NewQueryParser.
type Policy struct {
	// Filter maps the fields that may be filtered to their declared types.
	// Dotted paths ("profile.city") are allowed and must be listed exactly:
	// listing "profile.city" allows neither "profile" nor "profile.zip".
	// Default (nil) is: only "_id", which is an ObjectID field unless listed
	// here with another type.
	Filter map[string]Type

	// Sort lists the fields ?sort= may name. "_id" is always sortable and is
	// appended to every sort as the final tie-breaker, which keyset paging
	// needs. Default (nil) is: "_id" only.
	Sort []string

	// DefaultSort is the sort used when the request has no ?sort=, in the
	// same grammar ("-created,name"). Default is "_id".
	DefaultSort string

	// Project lists the fields ?fields= may name ("_id" is always included).
	// Default (nil) is: ?fields= refused, and every field but the Hidden ones
	// is returned.
	Project []string

	// Hidden lists fields that never appear in any output, whatever is asked,
	// and that can never be filtered, sorted or projected. Listing a hidden
	// field, or an ancestor or descendant of one, in Filter, Sort or Project
	// is a configuration error: comparing or including "profile" would reach
	// a hidden "profile.secret". "_id" cannot be hidden. Default is none.
	Hidden []string

	// Operators lists the operators clients may use, without "$". When set it
	// replaces the default, so start from DefaultOperators() to add one.
	// Known operators: eq ne gt gte lt lte in nin exists regex all size
	// elemMatch (per field) and and or nor not (filter= only). $where,
	// $function, $accumulator, $expr and anything else are never available.
	// Default is DefaultOperators(): eq ne gt gte lt lte in nin exists and or
	// nor not.
	Operators []string

	// MaxRegexLength caps the length in bytes of a regex pattern. Patterns
	// must also be valid RE2 syntax, a subset of what MongoDB accepts, which
	// keeps lookarounds and backreferences out. Default is 64.
	MaxRegexLength int

	// DefaultLimit is the page size when the request has no ?limit=.
	// Default is 20.
	DefaultLimit int

	// MaxLimit is the largest ?limit= accepted; above it the answer is
	// limit_exceeded. Default is 100.
	MaxLimit int

	// MaxSkip is the largest ?skip= accepted. Large skips make the server
	// walk and discard documents; use ?after= to go deep. Default is 1000.
	MaxSkip int

	// MaxFilterDepth caps the nesting of filter=. The filter document is
	// level 1, and each document inside it adds a level: a field's operator
	// document, each clause of and/or/nor, and the body of not and elemMatch.
	// So {"a":{"$gt":1}} has depth 2 and {"$or":[{"a":{"$gt":1}}]} depth 3.
	// Default is 8.
	MaxFilterDepth int

	// MaxFilterBytes caps the length of filter= after percent-decoding.
	// Default is 2048.
	MaxFilterBytes int

	// MaxInValues caps the values of in, nin and all, the elements of an
	// array equality value, and the clauses of and, or and nor. Default is 100.
	MaxInValues int

	// MaxQueryBytes caps the whole raw query string. It must leave room for
	// an after token (at most 1024 bytes). Default is 4096.
	MaxQueryBytes int

	// ExtraParameters names query parameters the parser accepts and ignores,
	// for the application's own use (for example "pretty"). They may not
	// collide with reserved or filterable names. Default is none.
	ExtraParameters []string

	// CursorKey is the HMAC-SHA256 key that signs after tokens; it must be at
	// least 16 bytes. Default is a random key made once per process, so
	// tokens stop working across restarts and are not accepted by other
	// instances: services behind a load balancer must share a key.
	CursorKey []byte
}

// DefaultOperators returns the operators a Policy allows when its Operators
// field is nil: eq ne gt gte lt lte in nin exists, and the logical and or nor
// not, which only combine predicates that are themselves checked.
func DefaultOperators() []string {
	return []string{"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists", "and", "or", "nor", "not"}
}

// reservedParameters are the query parameter names with a meaning of their
// own. A filterable field with one of these names keeps working through the
// bracket form (count[eq]=3) and filter=; only the plain form is taken.
var reservedParameters = []string{"filter", "sort", "fields", "limit", "skip", "after", "count"}

// CountMode is the count a request asks for with ?count=.
type CountMode string

// The count modes.
const (
	// CountNone asks for no count; it is the default because counting can
	// cost more than the page itself.
	CountNone CountMode = ""
	// CountExact asks for the number of documents matching the filter.
	CountExact CountMode = "exact"
	// CountEstimated asks for the collection's estimated size, from metadata.
	CountEstimated CountMode = "estimated"
)

// Query is a parsed, validated request. Everything in it references only
// fields and operators the policy allows.
type Query struct {
	// Filter is the validated client filter with the keyset condition of
	// ?after= included; an empty document when there is none. Query-string
	// conditions and filter= are combined with $and.
	Filter bson.D
	// CountFilter is Filter without the keyset condition: the filter to count
	// with, so that every page reports the same total.
	CountFilter bson.D
	// Sort always ends with, or contains, the _id tie-breaker.
	Sort bson.D
	// Projection never includes hidden fields. Without ?fields= it excludes
	// them; with ?fields= it includes the fields named plus the sort fields,
	// which NextToken needs. An empty document when there is nothing to
	// exclude.
	Projection bson.D
	// Limit is between 1 and the policy's MaxLimit.
	Limit int64
	// Skip is between 0 and the policy's MaxSkip; 0 when After is used.
	Skip int64
	// Count is the count asked for.
	Count CountMode
}

// QueryParser is a compiled Policy. Build it once with NewQueryParser; it is
// safe for concurrent use.
type QueryParser struct {
	filter       map[string]Type
	filterNames  []string        // sorted, for error details
	sortable     map[string]bool // includes _id
	sortNames    []string
	project      map[string]bool // nil when ?fields= is refused; includes _id
	projectNames []string
	hidden       []string
	exclusion    bson.D          // projection used without ?fields=
	related      map[string]bool // names that are recognisably fields, see unknownName
	extras       map[string]bool
	ops          opSet
	defaultSort  bson.D
	accepted     string // parameter list for unknown_parameter details
	acceptedOne  string // the same for ParseProjection

	maxRegex, defaultLimit, maxLimit, maxSkip int
	maxDepth, maxFilterBytes, maxIn, maxQuery int
	key                                       []byte
}

func isReserved(name string) bool { return slices.Contains(reservedParameters, name) }

// NewQueryParser checks p and compiles it. Mistakes in the policy are
// reported here, as plain errors, rather than as surprises at request time.
func NewQueryParser(p Policy) (*QueryParser, error) {
	qp := &QueryParser{
		filter:   map[string]Type{"_id": ObjectID},
		sortable: map[string]bool{"_id": true},
		related:  map[string]bool{},
		extras:   map[string]bool{},
		key:      processKey(),
	}
	var err error
	if qp.ops, err = parseOperators(p.Operators); err != nil {
		return nil, err
	}
	for _, h := range p.Hidden {
		if err := checkPolicyPath("Hidden", h); err != nil {
			return nil, err
		}
		if h == "_id" {
			return nil, errors.New("mongohttp: Policy.Hidden: _id cannot be hidden; it is the paging tie-breaker")
		}
		qp.hidden = append(qp.hidden, h)
		qp.exclusion = append(qp.exclusion, bson.E{Key: h, Value: int32(0)})
	}
	for name, t := range p.Filter {
		if err := qp.checkVisible("Filter", name); err != nil {
			return nil, err
		}
		if t < String || t > ObjectID {
			return nil, fmt.Errorf("mongohttp: Policy.Filter: field %q has invalid type %v", name, t)
		}
		qp.filter[name] = t
	}
	for name := range qp.filter {
		qp.filterNames = append(qp.filterNames, name)
		qp.addRelated(name)
	}
	slices.Sort(qp.filterNames)
	qp.sortNames = []string{"_id"}
	if err := qp.addFields("Sort", p.Sort, qp.sortable, &qp.sortNames); err != nil {
		return nil, err
	}
	if p.Project != nil {
		qp.project = map[string]bool{"_id": true}
		qp.projectNames = []string{"_id"}
		if err := qp.addFields("Project", p.Project, qp.project, &qp.projectNames); err != nil {
			return nil, err
		}
	}
	for _, name := range p.ExtraParameters {
		if name == "" || !utf8.ValidString(name) || strings.ContainsAny(name, "[]\x00") {
			return nil, fmt.Errorf("mongohttp: Policy.ExtraParameters: invalid name %q", name)
		}
		if isReserved(name) {
			return nil, fmt.Errorf("mongohttp: Policy.ExtraParameters: %q is a reserved parameter", name)
		}
		if _, ok := qp.filter[name]; ok {
			return nil, fmt.Errorf("mongohttp: Policy.ExtraParameters: %q is also a filterable field", name)
		}
		qp.extras[name] = true
	}

	limits := []struct {
		name string
		v    int
		def  int
		dst  *int
	}{
		{"MaxRegexLength", p.MaxRegexLength, 64, &qp.maxRegex},
		{"DefaultLimit", p.DefaultLimit, 20, &qp.defaultLimit},
		{"MaxLimit", p.MaxLimit, 100, &qp.maxLimit},
		{"MaxSkip", p.MaxSkip, 1000, &qp.maxSkip},
		{"MaxFilterDepth", p.MaxFilterDepth, 8, &qp.maxDepth},
		{"MaxFilterBytes", p.MaxFilterBytes, 2048, &qp.maxFilterBytes},
		{"MaxInValues", p.MaxInValues, 100, &qp.maxIn},
		{"MaxQueryBytes", p.MaxQueryBytes, 4096, &qp.maxQuery},
	}
	for _, l := range limits {
		switch {
		case l.v < 0:
			return nil, fmt.Errorf("mongohttp: Policy.%s is negative", l.name)
		case l.v == 0:
			*l.dst = l.def
		default:
			*l.dst = l.v
		}
	}
	if qp.defaultLimit > qp.maxLimit {
		return nil, fmt.Errorf("mongohttp: Policy.DefaultLimit %d is above MaxLimit %d", qp.defaultLimit, qp.maxLimit)
	}
	if p.CursorKey != nil {
		if len(p.CursorKey) < 16 {
			return nil, errors.New("mongohttp: Policy.CursorKey must be at least 16 bytes")
		}
		qp.key = slices.Clone(p.CursorKey)
	}

	ds := p.DefaultSort
	if ds == "" {
		ds = "_id"
	}
	if qp.defaultSort, err = qp.parseSort(ds); err != nil {
		// A plain error: this is the application's mistake, not a client's.
		return nil, fmt.Errorf("mongohttp: Policy.DefaultSort: %s", AsError(err).Detail)
	}

	// Filterable fields first: they are what a typo most likely meant.
	accepted := slices.DeleteFunc(slices.Clone(qp.filterNames), isReserved)
	for _, r := range reservedParameters {
		if r != "fields" || qp.project != nil {
			accepted = append(accepted, r)
		}
	}
	qp.accepted = nameList(append(accepted, p.ExtraParameters...))
	var one []string
	if qp.project != nil {
		one = append(one, "fields")
	}
	qp.acceptedOne = nameList(append(one, p.ExtraParameters...))
	if qp.acceptedOne == "" {
		qp.acceptedOne = "none"
	}
	return qp, nil
}

// addFields checks the names of a Sort or Project list and adds them to set
// and list.
func (qp *QueryParser) addFields(what string, names []string, set map[string]bool, list *[]string) error {
	for _, name := range names {
		if err := qp.checkVisible(what, name); err != nil {
			return err
		}
		if !set[name] {
			set[name] = true
			*list = append(*list, name)
		}
		qp.addRelated(name)
	}
	return nil
}

// checkVisible checks a field named in Filter, Sort or Project: a valid path
// that is neither hidden nor related to a hidden field.
func (qp *QueryParser) checkVisible(what, name string) error {
	if err := checkPolicyPath(what, name); err != nil {
		return err
	}
	for _, h := range qp.hidden {
		if name == h || isAncestor(name, h) || isAncestor(h, name) {
			return fmt.Errorf("mongohttp: Policy.%s: field %q would reach hidden field %q", what, name, h)
		}
	}
	return nil
}

func checkPolicyPath(what, name string) error {
	if !validPath(name) || strings.ContainsAny(name, "[],") || strings.HasPrefix(name, "-") {
		return fmt.Errorf("mongohttp: Policy.%s: invalid field name %q", what, name)
	}
	return nil
}

// addRelated records name and its ancestors as names a client would only
// use meaning a field, so that a wrong one is reported as field_not_allowed.
func (qp *QueryParser) addRelated(name string) {
	for {
		qp.related[name] = true
		i := strings.LastIndexByte(name, '.')
		if i < 0 {
			return
		}
		name = name[:i]
	}
}

// validPath reports whether name is a usable field path: valid UTF-8, no NUL,
// no "$" anywhere (operators and positional paths stay out), no empty
// segment.
func validPath(name string) bool {
	if name == "" || !utf8.ValidString(name) || strings.ContainsAny(name, "$\x00") {
		return false
	}
	return !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".") && !strings.Contains(name, "..")
}

// isAncestor reports whether path a is a proper ancestor of path b.
func isAncestor(a, b string) bool {
	return len(b) > len(a) && b[len(a)] == '.' && strings.HasPrefix(b, a)
}

// Hidden returns the policy's hidden fields.
func (qp *QueryParser) Hidden() []string { return slices.Clone(qp.hidden) }

// ParseID parses an id taken from a request path according to the declared
// type of _id. With the default ObjectID type a bad id is invalid_object_id;
// with other types it is invalid_parameter.
func (qp *QueryParser) ParseID(s string) (any, error) {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return nil, ErrInvalidParameter.Detailf("the id is not valid UTF-8 text")
	}
	return coerceText("_id", qp.filter["_id"], s)
}

// parseState accumulates one Parse call.
type parseState struct {
	qp    *QueryParser
	conds []fieldCond

	filter, sort, fields, after   string
	hasFilter, hasSort, hasFields bool
	hasAfter, hasSkip             bool
	limit, skip                   int64
	count                         CountMode
}

// fieldCond gathers the query-string conditions on one field, in order.
type fieldCond struct {
	field string
	ops   bson.D
	plain bool // the only condition is a plain field=value equality
}

// Parse parses and validates r.URL.RawQuery. Errors are *Error values (400)
// matching one of ErrInvalidParameter, ErrUnknownParameter,
// ErrFieldNotAllowed, ErrOperatorNotAllowed, ErrLimitExceeded,
// ErrInvalidCursor and ErrInvalidObjectID under errors.Is.
func (qp *QueryParser) Parse(rawQuery string) (*Query, error) {
	p := parseState{qp: qp, limit: int64(qp.defaultLimit)}
	if err := qp.scan(rawQuery, p.param); err != nil {
		return nil, err
	}
	return p.finish()
}

// ParseProjection parses the query string of a single-document request,
// which takes only ?fields= and the extra parameters. Encoding, size,
// duplicates and unknown names follow the rules of Parse, and the
// projection is Parse's, without the sort fields that only a page needs.
func (qp *QueryParser) ParseProjection(rawQuery string) (bson.D, error) {
	fields, has := "", false
	err := qp.scan(rawQuery, func(key, val string) error {
		switch {
		case key == "fields":
			fields, has = val, true
		case qp.extras[key]:
		default:
			return ErrUnknownParameter.Detailf("unknown parameter %s; accepted: %s", clip(key), qp.acceptedOne)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return qp.projection(fields, has, nil)
}

// scan splits a raw query string into decoded parameters and hands each to
// param, refusing oversized strings, bad encodings and repeated names.
func (qp *QueryParser) scan(rawQuery string, param func(key, val string) error) error {
	if len(rawQuery) > qp.maxQuery {
		return ErrLimitExceeded.Detailf("the query string is %d bytes long; the maximum is %d", len(rawQuery), qp.maxQuery)
	}
	// A slice is enough: every name must be known to the policy, so an
	// unknown one ends the scan before the list can grow long.
	var seen []string
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key, err := unescape(rawKey)
		if err != nil {
			return ErrInvalidParameter.Detailf("parameter name %s %s", clip(rawKey), err)
		}
		val, err := unescape(rawVal)
		if err != nil {
			return ErrInvalidParameter.Detailf("the value of parameter %s %s", clip(key), err)
		}
		if key == "" {
			return ErrInvalidParameter.Detailf("a parameter has an empty name")
		}
		if slices.Contains(seen, key) {
			return ErrInvalidParameter.Detailf("parameter %s is given more than once", clip(key))
		}
		seen = append(seen, key)
		if err := param(key, val); err != nil {
			return err
		}
	}
	return nil
}

// unescape percent-decodes a query component and checks that the result is
// text: valid UTF-8 without NUL.
func unescape(s string) (string, error) {
	if strings.ContainsAny(s, "%+") {
		u, err := url.QueryUnescape(s)
		if err != nil {
			return "", errors.New("is not correctly percent-encoded")
		}
		s = u
	}
	if !utf8.ValidString(s) {
		return "", errors.New("is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("contains a NUL byte")
	}
	return s, nil
}

func (p *parseState) param(key, val string) error {
	var err error
	switch key {
	case "filter":
		p.filter, p.hasFilter = val, true
	case "sort":
		p.sort, p.hasSort = val, true
	case "fields":
		p.fields, p.hasFields = val, true
	case "after":
		p.after, p.hasAfter = val, true
	case "limit":
		p.limit, err = parseCount("limit", val, 1, p.qp.maxLimit)
	case "skip":
		p.skip, err = parseCount("skip", val, 0, p.qp.maxSkip)
		p.hasSkip = true
	case "count":
		switch CountMode(val) {
		case CountExact, CountEstimated:
			p.count = CountMode(val)
		default:
			err = ErrInvalidParameter.Detailf("count must be %q or %q, not %s", CountExact, CountEstimated, clip(val))
		}
	default:
		if p.qp.extras[key] {
			return nil
		}
		err = p.fieldParam(key, val)
	}
	return err
}

// parseCount parses limit or skip: decimal digits only, between lo and hi.
// A number above hi, however long, is limit_exceeded; anything that is not
// a number is invalid_parameter.
func parseCount(name, s string, lo, hi int) (int64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, ErrInvalidParameter.Detailf("%s must be a whole number between %d and %d, not %s", name, lo, hi, clip(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > int64(hi) {
		return 0, ErrLimitExceeded.Detailf("%s must be at most %d", name, hi)
	}
	if n < int64(lo) {
		return 0, ErrInvalidParameter.Detailf("%s must be at least %d", name, lo)
	}
	return n, nil
}

// fieldParam handles name=value and name[op]=value.
func (p *parseState) fieldParam(key, val string) error {
	qp := p.qp
	name, opName, hasOp := key, "", false
	if i := strings.IndexByte(key, '['); i >= 0 {
		if !strings.HasSuffix(key, "]") || strings.ContainsAny(key[i+1:len(key)-1], "[]") || i == 0 {
			return ErrInvalidParameter.Detailf("parameter %s is malformed; use name=value or name[operator]=value", clip(key))
		}
		name, opName, hasOp = key[:i], key[i+1:len(key)-1], true
	} else if strings.IndexByte(key, ']') >= 0 {
		return ErrInvalidParameter.Detailf("parameter %s is malformed; use name=value or name[operator]=value", clip(key))
	}
	o := opEq
	if hasOp {
		var err error
		if o, err = qp.queryOperator(opName); err != nil {
			return err
		}
		if _, ok := qp.filter[name]; !ok {
			return qp.fieldNotAllowed(name)
		}
	} else if _, ok := qp.filter[name]; !ok {
		return qp.unknownName(name)
	} else if !qp.ops.has(opEq) {
		return ErrOperatorNotAllowed.Detailf("equality filters are not allowed")
	}
	typ := qp.filter[name]
	var v any
	var err error
	switch o {
	case opEq, opNe, opGt, opGte, opLt, opLte:
		v, err = coerceText(name, typ, val)
	case opIn, opNin, opAll:
		v, err = p.list(name, typ, o, val)
	case opExists:
		v, err = parseBool(name, "exists", val)
	case opRegex:
		v, err = qp.checkRegex(name, typ, val)
	case opSize:
		v, err = parseSize(val)
	default:
		return ErrInvalidParameter.Detailf("operator %q can only be used in filter=", o.name())
	}
	if err != nil {
		return err
	}
	return p.add(name, o, v, !hasOp)
}

// queryOperator resolves the operator of name[op]. "$" is refused with a
// hint: operators are written bare, and a client sending one is probing.
func (qp *QueryParser) queryOperator(opName string) (opSet, error) {
	if strings.HasPrefix(opName, "$") {
		return 0, ErrOperatorNotAllowed.Detailf("operator %s is not allowed; write operators without \"$\", as in age[gte]=30", clip(opName))
	}
	o := operatorByName(opName)
	if o == 0 || !qp.ops.has(o) {
		return 0, ErrOperatorNotAllowed.Detailf("operator %s is not allowed; allowed: %s", clip(opName), qp.ops)
	}
	return o, nil
}

// unknownName reports a plain parameter that is neither reserved, extra nor
// filterable. Names that can only mean a field (dotted paths, names of
// sortable or projectable fields and their ancestors) are field_not_allowed;
// others are unknown_parameter, because typos must not pass silently. Hidden
// fields are deliberately not told apart from unknown names.
func (qp *QueryParser) unknownName(name string) error {
	switch {
	case strings.HasPrefix(name, "$"):
		return ErrOperatorNotAllowed.Detailf("operator %s is not allowed as a parameter; use name[operator]=value or filter=", clip(name))
	case strings.Contains(name, ".") || qp.related[name]:
		return qp.fieldNotAllowed(name)
	}
	return ErrUnknownParameter.Detailf("unknown parameter %s; accepted: %s", clip(name), qp.accepted)
}

func (qp *QueryParser) fieldNotAllowed(name string) error {
	return ErrFieldNotAllowed.Detailf("field %s may not be filtered; filterable: %s", clip(name), nameList(qp.filterNames))
}

// list parses the comma-separated values of in, nin and all.
func (p *parseState) list(name string, typ Type, o opSet, val string) (bson.A, error) {
	if n := strings.Count(val, ",") + 1; n > p.qp.maxIn {
		return nil, ErrLimitExceeded.Detailf("%s[%s] has %d values; the maximum is %d", clip(name), o.name(), n, p.qp.maxIn)
	}
	parts := strings.Split(val, ",")
	out := make(bson.A, len(parts))
	for i, s := range parts {
		v, err := coerceText(name, typ, s)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func parseBool(name, what, s string) (bool, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, ErrInvalidParameter.Detailf("%s of field %s must be true or false, not %s", what, clip(name), clip(s))
}

func parseSize(s string) (int64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, ErrInvalidParameter.Detailf("size must be a whole number, not %s", clip(s))
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, ErrInvalidParameter.Detailf("size %s is too large", clip(s))
	}
	return n, nil
}

// add records a query-string condition, refusing a second condition with
// the same operator on the same field (a plain equality counts as eq).
func (p *parseState) add(name string, o opSet, v any, plain bool) error {
	key := o.key()
	for i := range p.conds {
		c := &p.conds[i]
		if c.field != name {
			continue
		}
		for _, e := range c.ops {
			if e.Key == key {
				return ErrInvalidParameter.Detailf("field %s has two %s conditions", clip(name), o.name())
			}
		}
		c.ops = append(c.ops, bson.E{Key: key, Value: v})
		c.plain = false
		return nil
	}
	p.conds = append(p.conds, fieldCond{field: name, ops: bson.D{{Key: key, Value: v}}, plain: plain})
	return nil
}

// finish checks the combinations of parameters and assembles the Query.
func (p *parseState) finish() (*Query, error) {
	qp := p.qp
	q := &Query{Limit: p.limit, Skip: p.skip, Count: p.count}
	if p.hasSort {
		var err error
		if q.Sort, err = qp.parseSort(p.sort); err != nil {
			return nil, err
		}
	} else {
		q.Sort = slices.Clone(qp.defaultSort)
	}
	if p.hasAfter && p.hasSkip {
		return nil, ErrInvalidParameter.Detailf("after and skip cannot be combined; after already starts where the previous page ended")
	}

	var parts []bson.D
	if len(p.conds) > 0 {
		d := make(bson.D, 0, len(p.conds))
		for _, c := range p.conds {
			if c.plain {
				d = append(d, bson.E{Key: c.field, Value: c.ops[0].Value})
			} else {
				d = append(d, bson.E{Key: c.field, Value: c.ops})
			}
		}
		parts = append(parts, d)
	}
	if p.hasFilter {
		f, err := qp.parseFilter(p.filter)
		if err != nil {
			return nil, err
		}
		if len(f) > 0 {
			parts = append(parts, f)
		}
	}
	q.CountFilter = combine(parts)
	if p.hasAfter {
		ks, err := qp.keysetCondition(p.after, q.Sort)
		if err != nil {
			return nil, err
		}
		parts = append(parts, ks)
	}
	q.Filter = combine(parts)

	var err error
	if q.Projection, err = qp.projection(p.fields, p.hasFields, q.Sort); err != nil {
		return nil, err
	}
	return q, nil
}

// combine ANDs filter documents, without a $and for zero or one of them.
func combine(parts []bson.D) bson.D {
	switch len(parts) {
	case 0:
		return bson.D{}
	case 1:
		return parts[0]
	}
	a := make(bson.A, len(parts))
	for i, d := range parts {
		a[i] = d
	}
	return bson.D{{Key: "$and", Value: a}}
}

// parseSort parses "-age,name" against the sortable fields and appends the
// _id tie-breaker unless _id is already there.
func (qp *QueryParser) parseSort(s string) (bson.D, error) {
	var d bson.D
	hasID := false
	for _, item := range strings.Split(s, ",") {
		dir := int32(1)
		name := item
		if strings.HasPrefix(name, "-") {
			dir, name = -1, name[1:]
		}
		if name == "" {
			return nil, ErrInvalidParameter.Detailf("sort %s has an empty field; use sort=-age,name", clip(s))
		}
		if !qp.sortable[name] {
			return nil, ErrFieldNotAllowed.Detailf("field %s may not be sorted; sortable: %s", clip(name), nameList(qp.sortNames))
		}
		for _, e := range d {
			if e.Key == name {
				return nil, ErrInvalidParameter.Detailf("sort names field %s twice", clip(name))
			}
		}
		hasID = hasID || name == "_id"
		d = append(d, bson.E{Key: name, Value: dir})
	}
	if !hasID {
		d = append(d, bson.E{Key: "_id", Value: int32(1)})
	}
	return d, nil
}

// projection builds the projection: without ?fields= the exclusion of hidden
// fields; with it, an inclusion of the fields named plus the sort fields, so
// that NextToken finds the sort key of the last document.
func (qp *QueryParser) projection(fields string, has bool, sort bson.D) (bson.D, error) {
	if !has {
		// Never nil: the driver cannot marshal a nil bson.D.
		return append(bson.D{}, qp.exclusion...), nil
	}
	if qp.project == nil {
		return nil, ErrFieldNotAllowed.Detailf("this collection does not accept fields=; every visible field is returned")
	}
	var names []string
	for _, name := range strings.Split(fields, ",") {
		if name == "" {
			return nil, ErrInvalidParameter.Detailf("fields %s has an empty field; use fields=name,email", clip(fields))
		}
		if !qp.project[name] {
			return nil, ErrFieldNotAllowed.Detailf("field %s may not be projected; projectable: %s", clip(name), nameList(qp.projectNames))
		}
		for _, prev := range names {
			if prev == name || isAncestor(prev, name) || isAncestor(name, prev) {
				return nil, ErrInvalidParameter.Detailf("fields %s and %s overlap", clip(prev), clip(name))
			}
		}
		names = append(names, name)
	}
	for _, e := range sort {
		s := e.Key
		covered := false
		for _, n := range names {
			if n == s || isAncestor(n, s) {
				covered = true
				break
			}
		}
		if covered || s == "_id" {
			continue
		}
		// A sort field that contains named fields replaces them: MongoDB
		// refuses overlapping paths in one projection.
		names = slices.DeleteFunc(names, func(n string) bool { return isAncestor(s, n) })
		names = append(names, s)
	}
	d := make(bson.D, len(names))
	for i, n := range names {
		d[i] = bson.E{Key: n, Value: int32(1)}
	}
	return d, nil
}

// coerceText converts a query-string value to the field's declared type.
func coerceText(name string, typ Type, s string) (any, error) {
	bad := func() error {
		return ErrInvalidParameter.Detailf("field %s takes %s, not %s", clip(name), typ.expects(), clip(s))
	}
	switch typ {
	case String:
		return s, nil
	case Int:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, bad()
		}
		return n, nil
	case Float:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !finite(f) {
			return nil, bad()
		}
		return f, nil
	case Bool:
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, bad()
	case Date:
		t, ok := parseDate(s)
		if !ok {
			return nil, bad()
		}
		return t, nil
	case ObjectID:
		id, err := bson.ObjectIDFromHex(s)
		if err != nil {
			return nil, ErrInvalidObjectID.Detailf("field %s takes an ObjectID (24 hexadecimal digits), not %s", clip(name), clip(s))
		}
		return id, nil
	}
	return nil, bad()
}

// parseDate accepts RFC 3339 timestamps and plain YYYY-MM-DD dates (UTC).
func parseDate(s string) (bson.DateTime, bool) {
	layout := time.RFC3339Nano
	if len(s) == len(time.DateOnly) {
		layout = time.DateOnly
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return 0, false
	}
	return bson.NewDateTimeFromTime(t), true
}

// clip quotes client input for an error detail, cut to a readable length so
// that huge or binary input is never echoed whole.
func clip(s string) string {
	const max = 48
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// nameList joins names for an error detail, cut after a screenful.
func nameList(names []string) string {
	const max = 24
	if len(names) > max {
		return strings.Join(names[:max], ", ") + ", …"
	}
	return strings.Join(names, ", ")
}
