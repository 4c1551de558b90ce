package mongohttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A reference token continues after a document whose sort values are too
// long for a token (a 700-byte name): instead of the values it names the
// document by _id with a digest of its sort key ("r"). Find reads the
// document again and, when its sort key still has that digest, pages after
// it exactly as after a keyset token: every document once, however many
// share a long prefix, with no offset to walk.
//
// A document may move between two pages (a write changes its sort key, or
// deletes it). So the token names the page's last few documents, last
// first, and the page after it starts after the latest of them that has
// not moved: a document or two may come again, none is left out. When all
// have moved, the page starts at the first document whose sort key begins
// with what the token could hold of the last one's ("v", its last value cut
// to a prefix when "p" is set).

// maxRefs is how many documents a reference token names.
const maxRefs = 3

// maxRefID bounds the encoded _id a reference token holds; documents with
// longer ids cannot anchor one.
const maxRefID = 160

// maxRefPayload is the payload of a reference token that fits in
// maxKeysetLength characters with its version byte and MAC.
const maxRefPayload = maxKeysetLength*3/4 - 1 - cursorMACLen

// anchorRef is what a reference token holds.
type anchorRef struct {
	refs   []tokenRef
	group  []bson.RawValue // a prefix of the sort key; its last value cut when prefix
	prefix bool
}

// sortKeyDigest identifies a sort key, for a reference token.
func sortKeyDigest(anchor []bson.RawValue) ([]byte, error) {
	b, err := bson.Marshal(tokenPayload{V: anchor})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:16], nil
}

// sortAnchor reads the sort key of doc for q's sort, as NextToken does.
func sortAnchor(q *Query, doc bson.Raw) ([]bson.RawValue, error) {
	anchor := make([]bson.RawValue, len(q.Sort))
	for i, e := range q.Sort {
		v, err := sortKey(doc, e.Key, direction(e.Value) < 0)
		if err != nil {
			return nil, fmt.Errorf("sort field %q: %w", e.Key, err)
		}
		if e.Key == "_id" && v.Type == bson.TypeNull {
			return nil, errors.New("the document has no _id")
		}
		anchor[i] = v
	}
	return anchor, nil
}

// refToken returns a reference token for the documents after docs, the
// last ones served (the last one last), whose sort key is too long for a
// keyset token.
func (qp *QueryParser) refToken(q *Query, digest []byte, docs []bson.Raw) (string, error) {
	var p tokenPayload
	var anchor []bson.RawValue
	for i := len(docs) - 1; i >= 0 && len(p.R) < maxRefs; i-- {
		r, a, err := docRef(q, docs[i])
		if err != nil {
			if len(p.R) == 0 {
				return "", err
			}
			break
		}
		if anchor == nil {
			anchor = a
		}
		p.R = append(p.R, r)
	}
	// The group: whole values while they fit, then a prefix of the first
	// string that does not.
	for _, v := range anchor {
		p.V = append(p.V, v)
		if payloadSize(p) <= maxRefPayload {
			continue
		}
		p.V = p.V[:len(p.V)-1]
		if v.Type == bson.TypeString {
			room := maxRefPayload - payloadSize(tokenPayload{R: p.R, V: append(p.V, bson.RawValue{Type: bson.TypeString, Value: stringValue("")}), P: true})
			if pre := cutString(v.StringValue(), room); pre != "" {
				p.V, p.P = append(p.V, bson.RawValue{Type: bson.TypeString, Value: stringValue(pre)}), true
			}
		}
		break
	}
	tok, err := qp.sign(q, digest, p)
	if err != nil {
		return "", err
	}
	if len(tok) > maxKeysetLength {
		return "", fmt.Errorf("the reference token needs %d characters; the maximum is %d", len(tok), maxKeysetLength)
	}
	return tok, nil
}

// docRef names doc for a reference token, and returns its sort key.
func docRef(q *Query, doc bson.Raw) (tokenRef, []bson.RawValue, error) {
	if err := doc.Validate(); err != nil {
		return tokenRef{}, nil, err
	}
	anchor, err := sortAnchor(q, doc)
	if err != nil {
		return tokenRef{}, nil, err
	}
	id, err := doc.LookupErr("_id")
	if err != nil {
		return tokenRef{}, nil, errors.New("the document has no _id")
	}
	if len(id.Value) > maxRefID {
		return tokenRef{}, nil, fmt.Errorf("the document's _id takes %d bytes; a reference token holds at most %d", len(id.Value), maxRefID)
	}
	sum, err := sortKeyDigest(anchor)
	if err != nil {
		return tokenRef{}, nil, err
	}
	return tokenRef{I: id, H: sum}, anchor, nil
}

