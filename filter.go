package mongohttp

import (
	"fmt"
	"math"
	"math/bits"
	"regexp/syntax"
	"strconv"
	"strings"

	"github.com/mongohttp/mongohttp/internal/regexcheck"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// opSet is a set of operators, one bit each.
type opSet uint32

const (
	opEq opSet = 1 << iota
	opNe
	opGt
	opGte
	opLt
	opLte
	opIn
	opNin
	opExists
	opRegex
	opAll
	opSize
	opElemMatch
	opNot
	opAnd
	opOr
	opNor
	opLast // not an operator: one past the last bit
)

// opNames lists the operators in bit order. Nothing else can ever be
// allowed, so $where, $function, $accumulator and $expr stay out whatever a
// Policy says.
var opNames = [...]string{"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists",
	"regex", "all", "size", "elemMatch", "not", "and", "or", "nor"}

const opDefault = opEq | opNe | opGt | opGte | opLt | opLte | opIn | opNin | opExists | opAnd | opOr | opNor | opNot

func operatorByName(name string) opSet {
	for i, n := range opNames {
		if n == name {
			return 1 << i
		}
	}
	return 0
}

// opKeys are the operators as MongoDB spells them, made once so that
// building a filter does not concatenate strings.
var opKeys = func() (k [len(opNames)]string) {
	for i, n := range opNames {
		k[i] = "$" + n
	}
	return k
}()

// name returns the name of a single operator.
func (o opSet) name() string { return opNames[bits.TrailingZeros32(uint32(o))] }

// key returns "$" and the name of a single operator.
func (o opSet) key() string { return opKeys[bits.TrailingZeros32(uint32(o))] }

func (o opSet) has(x opSet) bool { return o&x != 0 }

// String lists the operators, for error details.
func (o opSet) String() string {
	var names []string
	for i, n := range opNames {
		if o.has(1 << i) {
			names = append(names, n)
		}
	}
	if names == nil {
		return "none"
	}
	return strings.Join(names, ", ")
}

func parseOperators(names []string) (opSet, error) {
	if names == nil {
		return opDefault, nil
	}
	var s opSet
	for _, n := range names {
		o := operatorByName(n)
		if o == 0 {
			return 0, fmt.Errorf("Policy.Operators: unknown operator %q (write names without \"$\"; known: %s)", n, opLast-1)
		}
		s |= o
	}
	return s, nil
}

// parseFilter parses and validates filter=, relaxed Extended JSON.
func (qp *QueryParser) parseFilter(s string) (bson.D, error) {
	if len(s) > qp.maxFilterBytes {
		return nil, ErrLimitExceeded.Detailf("filter is %d bytes long; the maximum is %d", len(s), qp.maxFilterBytes)
	}
	s, err := qp.prepareFilter(s)
	if err != nil {
		return nil, err
	}
	if err := checkNumbers(s); err != nil {
		return nil, err
	}
	if loneSurrogate(s) {
		// The parsers would read it as U+FFFD: a filter for another value.
		return nil, ErrInvalidParameter.Detailf("filter has a string with a lone surrogate escape: not valid UTF-8 text")
	}
	var d bson.D
	if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
		// The driver's message is not shown: it may quote the input at length.
		return nil, ErrInvalidParameter.Detailf("filter is not valid Extended JSON").withCause(err)
	}
	return qp.validateDoc(d, "", 1)
}

// validateDoc checks a filter document whose fields are under prefix (""
// at the top, "items." inside items' $elemMatch) and returns a copy with
// values converted to the declared types.
func (qp *QueryParser) validateDoc(d bson.D, prefix string, level int) (bson.D, error) {
	if level > qp.maxDepth {
		return nil, ErrLimitExceeded.Detailf("filter is nested too deeply; the maximum depth is %d", qp.maxDepth)
	}
	if err := noDuplicateKeys(d); err != nil {
		return nil, err
	}
	out := make(bson.D, 0, len(d))
	for _, e := range d {
		if strings.HasPrefix(e.Key, "$") {
			v, err := qp.validateLogical(e, prefix, level)
			if err != nil {
				return nil, err
			}
			out = append(out, bson.E{Key: e.Key, Value: v})
			continue
		}
		full := prefix + e.Key
		typ, ok := qp.filter[full]
		if !ok || !validPath(e.Key) {
			return nil, qp.fieldNotAllowed(full)
		}
		v, err := qp.validateValue(full, typ, e.Value, level)
		if err != nil {
			return nil, err
		}
		out = append(out, bson.E{Key: e.Key, Value: v})
	}
	return out, nil
}

