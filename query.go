package mongohttp

import (
	"crypto/sha256"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

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
	// which nextToken needs. An empty document when there is nothing to
	// exclude.
	Projection bson.D
	// Limit is between 1 and the policy's MaxLimit.
	Limit int64
	// Skip is between 0 and the policy's MaxSkip: from ?skip=, or from an
	// after token that continues by position (see Find).
	Skip int64
	// Count is the count to answer: the one asked for, except that
	// CountEstimated becomes CountExact when the client filters (see
	// Policy.Count).
	Count CountMode
	// Embed lists the relations asked for with ?embed=, by name ("author",
	// or "author.team" for a nested one), in the order given.
	Embed []string

	// anchor is the sort key the after token holds; nil without a token
	// or for a token that only continues by position.
	anchor []bson.RawValue
	// ref is what a reference token holds; nil for other tokens.
	ref *anchorRef
	// params are the decoded parameters but after and skip, in request
	// order: what a next link repeats.
	params []queryParam
	// after is ?after=, checked by bind once the request's scope is known;
	// parts are the client's conditions, to which bind adds the keyset's.
	after    string
	hasAfter bool
	parts    []bson.D
	// scope is the SHA-256 of the request's scope, the BaseFilter's
	// result, that tokens are bound to; nil when there is none.
	scope []byte
}

// maxPathID bounds a string id taken from a path, and so the ids clients
// can create with PUT: a page can always continue after a document whose
// id fits in a reference token (maxRefID bytes of BSON), whatever its sort
// values; a client could otherwise store enough long ids in a row to leave
// a listing no way to continue.
const maxPathID = maxRefID - 5 // a BSON string's length prefix and NUL

// queryParam is one decoded query parameter.
type queryParam struct{ key, value string }

// ParseID parses an id taken from a request path according to the declared
// type of _id. With the default ObjectID type anything but 24 hexadecimal
// digits (NUL bytes and invalid UTF-8 included) is invalid_object_id, as it
// is in the query string and in filter=; with other types a bad id is
// invalid_parameter, and so is a string id longer than maxPathID bytes.
func (qp *QueryParser) ParseID(s string) (any, error) {
	typ := qp.filter["_id"]
	if typ != ObjectID {
		if problem := textProblem(s); problem != "" {
			return nil, ErrInvalidParameter.Detailf("the id %s", problem)
		}
		if typ == String && len(s) > maxPathID {
			return nil, ErrInvalidParameter.Detailf("the id is %d bytes long; the maximum is %d", len(s), maxPathID)
		}
	}
	return coerceText("_id", typ, s)
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
	params                        []queryParam
	embed                         []string
	acceptedList                  string // the parameters a detail lists; "" for the parser's
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
// ErrInvalidCursor, ErrCountNotAllowed and ErrInvalidObjectID under
// errors.Is.
func (qp *QueryParser) Parse(rawQuery string) (*Query, error) {
	q, err := qp.parse(rawQuery)
	if err != nil {
		return nil, err
	}
	if err := qp.bind(q, nil); err != nil {
		return nil, err
	}
	return q, nil
}

// parse is Parse without the check of the after token, which needs the
// request's scope: a handler parses, then runs its BaseFilter (which may
// cost a query) only for a valid query, then binds.
func (qp *QueryParser) parse(rawQuery string) (*Query, error) {
	p := parseState{qp: qp, limit: int64(qp.defaultLimit)}
	if err := qp.scan(rawQuery, p.param); err != nil {
		return nil, err
	}
	return p.finish()
}

// bind ties q to the request's scope, base (the BaseFilter's result, nil
// for none): its after token must have been made under the same scope, so
// a token of /posts is refused on /users/{id}/posts even where both serve
// one collection under one policy, and the tokens q's pages make carry it.
func (qp *QueryParser) bind(q *Query, base bson.D) error {
	if len(base) > 0 {
		b, err := bson.Marshal(base)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		q.scope = sum[:]
	}
	if !q.hasAfter {
		return nil
	}
	var err error
	if q.anchor, q.Skip, err = qp.readToken(q.after, q); err != nil {
		return err
	}
	parts := slices.Clip(q.parts)
	if q.anchor != nil {
		parts = append(parts, keyset(q.Sort, q.anchor))
	}
	if q.ref != nil {
		// Until Find reads the document it names (see resolveRef).
		if c := groupStart(q.Sort, q.ref.group, q.ref.prefix); c != nil {
			parts = append(parts, c)
		}
	}
	q.Filter = combine(parts)
	return nil
}

// ParseProjection parses the query string of a single-document request,
// which takes only ?fields=, ?embed= where the policy declares relations,
// and the extra parameters. Encoding, size, duplicates and unknown names
// follow the rules of Parse, and the projection is Parse's, without the
// sort fields that only a page needs. The relations named by embed= are
// checked, and their Local fields added to the projection; FindOne embeds
// them.
func (qp *QueryParser) ParseProjection(rawQuery string) (bson.D, error) {
	projection, _, err := qp.parseOne(rawQuery)
	return projection, err
}

func (p *parseState) param(key, val string) error {
	if key != "after" && key != "skip" {
		p.params = append(p.params, queryParam{key, val})
	}
	if isReserved(key) || p.qp.extras[key] {
		if err := checkText(key, val); err != nil {
			return err
		}
	}
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
		p.count, err = p.qp.parseCountMode(val)
	case "embed":
		p.embed, err = p.qp.parseEmbed(val, p.qp.accepted)
	default:
		if p.qp.extras[key] {
			return nil
		}
		err = p.fieldParam(key, val)
	}
	return err
}