func payloadSize(p tokenPayload) int {
	b, err := bson.Marshal(p)
	if err != nil {
		return maxRefPayload + 1
	}
	return len(b)
}

// stringValue is the BSON of a string value.
func stringValue(s string) []byte {
	_, b, _ := bson.MarshalValue(s)
	return b
}

// cutString returns the longest prefix of s of at most n bytes that ends
// at a character's end; "" when s is not valid UTF-8 there, whose prefix
// would have no successor to bound it (see groupStart).
func cutString(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) > n {
		s = s[:n]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	if !utf8.ValidString(s) {
		return ""
	}
	return s
}

// successor returns the smallest string greater than every string that
// starts with s, if one exists: s with its last character replaced by the
// next one (UTF-8 orders bytes as it orders characters).
func successor(s string) (string, bool) {
	for s != "" {
		r, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
		switch {
		case r == utf8.MaxRune:
			continue
		case r+1 == 0xD800: // the surrogates are no characters
			r = 0xE000
		default:
			r++
		}
		return s + string(r), true
	}
	return "", false
}

// groupStart is the condition on the documents at or after the first one
// whose sort key begins with group (its last value a prefix when prefix
// is set), in sort order; nil for an empty group (every document).
func groupStart(sort bson.D, group []bson.RawValue, prefix bool) bson.D {
	m := len(group)
	if m == 0 {
		return nil
	}
	if prefix && direction(sort[m-1].Value) < 0 {
		// In descending order the strings starting with the prefix come
		// before it, after its successor: the group starts after that.
		next, ok := successor(group[m-1].StringValue())
		if !ok {
			return groupStart(sort, group[:m-1], false)
		}
		at := append(group[:m-1:m-1], bson.RawValue{Type: bson.TypeString, Value: stringValue(next)})
		return keyset(sort[:m], at)
	}
	// In ascending order (and for whole values) the group starts at the
	// values themselves: after them, or equal.
	after := keyset(sort[:m], group)
	equal := make([]bson.D, m)
	for i, e := range sort[:m] {
		equal[i] = equalKey(e.Key, direction(e.Value) < 0, e.Key == "_id", group[i])
	}
	all := allOf(equal...)
	if or, ok := after[0].Value.(bson.A); ok && after[0].Key == "$or" {
		return bson.D{{Key: "$or", Value: append(or, all)}}
	}
	return all // nothing sorts after the group's values
}

// resolveRef reads the documents a reference token names and turns q into
// the query of the documents after the latest of them whose sort key is
// the one the token was made from. When all have moved, q keeps the
// group's condition.
func (h *findHandler[T]) resolveRef(ctx context.Context, q *Query, base bson.D) error {
	ids := make(bson.A, len(q.ref.refs))
	for i, r := range q.ref.refs {
		ids[i] = r.I
	}
	cur, err := h.coll.Find(ctx, and(base, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}))
	if err != nil {
		return err
	}
	defer closeInBackground(ctx, cur)
	best := len(q.ref.refs)
	var anchor []bson.RawValue
	for cur.Next(ctx) {
		a, err := sortAnchor(q, cur.Current)
		if err != nil {
			continue
		}
		sum, err := sortKeyDigest(a)
		if err != nil {
			continue
		}
		for i, r := range q.ref.refs[:best] {
			if bytes.Equal(sum, r.H) && bytes.Equal(cur.Current.Lookup("_id").Value, r.I.Value) {
				best, anchor = i, a
				break
			}
		}
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if anchor != nil {
		q.anchor = anchor
		q.Filter = combine(nonEmpty(q.CountFilter, keyset(q.Sort, anchor)))
	}
	return nil
}

// nonEmpty leaves out the empty documents of ds.
func nonEmpty(ds ...bson.D) []bson.D {
	out := ds[:0]
	for _, d := range ds {
		if len(d) > 0 {
			out = append(out, d)
		}
	}
	return out
}
