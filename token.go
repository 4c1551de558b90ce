package mongohttp

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// cursorVersion is the first byte of an after token, which is base64url
// (no padding) of
//
//	version (1 byte) | BSON {"v": [anchor…], "o": offset} | MAC (16 bytes)
//
// "v" holds the sort key of the last document served, one value per sort
// field, as the server sorts it: an array's smallest element in ascending
// order and its largest in descending order, null for null and missing, and
// an empty array for an empty array (which sorts before null). "o", when
// present, is a number of documents to skip past that position: a page
// whose documents cannot anchor a token continues by position (see
// offsetToken); "v" is then the anchor of the request, or empty.
//
// MAC is HMAC-SHA256 over a label, the handler's scope (database,
// collection and policy), the sort spec ("-age,name,_id"), the SHA-256 of
// the client's filter and of the request's scope (the BaseFilter's
// result), and the version and BSON bytes, cut to 16 bytes. Scope, sort
// and filter are signed but not stored, so a token only works where it was
// made (the same collection, policy and BaseFilter result), for the same
// sort and filter, and any change to a byte fails the MAC. The values are
// not encrypted: they are the sort fields of a document the client has
// already seen.
const (
	cursorVersion = 2
	cursorMACLen  = 16
	// maxKeysetLength leaves room in MaxCursorLength for the offset a
	// positional continuation adds to a keyset token's anchor.
	maxKeysetLength = MaxCursorLength - 32
)

// MaxCursorLength caps an after token, in characters. A document whose
// sort values would not fit (very long strings as sort keys) cannot end a
// page; see Find.
const MaxCursorLength = 1024

var cursorEncoding = base64.RawURLEncoding.Strict()

// decodeTokenText decodes the base64url text of a token (an after token or
// a change feed's resume token). encoding/base64 skips '\r' and '\n'
// anywhere in its input; tokens hold neither, so that a token has one
// spelling (FuzzChangeToken found "…A\nI…" accepted as "…AI…").
func decodeTokenText(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("a line break in a token")
	}
	return cursorEncoding.DecodeString(s)
}

// processKey is the default CursorKey: random, made once per process.
var processKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // crypto/rand.Read does not fail (Go 1.24+)
	return k
})

// sortSpec renders a sort in ?sort= grammar, the form the MAC binds.
func sortSpec(sort bson.D) string {
	var b strings.Builder
	for i, e := range sort {
		if i > 0 {
			b.WriteByte(',')
		}
		if direction(e.Value) < 0 {
			b.WriteByte('-')
		}
		b.WriteString(e.Key)
	}
	return b.String()
}

// direction reads a sort direction, whatever integer type holds it.
func direction(v any) int {
	switch d := v.(type) {
	case int32:
		return int(d)
	case int64:
		return int(d)
	case int:
		return d
	}
	return 1
}

// filterDigest is what a token binds of the client's filter and of the
// request's scope.
func filterDigest(q *Query) ([]byte, error) {
	b, err := bson.Marshal(q.CountFilter)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(b)
	h.Write(q.scope)
	return h.Sum(nil), nil
}

func (qp *QueryParser) mac(sort bson.D, digest, msg []byte) []byte {
	h := hmac.New(sha256.New, qp.key)
	h.Write([]byte("mongohttp after\x00"))
	h.Write([]byte(qp.scope))
	h.Write([]byte{0})
	h.Write([]byte(sortSpec(sort)))
	h.Write([]byte{0})
	h.Write(digest)
	h.Write(msg)
	return h.Sum(nil)[:cursorMACLen]
}

// tokenPayload is the BSON inside a token.
type tokenPayload struct {
	V []bson.RawValue `bson:"v"`
	O int64           `bson:"o,omitempty"`
	// A reference token's (see anchorRef): the documents it names, and
	// whether the last value of V is a prefix.
	R []tokenRef `bson:"r,omitempty"`
	P bool       `bson:"p,omitempty"`
}

// tokenRef names a document of a reference token: its _id and the digest
// of its sort key.
type tokenRef struct {
	I bson.RawValue `bson:"i"`
	H []byte        `bson:"h"`
}