// parseCountMode reads ?count=: a known mode that the policy allows.
func (qp *QueryParser) parseCountMode(s string) (CountMode, error) {
	mode := CountMode(s)
	if mode != CountExact && mode != CountEstimated {
		return "", ErrInvalidParameter.Detailf("count must be %q or %q, not %s", CountExact, CountEstimated, clip(s))
	}
	if !qp.counts[mode] {
		return "", qp.countNotAllowed(mode)
	}
	return mode, nil
}

func (qp *QueryParser) countNotAllowed(mode CountMode) error {
	switch {
	case qp.counts[CountExact]:
		return ErrCountNotAllowed.Detailf("count=%s is not allowed here; use count=exact", mode)
	case qp.counts[CountEstimated]:
		return ErrCountNotAllowed.Detailf("count=%s is not allowed here; use count=estimated on requests without a filter", mode)
	}
	return ErrCountNotAllowed.Detailf("this collection does not count its documents; leave count out")
}

// countMode returns the count to answer for mode on a request that does or
// does not filter (by the client's filter or the handler's base filter). An
// estimate is the size of the whole collection, which would tell a client
// about documents outside its scope, so a filtered request is counted
// exactly instead, or refused when exact counts are not allowed.
func (qp *QueryParser) countMode(mode CountMode, filtered bool) (CountMode, error) {
	if mode != CountEstimated || !filtered {
		return mode, nil
	}
	if !qp.counts[CountExact] {
		return "", ErrCountNotAllowed.Detailf("count=estimated counts the whole collection and this request is filtered; exact counts are not allowed here")
	}
	return CountExact, nil
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
		if !strings.HasSuffix(key, "]") || i == 0 || i == len(key)-2 || strings.ContainsAny(key[i+1:len(key)-1], "[]") {
			return ErrInvalidParameter.Detailf("parameter %s is malformed; use name=value or name[operator]=value", clip(key))
		}
		name, opName, hasOp = key[:i], key[i+1:len(key)-1], true
	} else if strings.IndexByte(key, ']') >= 0 {
		return ErrInvalidParameter.Detailf("parameter %s is malformed; use name=value or name[operator]=value", clip(key))
	}
	if _, ok := qp.filter[name]; !ok {
		if hasOp && strings.HasPrefix(opName, "$") && (isReserved(name) || qp.extras[name]) {
			// embed[$ne]=…: a server operator on a parameter, not a field.
			return ErrOperatorNotAllowed.Detailf("operator %s is not allowed; use name[operator]=value with the policy's operators", clip(opName))
		}
		return qp.notFilterable(name, p.accepted())
	}
	o := opEq
	if hasOp {
		var err error
		if o, err = qp.queryOperator(opName); err != nil {
			return err
		}
	} else if !qp.ops.has(opEq) {
		return ErrOperatorNotAllowed.Detailf("equality filters are not allowed")
	}
	typ := qp.filter[name]
	if typ != ObjectID || o&(opEq|opNe|opGt|opGte|opLt|opLte|opIn|opNin|opAll) == 0 {
		if err := checkText(key, val); err != nil {
			return err
		}
	}
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
		v, err = qp.checkRegex(name, typ, val, "")
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