// validateLogical checks $and, $or and $nor: arrays of filter documents.
func (qp *QueryParser) validateLogical(e bson.E, prefix string, level int) (bson.A, error) {
	o := operatorByName(e.Key[1:])
	if o&(opAnd|opOr|opNor) == 0 || !qp.ops.has(o) {
		return nil, qp.operatorNotAllowed(e.Key)
	}
	a, ok := e.Value.(bson.A)
	if !ok || len(a) == 0 {
		return nil, ErrInvalidParameter.Detailf("%s takes a non-empty array of filter documents", e.Key)
	}
	if len(a) > qp.maxIn {
		return nil, ErrLimitExceeded.Detailf("%s has %d clauses; the maximum is %d", e.Key, len(a), qp.maxIn)
	}
	out := make(bson.A, len(a))
	for i, c := range a {
		cd, ok := c.(bson.D)
		if !ok {
			return nil, ErrInvalidParameter.Detailf("%s takes a non-empty array of filter documents", e.Key)
		}
		v, err := qp.validateDoc(cd, prefix, level+1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (qp *QueryParser) operatorNotAllowed(key string) error {
	return ErrOperatorNotAllowed.Detailf("operator %s is not allowed; allowed: %s", clip(key), qp.ops)
}

// validateValue checks what a field is compared with: an operator document,
// a regular expression, an array (exact array equality) or a scalar.
func (qp *QueryParser) validateValue(field string, typ Type, v any, level int) (any, error) {
	switch v := v.(type) {
	case bson.D:
		if len(v) == 0 || !strings.HasPrefix(v[0].Key, "$") {
			return nil, ErrInvalidParameter.Detailf("field %s is compared with a document; documents are not accepted as values, use operators such as {\"$gt\": …}", clip(field))
		}
		return qp.validateOps(field, typ, v, level+1)
	case bson.Regex:
		return qp.checkRegexValue(field, typ, v)
	}
	if !qp.ops.has(opEq) {
		return nil, ErrOperatorNotAllowed.Detailf("equality filters are not allowed")
	}
	if a, ok := v.(bson.A); ok {
		return qp.coerceArray(field, typ, "an array value", a, true)
	}
	return coerceValue(field, typ, v, true)
}

// validateOps checks an operator document such as {"$gte": 30, "$lt": 40}.
func (qp *QueryParser) validateOps(field string, typ Type, d bson.D, level int) (bson.D, error) {
	if level > qp.maxDepth {
		return nil, ErrLimitExceeded.Detailf("filter is nested too deeply; the maximum depth is %d", qp.maxDepth)
	}
	if err := noDuplicateKeys(d); err != nil {
		return nil, err
	}
	hasRegex, options := false, ""
	for _, e := range d {
		if !strings.HasPrefix(e.Key, "$") {
			return nil, ErrInvalidParameter.Detailf("field %s mixes operators and plain keys", clip(field))
		}
		hasRegex = hasRegex || e.Key == "$regex"
		if e.Key == "$options" {
			options, _ = e.Value.(string)
		}
	}
	out := make(bson.D, 0, len(d))
	for _, e := range d {
		if e.Key == "$options" {
			if !hasRegex {
				return nil, ErrInvalidParameter.Detailf("$options is only valid next to $regex")
			}
			opts, ok := e.Value.(string)
			if !ok || !validRegexOptions(opts) {
				return nil, ErrInvalidParameter.Detailf("$options takes a string of the flags i, m and s")
			}
			out = append(out, e)
			continue
		}
		o := operatorByName(e.Key[1:])
		if o == 0 || o&(opAnd|opOr|opNor) != 0 || !qp.ops.has(o) {
			return nil, qp.operatorNotAllowed(e.Key)
		}
		var v any
		var err error
		if o == opRegex {
			v, err = qp.regexOperand(field, typ, e.Value, options)
		} else {
			v, err = qp.validateOp(field, typ, o, e.Value, level)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, bson.E{Key: e.Key, Value: v})
	}
	return out, nil
}

// regexOperand checks the operand of $regex: a pattern string, whose flags
// are in the $options beside it, or a regular expression value.
func (qp *QueryParser) regexOperand(field string, typ Type, v any, options string) (any, error) {
	switch r := v.(type) {
	case string:
		return qp.checkRegex(field, typ, r, options)
	case bson.Regex:
		return qp.checkRegexValue(field, typ, r)
	}
	return nil, ErrInvalidParameter.Detailf("$regex of field %s takes a string", clip(field))
}

func (qp *QueryParser) validateOp(field string, typ Type, o opSet, v any, level int) (any, error) {
	switch o {
	case opEq, opNe:
		if a, ok := v.(bson.A); ok {
			return qp.coerceArray(field, typ, o.key(), a, true)
		}
		return coerceValue(field, typ, v, true)
	case opGt, opGte, opLt, opLte:
		return coerceValue(field, typ, v, false)
	case opIn, opNin, opAll:
		a, ok := v.(bson.A)
		if !ok {
			return nil, ErrInvalidParameter.Detailf("$%s of field %s takes an array", o.name(), clip(field))
		}
		return qp.coerceArray(field, typ, o.key(), a, o != opAll)
	case opExists:
		b, ok := v.(bool)
		if !ok {
			return nil, ErrInvalidParameter.Detailf("$exists of field %s takes true or false", clip(field))
		}
		return b, nil
	case opSize:
		n, ok := integral(v)
		if !ok || n < 0 || n > math.MaxInt32 {
			return nil, ErrInvalidParameter.Detailf("$size of field %s takes a whole number", clip(field))
		}
		return n, nil
	case opNot:
		switch b := v.(type) {
		case bson.D:
			if len(b) == 0 || !strings.HasPrefix(b[0].Key, "$") {
				return nil, ErrInvalidParameter.Detailf("$not of field %s takes an operator document", clip(field))
			}
			for _, e := range b {
				if e.Key == "$not" {
					return nil, ErrInvalidParameter.Detailf("$not cannot contain $not")
				}
			}
			return qp.validateOps(field, typ, b, level+1)
		case bson.Regex:
			return qp.checkRegexValue(field, typ, b)
		}
		return nil, ErrInvalidParameter.Detailf("$not of field %s takes an operator document", clip(field))
	case opElemMatch:
		b, ok := v.(bson.D)
		if !ok || len(b) == 0 {
			return nil, ErrInvalidParameter.Detailf("$elemMatch of field %s takes a non-empty document", clip(field))
		}
		// A body made only of operators applies to the elements themselves;
		// otherwise it is a filter on the elements' fields, which must be
		// listed as field.sub in the policy.
		for _, e := range b {
			switch e.Key {
			case "$and", "$or", "$nor":
				return qp.validateDoc(b, field+".", level+1)
			}
			if !strings.HasPrefix(e.Key, "$") {
				return qp.validateDoc(b, field+".", level+1)
			}
		}
		return qp.validateOps(field, typ, b, level+1)
	}
	return nil, qp.operatorNotAllowed(o.key())
}

// coerceArray converts the elements of an array value, which must be
// scalars of the field's type.
func (qp *QueryParser) coerceArray(field string, typ Type, what string, a bson.A, allowNull bool) (bson.A, error) {
	if len(a) > qp.maxIn {
		return nil, ErrLimitExceeded.Detailf("%s of field %s has %d values; the maximum is %d", what, clip(field), len(a), qp.maxIn)
	}
	out := make(bson.A, len(a))
	for i, x := range a {
		v, err := coerceValue(field, typ, x, allowNull)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// coerceValue converts a filter= value to the field's declared type. Only
// ObjectID and date fields convert strings; everything else must already be
// of the type, so a string is never silently taken for a number.
func coerceValue(field string, typ Type, v any, allowNull bool) (any, error) {
	if v == nil {
		if allowNull {
			return nil, nil
		}
		return nil, ErrInvalidParameter.Detailf("field %s cannot be compared with null here", clip(field))
	}
	switch typ {
	case String:
		if s, ok := v.(string); ok {
			if strings.IndexByte(s, 0) >= 0 {
				return nil, ErrInvalidParameter.Detailf("the value for field %s contains a NUL byte", clip(field))
			}
			return s, nil
		}
	case Int:
		if n, ok := integral(v); ok {
			return n, nil
		}
	case Float:
		switch n := v.(type) {
		case int32:
			return float64(n), nil
		case int64:
			return float64(n), nil
		case float64:
			if finite(n) {
				return n, nil
			}
		}
	case Bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case Date:
		switch d := v.(type) {
		case bson.DateTime:
			// prepareFilter checked every $date; this keeps the rule for
			// any other way a date could arrive.
			if err := checkDateRange(d); err != nil {
				return nil, dateError(field, strconv.FormatInt(int64(d), 10)+" ms", err)
			}
			return d, nil
		case string:
			t, err := parseDate(d)
			if err != nil {
				return nil, dateError(field, clip(d), err)
			}
			return t, nil
		}
	case ObjectID:
		switch id := v.(type) {
		case bson.ObjectID:
			return id, nil
		case string:
			return coerceText(field, ObjectID, id)
		}
		return nil, ErrInvalidObjectID.Detailf("field %s takes %s, not %s", clip(field), typ.expects(), kindOf(v))
	}
	return nil, ErrInvalidParameter.Detailf("field %s takes %s, not %s", clip(field), typ.expects(), kindOf(v))
}

// integral returns v as an int64 if it is a number with a whole value.
func integral(v any) (int64, bool) {
	switch n := v.(type) {
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		if n == math.Trunc(n) && n >= -(1<<63) && n < 1<<63 {
			return int64(n), true
		}
	}
	return 0, false
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// kindOf names the type of a decoded filter value without quoting it.
func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int32, int64, float64, bson.Decimal128:
		return "a number"
	case bool:
		return "a boolean"
	case bson.A:
		return "an array"
	case bson.D:
		return "a document"
	case bson.ObjectID:
		return "an ObjectID"
	case bson.DateTime:
		return "a date"
	}
	return "a value of another type"
}

// checkRegex validates a $regex pattern: regex enabled, a string field, the
// length cap, no NUL (BSON stores patterns as C strings), RE2 syntax, and no
// construct that MongoDB's backtracking engine could take exponential time
// over (see regexcheck.BacktrackRisk). options are the pattern's flags
// (from $options), already checked or about to be. The x flag is not
// among them: with it MongoDB reads whitespace and comments differently
// from the RE2 parser that checks the pattern (and FerretDB does not
// implement it).
func (qp *QueryParser) checkRegex(field string, typ Type, pattern, options string) (string, error) {
	if !qp.ops.has(opRegex) {
		return "", qp.operatorNotAllowed("$regex")
	}
	if typ != String {
		return "", ErrInvalidParameter.Detailf("regex is only available on string fields; field %s is %s", clip(field), typ)
	}
	if len(pattern) > qp.maxRegex {
		return "", ErrLimitExceeded.Detailf("the regex for field %s is %d bytes long; the maximum is %d", clip(field), len(pattern), qp.maxRegex)
	}
	if strings.IndexByte(pattern, 0) >= 0 {
		return "", ErrInvalidParameter.Detailf("the regex for field %s contains a NUL byte", clip(field))
	}
	flags := regexcheck.Flags(options)
	re, err := syntax.Parse(pattern, flags)
	if err != nil {
		return "", ErrInvalidParameter.Detailf("the regex for field %s is not valid (lookarounds and backreferences are not supported)", clip(field)).withCause(err)
	}
	if regexcheck.HasLiteralBrace(pattern) {
		return "", ErrInvalidParameter.Detailf(`the regex for field %s has a "{" that does not start a repetition such as {2} or {1,3}; write \{ for the character`, clip(field))
	}
	if risk := regexcheck.BacktrackRisk(re, pattern, flags); risk != "" {
		return "", ErrInvalidParameter.Detailf("the regex for field %s %s, which can make the database backtrack for a very long time", clip(field), risk)
	}
	return pattern, nil
}

// checkRegexValue validates a regular expression value
// ({"$regularExpression": …}), which MongoDB treats as a $regex.
func (qp *QueryParser) checkRegexValue(field string, typ Type, r bson.Regex) (bson.Regex, error) {
	if !qp.ops.has(opRegex) {
		return bson.Regex{}, qp.operatorNotAllowed("$regex")
	}
	if !validRegexOptions(r.Options) {
		return bson.Regex{}, ErrInvalidParameter.Detailf("regex options may only be the flags i, m and s")
	}
	if _, err := qp.checkRegex(field, typ, r.Pattern, r.Options); err != nil {
		return bson.Regex{}, err
	}
	return r, nil
}

func validRegexOptions(s string) bool {
	return len(s) <= 3 && strings.Trim(s, "ims") == ""
}

// noDuplicateKeys refuses a document with a key twice: MongoDB would keep
// one of them, and which one is not something a client should guess.
func noDuplicateKeys(d bson.D) error {
	if len(d) < 2 {
		return nil
	}
	seen := make(map[string]bool, len(d))
	for _, e := range d {
		if seen[e.Key] {
			return ErrInvalidParameter.Detailf("filter has key %s twice in one document", clip(e.Key))
		}
		seen[e.Key] = true
	}
	return nil
}