func (qp *QueryParser) sign(q *Query, digest []byte, p tokenPayload) (string, error) {
	if p.V == nil {
		p.V = []bson.RawValue{}
	}
	payload, err := bson.Marshal(p)
	if err != nil {
		return "", err
	}
	msg := make([]byte, 0, 1+len(payload)+cursorMACLen)
	msg = append(msg, cursorVersion)
	msg = append(msg, payload...)
	msg = append(msg, qp.mac(q.Sort, digest, msg)...)
	return cursorEncoding.EncodeToString(msg), nil
}

// nextToken returns the after token for the page of q whose last document
// is last. It reads each sort field of last (dotted paths included) and _id;
// the Query's projection always includes them.
//
// The token holds the document's sort key as the server sorts it (an
// array's smallest element in ascending order, its largest in descending
// order; missing as null), and the condition it turns into follows the
// server's order across types and arrays (see the README). nextToken fails
// when last cannot anchor a page: a sort value of a type keyset paging does
// not handle (regular expressions, MinKey, MaxKey, undefined, symbols,
// JavaScript, DBPointer, nested arrays, NaN, an array of two or more
// documents or of decimals mixed with other numbers, a path through an
// array of documents), or a token longer than MaxCursorLength allows. Find
// then ends the page at an earlier document, or continues by position.
func (qp *QueryParser) nextToken(q *Query, last bson.Raw) (string, error) {
	if q == nil || len(q.Sort) == 0 {
		return "", errors.New("mongohttp: nextToken needs a query with a sort")
	}
	digest, err := filterDigest(q)
	if err != nil {
		return "", fmt.Errorf("mongohttp: nextToken: %w", err)
	}
	return qp.keysetToken(q, digest, last)
}

func (qp *QueryParser) keysetToken(q *Query, digest []byte, last bson.Raw) (string, error) {
	if err := last.Validate(); err != nil {
		return "", fmt.Errorf("mongohttp: nextToken: invalid document: %w", err)
	}
	anchor := make([]bson.RawValue, len(q.Sort))
	for i, e := range q.Sort {
		v, err := sortKey(last, e.Key, direction(e.Value) < 0)
		if err != nil {
			return "", fmt.Errorf("mongohttp: nextToken: sort field %q: %w", e.Key, err)
		}
		if e.Key == "_id" && v.Type == bson.TypeNull {
			return "", errors.New("mongohttp: nextToken: the document has no _id")
		}
		anchor[i] = v
	}
	tok, err := qp.sign(q, digest, tokenPayload{V: anchor})
	if err != nil {
		return "", fmt.Errorf("mongohttp: nextToken: %w", err)
	}
	if len(tok) > maxKeysetLength {
		return "", fmt.Errorf("mongohttp: nextToken: the sort values need a %d-character token; the maximum is %d", len(tok), maxKeysetLength)
	}
	return tok, nil
}

// offsetToken returns a token for the documents that follow the first
// served ones of q's result: q's own anchor, and an offset past it. A
// handler uses it only when no document of a page can anchor a keyset
// token. It is exact while the documents between the anchor and the offset
// do not change; the server walks the offset, so it is bounded by MaxSkip.
func (qp *QueryParser) offsetToken(q *Query, digest []byte, served int) (string, error) {
	if q.ref != nil && q.anchor == nil {
		return "", errors.New("mongohttp: a page that started from a group of documents cannot continue by position")
	}
	offset := q.Skip + int64(served)
	if offset > int64(qp.maxSkip) {
		return "", fmt.Errorf("mongohttp: a positional continuation would skip %d documents; the maximum is MaxSkip, %d", offset, qp.maxSkip)
	}
	tok, err := qp.sign(q, digest, tokenPayload{V: q.anchor, O: offset})
	if err != nil {
		return "", err
	}
	if len(tok) > MaxCursorLength {
		return "", fmt.Errorf("mongohttp: the positional token needs %d characters; the maximum is %d", len(tok), MaxCursorLength)
	}
	return tok, nil
}

