package mongohttp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// An after token is base64url (no padding) of
//
//	version (1 byte) | BSON {"v": [sort key values…, in sort order]} | MAC (16 bytes)
//
// where MAC is HMAC-SHA256 over a label, the sort spec ("-age,name,_id") and
// the version and BSON bytes, cut to 16 bytes. The sort spec is signed but
// not stored, so a token only works with the sort it was made for, and any
// change to a byte fails the MAC. The values are not encrypted: they are the
// sort fields of a document the client has already seen.
const (
	cursorVersion = 1
	cursorMACLen  = 16
	// MaxCursorLength caps an after token, in characters. NextToken fails
	// when the sort values would not fit (very long strings as sort keys).
	MaxCursorLength = 1024
)

var cursorEncoding = base64.RawURLEncoding.Strict()

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

func (qp *QueryParser) mac(spec string, msg []byte) []byte {
	h := hmac.New(sha256.New, qp.key)
	h.Write([]byte("mongohttp after\x00"))
	h.Write([]byte(spec))
	h.Write([]byte{0})
	h.Write(msg)
	return h.Sum(nil)[:cursorMACLen]
}

// NextToken returns the after token for the page of q whose last document
// is last. It reads each sort field of last (dotted paths included) and _id;
// the Query's projection always includes them. A missing or null sort field
// is recorded as null, and the keyset condition then follows MongoDB's
// order, where null and missing sort before every other value.
//
// Keyset paging needs each sort field to hold one BSON type across the
// collection (plus null or missing): MongoDB's $gt and $lt compare within a
// type, so after a number no string would follow. A sort field holding an
// array is refused with an error, as is a token longer than
// MaxCursorLength; the handler should then give no next link.
func (qp *QueryParser) NextToken(q *Query, last bson.Raw) (string, error) {
	if q == nil || len(q.Sort) == 0 {
		return "", errors.New("mongohttp: NextToken needs a query with a sort")
	}
	if err := last.Validate(); err != nil {
		return "", fmt.Errorf("mongohttp: NextToken: invalid document: %w", err)
	}
	vals := make(bson.A, len(q.Sort))
	for i, e := range q.Sort {
		v, err := lookupPath(last, e.Key)
		if err != nil {
			return "", err
		}
		if v == nil && e.Key == "_id" {
			return "", errors.New("mongohttp: NextToken: the document has no _id")
		}
		vals[i] = v
	}
	payload, err := bson.Marshal(bson.D{{Key: "v", Value: vals}})
	if err != nil {
		return "", fmt.Errorf("mongohttp: NextToken: %w", err)
	}
	msg := make([]byte, 0, 1+len(payload)+cursorMACLen)
	msg = append(msg, cursorVersion)
	msg = append(msg, payload...)
	msg = append(msg, qp.mac(sortSpec(q.Sort), msg)...)
	tok := cursorEncoding.EncodeToString(msg)
	if len(tok) > MaxCursorLength {
		return "", fmt.Errorf("mongohttp: NextToken: the sort values need a %d-character token; the maximum is %d", len(tok), MaxCursorLength)
	}
	return tok, nil
}

// lookupPath finds a dotted path in doc. It returns nil when the path is
// missing or null (both sort as null), the raw value otherwise.
func lookupPath(doc bson.Raw, path string) (any, error) {
	cur := doc
	for {
		seg, rest, more := strings.Cut(path, ".")
		v, err := cur.LookupErr(seg)
		if err != nil {
			return nil, nil
		}
		switch v.Type {
		case bson.TypeArray:
			return nil, fmt.Errorf("mongohttp: NextToken: sort field %q reaches an array; keyset paging needs single values", path)
		case bson.TypeNull, bson.TypeUndefined:
			return nil, nil
		case bson.TypeEmbeddedDocument:
			if more {
				cur, path = v.Document(), rest
				continue
			}
		default:
			if more {
				return nil, nil // a scalar has no subfields: the path is missing
			}
		}
		return v, nil
	}
}

// keysetCondition checks an after token against sort and returns the
// condition selecting the documents after it.
func (qp *QueryParser) keysetCondition(token string, sort bson.D) (bson.D, error) {
	invalid := ErrInvalidCursor.Detailf("the after token is not valid for this query: it is damaged, was made for another sort, or the service's cursor key changed; start again from the first page")
	if token == "" || len(token) > MaxCursorLength {
		return nil, invalid
	}
	b, err := cursorEncoding.DecodeString(token)
	if err != nil || len(b) < 1+5+cursorMACLen || b[0] != cursorVersion {
		return nil, invalid
	}
	msg, sum := b[:len(b)-cursorMACLen], b[len(b)-cursorMACLen:]
	if !hmac.Equal(sum, qp.mac(sortSpec(sort), msg)) {
		return nil, invalid
	}
	var d bson.D
	if err := bson.Unmarshal(msg[1:], &d); err != nil || len(d) != 1 || d[0].Key != "v" {
		return nil, invalid
	}
	vals, ok := d[0].Value.(bson.A)
	if !ok || len(vals) != len(sort) {
		return nil, invalid
	}
	return keyset(sort, vals), nil
}

// keyset builds the condition for the documents after vals in sort order:
// for sort [(a,1),(b,-1),(_id,1)] it is
//
//	{$or: [{a: {$gt: va}}, {a: va, b: {$lt: vb}}, {a: va, b: vb, _id: {$gt: id}}]}
//
// Null (which also stands for missing) sorts first, so after a null in
// ascending order comes {$ne: null}, and in descending order nothing; after
// a value in descending order come the nulls as well as the smaller values.
func keyset(sort bson.D, vals bson.A) bson.D {
	var or bson.A
	clause := func(i int, last bson.E) bson.D {
		c := make(bson.D, 0, i+1)
		for j := 0; j < i; j++ {
			c = append(c, bson.E{Key: sort[j].Key, Value: vals[j]})
		}
		return append(c, last)
	}
	for i, e := range sort {
		desc := direction(e.Value) < 0
		switch v := vals[i]; {
		case v == nil && desc:
			// Nothing sorts after null in descending order.
		case v == nil:
			or = append(or, clause(i, bson.E{Key: e.Key, Value: bson.D{{Key: "$ne", Value: nil}}}))
		case desc:
			or = append(or, clause(i, bson.E{Key: e.Key, Value: bson.D{{Key: "$lt", Value: v}}}))
			if e.Key != "_id" { // every document has an _id
				or = append(or, clause(i, bson.E{Key: e.Key, Value: nil}))
			}
		default:
			or = append(or, clause(i, bson.E{Key: e.Key, Value: bson.D{{Key: "$gt", Value: v}}}))
		}
	}
	return bson.D{{Key: "$or", Value: or}}
}