// notFilterable reports a parameter that is neither reserved nor extra and
// names no filterable field. In the query grammar such a name is a filter,
// so it is field_not_allowed however it is spelt (name=, name[op]=), as in
// filter=: one code for one mistake. A name that can only mean a field
// (dotted paths, names of sortable or projectable fields and their
// ancestors) is told so; another may be a misspelt parameter, and the
// detail lists the accepted ones (accepted). Hidden fields are
// deliberately not told apart from unknown names. A name starting with "$"
// is an operator: operator_not_allowed.
func (qp *QueryParser) notFilterable(name, accepted string) error {
	switch {
	case strings.HasPrefix(name, "$"):
		return ErrOperatorNotAllowed.Detailf("operator %s is not allowed as a parameter; use name[operator]=value or filter=", clip(name))
	case strings.Contains(name, ".") || qp.related[name]:
		return qp.fieldNotAllowed(name)
	}
	return ErrFieldNotAllowed.Detailf("%s is not a filterable field or a parameter; accepted: %s", clip(name), accepted)
}

// accepted is the list of parameters a detail offers.
func (p *parseState) accepted() string {
	if p.acceptedList != "" {
		return p.acceptedList
	}
	return p.qp.accepted
}

func (qp *QueryParser) fieldNotAllowed(name string) error {
	return ErrFieldNotAllowed.Detailf("field %s may not be filtered; filterable: %s", clip(name), nameList(qp.filterNames))
}

// list parses the comma-separated values of in, nin and all.
func (p *parseState) list(name string, typ Type, o opSet, val string) (bson.A, error) {
	if n := strings.Count(val, ",") + 1; n > p.qp.maxIn {
		return nil, ErrLimitExceeded.Detailf("%s has %d values; the maximum is %d", clip(name+"["+o.name()+"]"), n, p.qp.maxIn)
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
	q := &Query{Limit: p.limit, Skip: p.skip, Count: p.count, params: p.params}
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
	var err error
	if q.Count, err = qp.countMode(q.Count, len(q.CountFilter) > 0); err != nil {
		return nil, err
	}
	q.after, q.hasAfter, q.parts = p.after, p.hasAfter, parts
	q.Filter = combine(parts)
	if p.hasAfter {
		if _, _, _, err := qp.decodeToken(p.after, q); err != nil {
			return nil, err
		}
	}

	if q.Projection, err = qp.projection(p.fields, p.hasFields, q.Sort); err != nil {
		return nil, err
	}
	q.Embed, q.Projection = p.embed, qp.withLocals(q.Projection, p.embed)
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
// that nextToken finds the sort key of the last document.
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

// The range of dates accepted everywhere: years 0000 to 9999, UTC, the
// range of RFC 3339 and of the encoder's plain date strings.
const (
	minDate = bson.DateTime(-62167219200000) // 0000-01-01T00:00:00.000Z
	maxDate = bson.DateTime(253402300799999) // 9999-12-31T23:59:59.999Z
)

var (
	errDateFormat = errors.New("not a date")
	errDateRange  = errors.New("date out of range")
)

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