// readToken checks an after token against q's sort, client filter and
// scope and returns its anchor (nil for none) and offset.
func (qp *QueryParser) readToken(token string, q *Query) ([]bson.RawValue, int64, error) {
	msg, sum, p, err := qp.decodeToken(token, q)
	if err != nil {
		return nil, 0, err
	}
	digest, err := filterDigest(q)
	if err != nil {
		return nil, 0, errInvalidToken().withCause(err)
	}
	if !hmac.Equal(sum, qp.mac(q.Sort, digest, msg)) {
		return nil, 0, errInvalidToken()
	}
	if len(p.R) > 0 {
		return nil, 0, nil // a reference token: Find reads the documents it names (see resolveRef)
	}
	if len(p.V) == 0 {
		return nil, p.O, nil
	}
	return p.V, p.O, nil
}

// decodeToken reads an after token's form, everything but its MAC, which
// needs the request's scope: so a token that no handler could have made is
// refused on arrival, before the BaseFilter runs. It returns the signed
// message, the MAC and the payload. The MAC proves the payload is one this
// package made; the checks of the payload only keep a bug from turning
// into a bad query.
func (qp *QueryParser) decodeToken(token string, q *Query) (msg, sum []byte, p tokenPayload, err error) {
	if token == "" || len(token) > MaxCursorLength {
		return nil, nil, p, errInvalidToken()
	}
	b, err := decodeTokenText(token)
	if err != nil || len(b) < 1+5+cursorMACLen || b[0] != cursorVersion {
		return nil, nil, p, errInvalidToken()
	}
	msg, sum = b[:len(b)-cursorMACLen], b[len(b)-cursorMACLen:]
	if err := bson.Unmarshal(msg[1:], &p); err != nil || p.O < 0 || p.O > int64(qp.maxSkip) {
		return nil, nil, p, errInvalidToken()
	}
	if len(p.R) > 0 {
		if p.O != 0 || len(p.R) > maxRefs || len(p.V) > len(q.Sort) || (p.P && (len(p.V) == 0 || p.V[len(p.V)-1].Type != bson.TypeString)) {
			return nil, nil, p, errInvalidToken()
		}
		for _, r := range p.R {
			if len(r.H) != 16 || r.I.Type == 0 {
				return nil, nil, p, errInvalidToken()
			}
		}
		for _, v := range p.V {
			if b := bracketOfKey(v); b == bracketOther || b == bracketRegex {
				return nil, nil, p, errInvalidToken()
			}
		}
		q.ref = &anchorRef{refs: p.R, group: p.V, prefix: p.P}
		return msg, sum, p, nil
	}
	switch {
	case len(p.V) == 0 && p.O > 0:
		return msg, sum, p, nil
	case len(p.V) != len(q.Sort):
		return nil, nil, p, errInvalidToken()
	}
	for _, v := range p.V {
		if b := bracketOfKey(v); b == bracketOther || b == bracketRegex {
			return nil, nil, p, errInvalidToken()
		}
	}
	return msg, sum, p, nil
}

func errInvalidToken() *Error {
	return ErrInvalidCursor.Detailf("the after token is not valid for this query: it is damaged, was made by another handler or for another sort, filter or scope, or the service's cursor key changed; start again from the first page")
}

// A bracket is a group of BSON types in the server's sort order: values of
// different brackets compare by bracket, values of one bracket by value.
// $gt, $lt and the like compare only within a bracket, which is why the
// keyset condition names the brackets that sort before or after an anchor.
type bracket int8

const (
	bracketEmpty bracket = iota // an empty array: before null
	bracketNull                 // null, and missing fields
	bracketNumber
	bracketString
	bracketObject
	bracketBinary
	bracketObjectID
	bracketBool
	bracketDate
	bracketTimestamp
	bracketRegex // sorts after dates; never an anchor, since {$eq: /re/} matches by pattern
	bracketOther // MinKey, MaxKey, undefined, symbols, JavaScript, DBPointer, nested arrays
)

