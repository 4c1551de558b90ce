package mongohttp

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	//
	// Writes take a JSON number that denotes an integer exactly, read from
	// its decimal text (42, 1e3 and 3.0, not 1.5 or 1e-400), within the
	// range of the Go field of the Collection's document type that holds
	// it (an int32 field takes int32 values, a uint8 field 0 to 255), and
	// never beyond ±(2^53−1): larger integers would be stored exactly and
	// read back rounded by JavaScript clients, whose numbers are doubles.
	// Anything else is a 422 invalid_value at the field's pointer. Values
	// that fit in an int32 are stored as int32, others as int64; the API
	// document states the format (int32 or int64) and the range.
	Int
	// Float fields are stored in filters as float64; filter= accepts any
	// finite JSON number. NaN and infinities are refused.
	Float
	// Bool fields take "true" or "false".
	Bool
	// Date fields are stored as bson.DateTime (milliseconds). They take
	// RFC 3339 timestamps ("2024-05-01T12:00:00Z") or plain dates
	// ("2024-05-01", midnight UTC), in the query string, as filter= strings
	// and as {"$date": …}, which also takes integer milliseconds since the
	// epoch (a JSON integer or {"$numberLong": …}). Every form must fall
	// within years 0000 to 9999 UTC; anything else is invalid_parameter.
	Date
	// ObjectID fields are stored as bson.ObjectID. They take 24 hexadecimal
	// digits, in either case; filter= also accepts {"$oid": …}. Anything
	// else, NUL bytes and invalid UTF-8 included, is invalid_object_id, in
	// the path (QueryParser.ParseID), the query string and filter= alike.
	ObjectID
)

// arrayOf marks a Type as an array of the type in its low bits.
const arrayOf Type = 1 << 8

// ArrayOf declares a writable field holding an array of t, for Policy.Write:
// ArrayOf(String) is a list of strings. Arrays of arrays and of objects
// cannot be declared. Filter fields take the element type instead, since a
// filter compares a value with each element of an array.
func ArrayOf(t Type) Type {
	if t&arrayOf != 0 {
		return arrayOf // no element type: NewQueryParser refuses it
	}
	return t | arrayOf
}

// scalar reports whether t is one of the declared scalar types.
func (t Type) scalar() bool { return t >= String && t <= ObjectID }

// elem returns the element type of an array type, and whether t is one.
func (t Type) elem() (Type, bool) { return t &^ arrayOf, t&arrayOf != 0 }