// bracketAliases are the $type names of the brackets the conditions name.
// The types of bracketOther have none that every server knows (FerretDB
// refuses "minKey", "maxKey", "symbol", "javascript" and more), so
// documents holding them in a sort field are not placed by the conditions.
var bracketAliases = [...]string{
	bracketNumber: "number", bracketString: "string", bracketObject: "object",
	bracketBinary: "binData", bracketObjectID: "objectId", bracketBool: "bool",
	bracketDate: "date", bracketTimestamp: "timestamp", bracketRegex: "regex",
}

func bracketOf(t bson.Type) bracket {
	switch t {
	case bson.TypeDouble, bson.TypeInt32, bson.TypeInt64, bson.TypeDecimal128:
		return bracketNumber
	case bson.TypeString:
		return bracketString
	case bson.TypeEmbeddedDocument:
		return bracketObject
	case bson.TypeBinary:
		return bracketBinary
	case bson.TypeObjectID:
		return bracketObjectID
	case bson.TypeBoolean:
		return bracketBool
	case bson.TypeDateTime:
		return bracketDate
	case bson.TypeTimestamp:
		return bracketTimestamp
	case bson.TypeRegex:
		return bracketRegex
	case bson.TypeNull:
		return bracketNull
	}
	return bracketOther
}

// bracketOfKey is the bracket of an anchor value: an empty array stands
// for an empty array, any other array is not a sort key.
func bracketOfKey(v bson.RawValue) bracket {
	if v.Type == bson.TypeArray {
		if vals, err := v.Array().Values(); err == nil && len(vals) == 0 {
			return bracketEmpty
		}
		return bracketOther
	}
	return bracketOf(v.Type)
}

// typesBetween lists the $type names of the brackets strictly between lo
// and hi.
func typesBetween(lo, hi bracket) bson.A {
	var a bson.A
	for b := lo + 1; b < hi && b < bracketOther; b++ {
		if bracketAliases[b] != "" {
			a = append(a, bracketAliases[b])
		}
	}
	return a
}

var (
	nullKey  = bson.RawValue{Type: bson.TypeNull}
	emptyKey = bson.RawValue{Type: bson.TypeArray, Value: []byte{5, 0, 0, 0, 0}}
)

// sortKey returns the value by which the server sorts doc on path.
func sortKey(doc bson.Raw, path string, desc bool) (bson.RawValue, error) {
	v, err := lookupSortPath(doc, path)
	if err != nil || v.Type == 0 || v.Type == bson.TypeNull {
		return nullKey, err
	}
	if v.Type != bson.TypeArray {
		return v, anchorable(v)
	}
	elems, err := v.Array().Values()
	if err != nil {
		return bson.RawValue{}, err
	}
	if len(elems) == 0 {
		return emptyKey, nil
	}
	key := elems[0]
	for i, e := range elems {
		if e.Type != bson.TypeNull {
			if err := anchorable(e); err != nil {
				return bson.RawValue{}, err
			}
		}
		if i == 0 {
			continue
		}
		c, err := compareKeys(e, key)
		if err != nil {
			return bson.RawValue{}, err
		}
		if (desc && c > 0) || (!desc && c < 0) {
			key = e
		}
	}
	if key.Type == bson.TypeNull {
		return nullKey, nil
	}
	return key, nil
}

// lookupSortPath finds a dotted path in doc; the zero RawValue when it is
// missing. A path through an array of documents has many values, which
// this package does not reduce: an error.
func lookupSortPath(doc bson.Raw, path string) (bson.RawValue, error) {
	for {
		seg, rest, more := strings.Cut(path, ".")
		v, err := doc.LookupErr(seg)
		if err != nil || !more {
			return v, nil
		}
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			doc, path = v.Document(), rest
		case bson.TypeArray:
			return bson.RawValue{}, errors.New("the path goes through an array")
		default:
			return bson.RawValue{}, nil // a scalar has no subfields: the path is missing
		}
	}
}