// String returns the type's name as used in error details.
func (t Type) String() string {
	if e, ok := t.elem(); ok {
		return "[]" + e.String()
	}
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
		return "a date (RFC 3339 or YYYY-MM-DD, years 0000 to 9999 UTC)"
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
	//
	// With "regex", patterns are checked before they reach MongoDB, whose
	// PCRE engine backtracks: see MaxRegexLength.
	Operators []string

	// MaxRegexLength caps the length in bytes of a regex pattern (longer is
	// limit_exceeded). Patterns must also be valid RE2 syntax, a subset of
	// what MongoDB accepts, which keeps lookarounds and backreferences out,
	// and must not backtrack catastrophically: a repeated part (*, +,
	// {n,} or {n,m} with m > 1) may not match nothing, hold a quantifier
	// that could go on over what follows it, as in (a+)+, (a*)* or
	// (\w+\s?)+, or hold alternatives that, past a common literal prefix,
	// can begin with the same character (case aside) or end there, as in
	// (a|ab)*, (a|a?)+ or (.*|a)+. Such patterns are invalid_parameter;
	// ^ab, a+b+, (ab)+, [a-z]+@x, colou?r and (foo|bar)+ are fine. So that
	// MongoDB runs the pattern that was checked, a "{" must begin a
	// repetition ({2}, {1,}, {1,3}) or be escaped, and the flags ($options)
	// may be i, m and s, not x. Default is 64.
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

	// MaxQueryBytes caps the query string, not counting its after
	// parameter, which has a cap of its own (MaxCursorLength). It is
	// measured as next links write the query (each name and value
	// percent-encoded, see Find), so a request the handler accepts makes
	// next links it accepts too, whatever the cap. Default is 4096.
	MaxQueryBytes int

	// Count lists the totals ?count= may ask for. CountExact counts the
	// documents that match the request's filter. CountEstimated reads the
	// collection's size from metadata, which is cheap but covers every
	// document: it is answered only when no filter of any kind applies
	// (neither the client's nor a handler's BaseFilter). A filtered request
	// asking for it is counted exactly instead, or refused when CountExact
	// is not listed. A mode not listed is refused with count_not_allowed
	// (400). Default (nil) is both; an empty, non-nil slice switches
	// counting off.
	Count []CountMode

	// ExtraParameters names query parameters the parser accepts and ignores,
	// for the application's own use (for example "pretty"). They may not
	// collide with reserved or filterable names. Default is none.
	ExtraParameters []string

	// Write maps the fields clients may write (Insert, Replace, Patch) to
	// their declared types; ArrayOf(t) declares an array of t. Dotted paths
	// ("profile.city") name fields inside objects, which a body gives as
	// nested objects ({"profile": {"city": …}}). Nothing else can ever be
	// written by a client: not _id (it comes from the path or the server),
	// not a hidden field, not a field the server sets. Default (nil):
	// nothing is writable.
	Write map[string]Type

	// Constraints declares, for fields of Write, what their values must
	// be beyond their type: required, write-only, lengths, ranges,
	// patterns, enums (see Constraint). The write handlers enforce them
	// and the API document describes them. A key that is not in Write is
	// a configuration error. Default is none.
	Constraints map[string]Constraint

	// Relations names the related documents clients may embed with
	// ?embed=name (see Relation). The parameter is accepted only where
	// relations are declared. Default is none.
	Relations map[string]Relation

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
var reservedParameters = []string{"filter", "sort", "fields", "limit", "skip", "after", "count", "embed"}

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
	accepted     string // parameter list for the details of unknown names
	acceptedOne  string // the same for ParseProjection

	maxRegex, defaultLimit, maxLimit, maxSkip int
	maxDepth, maxFilterBytes, maxIn, maxQuery int
	key                                       []byte
	write                                     writeSchema
	writeOnly                                 []string             // Constraints' WriteOnly fields, sorted
	counts                                    map[CountMode]bool   // the modes Policy.Count allows
	relations                                 map[string]*relation // nil when ?embed= is refused

	// scope names what the parser serves ("database.collection\x00policy"
	// for a handler's); after tokens and Idempotency-Keys are bound to it.
	scope string

	// version is the version field of the handlers' documents, hidden like
	// Policy.Hidden (the ETag header carries it), also in related
	// documents; "" for a parser built by NewQueryParser.
	version string
}

func isReserved(name string) bool { return slices.Contains(reservedParameters, name) }

// NewQueryParser checks p and compiles it. Mistakes in the policy are
// reported here, as plain errors, rather than as surprises at request time.
func NewQueryParser(p Policy) (*QueryParser, error) {
	qp, err := newQueryParser(p, "")
	if err != nil {
		return nil, fmt.Errorf("mongohttp: %w", err)
	}
	return qp, nil
}