// anchorable reports whether a sort key can be written into a condition.
func anchorable(v bson.RawValue) error {
	switch b := bracketOf(v.Type); {
	case b == bracketOther || b == bracketRegex:
		return fmt.Errorf("a value of BSON type %s cannot anchor a page", v.Type)
	case v.Type == bson.TypeDouble && math.IsNaN(v.Double()):
		return errors.New("NaN cannot anchor a page")
	case v.Type == bson.TypeDecimal128 && v.Decimal128().IsNaN():
		return errors.New("NaN cannot anchor a page")
	}
	return nil
}

// compareKeys orders two elements of one array as the server sorts them.
func compareKeys(a, b bson.RawValue) (int, error) {
	ba, bb := bracketOf(a.Type), bracketOf(b.Type)
	if ba != bb {
		return cmp.Compare(ba, bb), nil
	}
	switch ba {
	case bracketNull:
		return 0, nil
	case bracketNumber:
		return compareNumbers(a, b)
	case bracketString:
		return strings.Compare(a.StringValue(), b.StringValue()), nil
	case bracketBinary:
		sa, da := a.Binary()
		sb, db := b.Binary()
		return cmp.Or(cmp.Compare(len(da), len(db)), cmp.Compare(sa, sb), bytes.Compare(da, db)), nil
	case bracketObjectID:
		x, y := a.ObjectID(), b.ObjectID()
		return bytes.Compare(x[:], y[:]), nil
	case bracketBool:
		x, y := a.Boolean(), b.Boolean()
		return cmp.Compare(boolRank(x), boolRank(y)), nil
	case bracketDate:
		return cmp.Compare(a.DateTime(), b.DateTime()), nil
	case bracketTimestamp:
		ta, ia := a.Timestamp()
		tb, ib := b.Timestamp()
		return cmp.Or(cmp.Compare(ta, tb), cmp.Compare(ia, ib)), nil
	}
	return 0, errors.New("an array holds two values this package cannot order (documents)")
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compareNumbers compares int32, int64 and double values exactly, as the
// server does; decimals among other numbers are left to the server.
func compareNumbers(a, b bson.RawValue) (int, error) {
	if a.Type == bson.TypeDecimal128 || b.Type == bson.TypeDecimal128 {
		return 0, errors.New("an array holds a decimal among other numbers")
	}
	if a.Type != bson.TypeDouble && b.Type != bson.TypeDouble {
		return cmp.Compare(a.AsInt64(), b.AsInt64()), nil
	}
	return exactFloat(a).Cmp(exactFloat(b)), nil
}

func exactFloat(v bson.RawValue) *big.Float {
	if v.Type == bson.TypeDouble {
		return new(big.Float).SetFloat64(v.Double()) // NaN was refused by anchorable
	}
	return new(big.Float).SetInt64(v.AsInt64())
}

// keyset builds the condition for the documents after anchor in sort
// order. For sort [(a,1),(b,-1),(_id,1)] it is
//
//	{$or: [after(a), {$and: [equal(a), after(b)]}, {$and: [equal(a), equal(b), after(_id)]}]}
//
// where after and equal follow the server's sort order rather than $gt
// and $lt alone, which compare within one bracket and match an array by
// any element:
//   - after a value v in ascending order come the documents whose every
//     element sorts after v: some element is greater than v, or of a later
//     bracket, and none is at most v, of an earlier bracket, null, missing
//     or an empty array ($nor of those). Descending order mirrors it.
//   - a document's sort key equals v when an element equals v and none
//     sorts before it (after it, in descending order).
//
// _id is never an array, so its conditions need only the first part.
func keyset(sort bson.D, anchor []bson.RawValue) bson.D {
	var or bson.A
	var equal []bson.D
	for i, e := range sort {
		desc := direction(e.Value) < 0
		scalar := e.Key == "_id"
		if after := afterKey(e.Key, desc, scalar, anchor[i]); after != nil {
			or = append(or, allOf(append(equal[:len(equal):len(equal)], after)...))
		}
		equal = append(equal, equalKey(e.Key, desc, scalar, anchor[i]))
	}
	if len(or) == 0 {
		// Nothing sorts after the anchor; $or refuses an empty list.
		return bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{}}}}}
	}
	return bson.D{{Key: "$or", Value: or}}
}

// afterKey is the condition on field f of the documents that sort after
// a, or nil when none can.
func afterKey(f string, desc, scalar bool, a bson.RawValue) bson.D {
	b := bracketOfKey(a)
	switch {
	case b == bracketEmpty && !desc:
		return bson.D{{Key: f, Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$size", Value: int32(0)}}}}}}
	case b == bracketEmpty:
		return nil
	case b == bracketNull && !desc && scalar:
		return bson.D{{Key: f, Value: bson.D{{Key: "$ne", Value: nil}}}}
	case b == bracketNull && !desc:
		return noneOf(isNull(f), isEmpty(f))
	case b == bracketNull && scalar:
		return nil
	case b == bracketNull:
		return isEmpty(f)
	case !desc:
		some := anyOf(compare(f, "$gt", a), typeIn(f, typesBetween(b, bracketOther)))
		if scalar {
			return some
		}
		return allOf(some, noneOf(compare(f, "$lte", a), typeIn(f, typesBetween(bracketNull, b)), isNull(f), isEmpty(f)))
	case scalar:
		return anyOf(compare(f, "$lt", a), typeIn(f, typesBetween(bracketNull, b)), isNull(f))
	default:
		some := anyOf(compare(f, "$lt", a), typeIn(f, typesBetween(bracketNull, b)), isNull(f), isEmpty(f))
		return allOf(some, noneOf(compare(f, "$gte", a), typeIn(f, typesBetween(b, bracketOther))))
	}
}

// equalKey is the condition on field f of the documents whose sort key
// equals a.
func equalKey(f string, desc, scalar bool, a bson.RawValue) bson.D {
	b := bracketOfKey(a)
	switch {
	case b == bracketEmpty:
		return isEmpty(f)
	case b == bracketNull && (!desc || scalar):
		return isNull(f) // {f: null} matches no empty array
	case b == bracketNull:
		return allOf(isNull(f), noneOf(typeIn(f, typesBetween(bracketNull, bracketOther))))
	case scalar:
		return compare(f, "$eq", a)
	case !desc:
		// Some element is at most a and none is below it: the smallest is
		// a. ($eq would do, but FerretDB matches a document with $eq only
		// as the whole value, never as an element of an array.)
		return allOf(compare(f, "$lte", a), noneOf(compare(f, "$lt", a), typeIn(f, typesBetween(bracketNull, b)), isNull(f), isEmpty(f)))
	default:
		return allOf(compare(f, "$gte", a), noneOf(compare(f, "$gt", a), typeIn(f, typesBetween(b, bracketOther))))
	}
}

func compare(f, op string, v bson.RawValue) bson.D {
	return bson.D{{Key: f, Value: bson.D{{Key: op, Value: v}}}}
}

// isNull matches null, missing, and arrays holding null.
func isNull(f string) bson.D { return bson.D{{Key: f, Value: bson.D{{Key: "$eq", Value: nil}}}} }

func isEmpty(f string) bson.D {
	return bson.D{{Key: f, Value: bson.D{{Key: "$size", Value: int32(0)}}}}
}

// typeIn matches values of the given types and arrays holding one; nil for
// no types.
func typeIn(f string, types bson.A) bson.D {
	if len(types) == 0 {
		return nil
	}
	return bson.D{{Key: f, Value: bson.D{{Key: "$type", Value: types}}}}
}

// anyOf, allOf and noneOf combine conditions, leaving out nil ones.
func anyOf(ds ...bson.D) bson.D  { return logical("$or", ds) }
func allOf(ds ...bson.D) bson.D  { return logical("$and", ds) }
func noneOf(ds ...bson.D) bson.D { return logical("$nor", ds) }

func logical(op string, ds []bson.D) bson.D {
	a := make(bson.A, 0, len(ds))
	for _, d := range ds {
		if d != nil {
			a = append(a, d)
		}
	}
	if len(a) == 1 && op != "$nor" {
		return a[0].(bson.D)
	}
	return bson.D{{Key: op, Value: a}}
}