// newQueryParser is NewQueryParser with errors that name the field at
// fault ("Policy.Write: …") without the package's prefix, for New and
// relations to place in their own. The handlers of a Collection whose
// documents keep their version in the field version pass its name: it is
// hidden as if Policy.Hidden listed it, in the policy and in every related
// policy.
func newQueryParser(p Policy, version string) (*QueryParser, error) {
	qp := &QueryParser{
		filter:   map[string]Type{"_id": ObjectID},
		sortable: map[string]bool{"_id": true},
		related:  map[string]bool{},
		extras:   map[string]bool{},
		key:      processKey(),
		version:  version,
	}
	var err error
	if qp.ops, err = parseOperators(p.Operators); err != nil {
		return nil, err
	}
	hidden := p.Hidden
	if version != "" {
		hidden = append(slices.Clip(hidden), version)
	}
	for _, h := range hidden {
		if err := checkPolicyPath("Hidden", h); err != nil {
			return nil, err
		}
		if h == "_id" {
			return nil, errors.New("Policy.Hidden: _id cannot be hidden; it is the paging tie-breaker")
		}
		qp.hidden = append(qp.hidden, h)
	}
	// Write-only fields are hidden too: never served, filtered, sorted or
	// projected, whatever another program stored under their names.
	qp.writeOnly = writeOnlyFields(p.Constraints)
	qp.hidden = append(qp.hidden, qp.writeOnly...)
	// Drop repeats and paths under another hidden path: MongoDB refuses a
	// projection that excludes both "a" and "a.b".
	all := slices.Clone(qp.hidden)
	qp.hidden = slices.DeleteFunc(qp.hidden, func(h string) bool {
		for _, o := range all {
			if isAncestor(o, h) {
				return true
			}
		}
		return false
	})
	slices.Sort(qp.hidden)
	qp.hidden = slices.Compact(qp.hidden)
	for _, h := range qp.hidden {
		qp.exclusion = append(qp.exclusion, bson.E{Key: h, Value: int32(0)})
	}
	for name, t := range p.Filter {
		if err := qp.checkVisible("Filter", name); err != nil {
			return nil, err
		}
		if !t.scalar() {
			return nil, fmt.Errorf("Policy.Filter: field %q has invalid type %v", name, t)
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
			return nil, fmt.Errorf("Policy.ExtraParameters: invalid name %q", name)
		}
		if isReserved(name) {
			return nil, fmt.Errorf("Policy.ExtraParameters: %q is a reserved parameter", name)
		}
		if _, ok := qp.filter[name]; ok {
			return nil, fmt.Errorf("Policy.ExtraParameters: %q is also a filterable field", name)
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
			return nil, fmt.Errorf("%s is negative", "Policy."+l.name)
		case l.v == 0:
			*l.dst = l.def
		default:
			*l.dst = l.v
		}
	}
	if qp.defaultLimit > qp.maxLimit {
		return nil, fmt.Errorf("Policy.DefaultLimit %d is above MaxLimit %d", qp.defaultLimit, qp.maxLimit)
	}
	if qp.counts, err = countModes(p.Count); err != nil {
		return nil, err
	}
	if p.CursorKey != nil {
		if len(p.CursorKey) < 16 {
			return nil, errors.New("Policy.CursorKey must be at least 16 bytes")
		}
		qp.key = slices.Clone(p.CursorKey)
	}

	ds := p.DefaultSort
	if ds == "" {
		ds = "_id"
	}
	if qp.defaultSort, err = qp.parseSort(ds); err != nil {
		// A plain error: this is the application's mistake, not a client's.
		return nil, fmt.Errorf("Policy.DefaultSort: %s", AsError(err).Detail)
	}

	if qp.relations, err = qp.compileRelations(p.Relations, "", 1); err != nil {
		return nil, err
	}
	// Filterable fields first: they are what a typo most likely meant.
	accepted := slices.DeleteFunc(slices.Clone(qp.filterNames), isReserved)
	for _, r := range reservedParameters {
		if (r != "fields" || qp.project != nil) && (r != "embed" || qp.relations != nil) {
			accepted = append(accepted, r)
		}
	}
	qp.accepted = nameList(append(accepted, p.ExtraParameters...))
	var one []string
	if qp.project != nil {
		one = append(one, "fields")
	}
	if qp.relations != nil {
		one = append(one, "embed")
	}
	qp.acceptedOne = nameList(append(one, p.ExtraParameters...))
	if qp.acceptedOne == "" {
		qp.acceptedOne = "none"
	}
	if qp.write, err = qp.compileWrite(p.Write, p.Constraints); err != nil {
		return nil, err
	}
	return qp, nil
}

// countModes checks Policy.Count.
func countModes(modes []CountMode) (map[CountMode]bool, error) {
	if modes == nil {
		return map[CountMode]bool{CountExact: true, CountEstimated: true}, nil
	}
	m := map[CountMode]bool{}
	for _, c := range modes {
		if c != CountExact && c != CountEstimated {
			return nil, fmt.Errorf("Policy.Count: unknown count mode %q (use CountExact or CountEstimated)", c)
		}
		m[c] = true
	}
	return m, nil
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
		if what == "Write" && name == h && slices.Contains(qp.writeOnly, name) {
			continue // hidden because it is write-only
		}
		if name == h || isAncestor(name, h) || isAncestor(h, name) {
			if slices.Contains(qp.writeOnly, h) {
				return fmt.Errorf("%s: field %q would reach write-only field %q, which is never stored", "Policy."+what, name, h)
			}
			return fmt.Errorf("%s: field %q would reach hidden field %q", "Policy."+what, name, h)
		}
	}
	return nil
}

func checkPolicyPath(what, name string) error {
	if !validPath(name) || strings.ContainsAny(name, "[],") || strings.HasPrefix(name, "-") {
		return fmt.Errorf("%s: invalid field name %q", "Policy."+what, name)
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
