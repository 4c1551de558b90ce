package mongohttp

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func marshalRaw(t testing.TB, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// afterToken parses query, builds the token for doc and returns it.
func afterToken(t testing.TB, qp *QueryParser, query string, doc bson.D) string {
	t.Helper()
	q, err := qp.Parse(query)
	if err != nil {
		t.Fatalf("Parse(%q): %v", query, err)
	}
	tok, err := qp.NextToken(q, marshalRaw(t, doc))
	if err != nil {
		t.Fatalf("NextToken: %v", err)
	}
	return tok
}

func TestKeysetRoundTrip(t *testing.T) {
	qp := mustQueryParser(t, Policy{
		Filter: map[string]Type{"a": Int, "b": String},
		Sort:   []string{"a", "b", "p.c"},
	})
	id := queryOID
	tests := []struct {
		name   string
		sort   string
		doc    bson.D
		filter bson.D
	}{
		{
			// The example of the issue, plus the nulls that follow b in
			// descending order.
			"mixed directions", "sort=a,-b",
			qD{{Key: "_id", Value: id}, {Key: "a", Value: int32(5)}, {Key: "b", Value: "x"}},
			qD{{Key: "$or", Value: qA{
				qD{{Key: "a", Value: qD{{Key: "$gt", Value: int32(5)}}}},
				qD{{Key: "a", Value: int32(5)}, {Key: "b", Value: qD{{Key: "$lt", Value: "x"}}}},
				qD{{Key: "a", Value: int32(5)}, {Key: "b", Value: nil}},
				qD{{Key: "a", Value: int32(5)}, {Key: "b", Value: "x"}, {Key: "_id", Value: qD{{Key: "$gt", Value: id}}}},
			}}},
		},
		{
			"default _id sort", "",
			qD{{Key: "_id", Value: id}},
			qD{{Key: "$or", Value: qA{qD{{Key: "_id", Value: qD{{Key: "$gt", Value: id}}}}}}},
		},
		{
			"descending _id", "sort=-_id",
			qD{{Key: "_id", Value: id}},
			qD{{Key: "$or", Value: qA{qD{{Key: "_id", Value: qD{{Key: "$lt", Value: id}}}}}}},
		},
		{
			"missing ascending field is null", "sort=b",
			qD{{Key: "_id", Value: id}},
			qD{{Key: "$or", Value: qA{
				qD{{Key: "b", Value: qD{{Key: "$ne", Value: nil}}}},
				qD{{Key: "b", Value: nil}, {Key: "_id", Value: qD{{Key: "$gt", Value: id}}}},
			}}},
		},
		{
			"null descending field: only ties follow", "sort=-b",
			qD{{Key: "_id", Value: id}, {Key: "b", Value: nil}},
			qD{{Key: "$or", Value: qA{
				qD{{Key: "b", Value: nil}, {Key: "_id", Value: qD{{Key: "$gt", Value: id}}}},
			}}},
		},
		{
			"dotted path", "sort=p.c",
			qD{{Key: "_id", Value: id}, {Key: "p", Value: qD{{Key: "c", Value: int64(7)}}}},
			qD{{Key: "$or", Value: qA{
				qD{{Key: "p.c", Value: qD{{Key: "$gt", Value: int64(7)}}}},
				qD{{Key: "p.c", Value: int64(7)}, {Key: "_id", Value: qD{{Key: "$gt", Value: id}}}},
			}}},
		},
		{
			"dotted path through a scalar is missing", "sort=p.c",
			qD{{Key: "_id", Value: id}, {Key: "p", Value: "flat"}},
			qD{{Key: "$or", Value: qA{
				qD{{Key: "p.c", Value: qD{{Key: "$ne", Value: nil}}}},
				qD{{Key: "p.c", Value: nil}, {Key: "_id", Value: qD{{Key: "$gt", Value: id}}}},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := afterToken(t, qp, tt.sort, tt.doc)
			if strings.ContainsAny(tok, "=+/") || len(tok) > MaxCursorLength {
				t.Errorf("token %q is not unpadded base64url within the cap", tok)
			}
			q, err := qp.Parse(joinQuery(tt.sort, "after="+tok))
			if err != nil {
				t.Fatalf("Parse with after: %v", err)
			}
			sameQueryDoc(t, "Filter", q.Filter, tt.filter)
			sameQueryDoc(t, "CountFilter", q.CountFilter, qD{})
			if q.Skip != 0 {
				t.Errorf("Skip = %d", q.Skip)
			}
		})
	}
}

func joinQuery(a, b string) string {
	if a == "" {
		return b
	}
	return a + "&" + b
}

func TestKeysetIsAndedWithClientFilter(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	doc := qD{{Key: "_id", Value: queryOID}, {Key: "age", Value: int32(40)}}
	tok := afterToken(t, qp, "sort=-age", doc)
	q, err := qp.Parse(`age[gte]=30&sort=-age&filter={"active":true}&after=` + tok)
	if err != nil {
		t.Fatal(err)
	}
	client := []bson.D{
		{{Key: "age", Value: qD{{Key: "$gte", Value: int64(30)}}}},
		{{Key: "active", Value: true}},
	}
	ks := qD{{Key: "$or", Value: qA{
		qD{{Key: "age", Value: qD{{Key: "$lt", Value: int32(40)}}}},
		qD{{Key: "age", Value: nil}},
		qD{{Key: "age", Value: int32(40)}, {Key: "_id", Value: qD{{Key: "$gt", Value: queryOID}}}},
	}}}
	sameQueryDoc(t, "Filter", q.Filter, qD{{Key: "$and", Value: qA{client[0], client[1], ks}}})
	sameQueryDoc(t, "CountFilter", q.CountFilter, qD{{Key: "$and", Value: qA{client[0], client[1]}}})
}

func TestNextTokenErrors(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	q, err := qp.Parse("sort=name")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		doc  bson.Raw
	}{
		{"array sort value", marshalRaw(t, qD{{Key: "_id", Value: queryOID}, {Key: "name", Value: qA{"a"}}})},
		{"no _id", marshalRaw(t, qD{{Key: "name", Value: "a"}})},
		{"token too long", marshalRaw(t, qD{{Key: "_id", Value: queryOID}, {Key: "name", Value: strings.Repeat("n", MaxCursorLength)}})},
		{"malformed document", bson.Raw{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := qp.NextToken(q, tt.doc); err == nil {
				t.Errorf("NextToken = %q, want an error", tok)
			}
		})
	}
	if _, err := qp.NextToken(nil, marshalRaw(t, qD{{Key: "_id", Value: queryOID}})); err == nil {
		t.Error("NextToken(nil query) did not fail")
	}
}

func TestTamperedTokensAreRefused(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	doc := qD{{Key: "_id", Value: queryOID}, {Key: "age", Value: int32(40)}, {Key: "name", Value: "Ada"}}
	tok := afterToken(t, qp, "sort=-age,name", doc)
	raw, err := cursorEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	// Every bit of every byte matters.
	for i := range raw {
		for bit := range 8 {
			b := slices.Clone(raw)
			b[i] ^= 1 << bit
			bad := cursorEncoding.EncodeToString(b)
			if _, err := qp.Parse("sort=-age,name&after=" + bad); !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("byte %d bit %d flipped: err = %v, want invalid_cursor", i, bit, err)
			}
		}
	}
	otherKey := queryTestPolicy()
	otherKey.CursorKey = []byte("another key, at least 16 bytes")
	tests := map[string]string{
		"other sort":               "sort=age,name&after=" + tok,
		"default sort":             "after=" + tok,
		"other key":                "",
		"truncated":                "sort=-age,name&after=" + tok[:len(tok)-4],
		"padded":                   "sort=-age,name&after=" + tok + "==",
		"standard alphabet":        "sort=-age,name&after=" + strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+/",
		"not base64":               "sort=-age,name&after=%21%21%21",
		"empty":                    "sort=-age,name&after=",
		"over the length cap":      "sort=-age,name&after=" + strings.Repeat("A", MaxCursorLength+1),
		"valid base64, no payload": "sort=-age,name&after=AQ",
	}
	for name, query := range tests {
		t.Run(name, func(t *testing.T) {
			p := qp
			if name == "other key" {
				p, query = mustQueryParser(t, otherKey), "sort=-age,name&after="+tok
			}
			if _, err := p.Parse(query); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("err = %v, want invalid_cursor", err)
			}
		})
	}
	// A non-canonical last character (unused low bits set) is refused too,
	// so a token has exactly one spelling.
	if len(tok)%4 != 0 {
		last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok[len(tok)-1])
		alt := tok[:len(tok)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^1])
		if _, err := qp.Parse("sort=-age,name&after=" + alt); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("non-canonical token: err = %v, want invalid_cursor", err)
		}
	}
}

func TestDefaultCursorKeyIsSharedWithinAProcess(t *testing.T) {
	a := mustQueryParser(t, Policy{})
	b := mustQueryParser(t, Policy{})
	tok := afterToken(t, a, "", qD{{Key: "_id", Value: queryOID}})
	if _, err := b.Parse("after=" + tok); err != nil {
		t.Errorf("token of one parser refused by another in the same process: %v", err)
	}
	if len(processKey()) != 32 {
		t.Errorf("default key has %d bytes", len(processKey()))
	}
}

// The keyset walk below pages through documents in memory, evaluating the
// keyset condition with MongoDB's semantics for the operators it uses, and
// checks that the pages concatenate to the whole sorted collection, nulls and
// ties included, and that documents inserted behind the cursor do not shift
// the pages still to come.

type memDoc = bson.D

func memField(d memDoc, k string) any {
	for _, e := range d {
		if e.Key == k {
			return e.Value
		}
	}
	return nil
}

// memTypeRank is the BSON type bracket of the values used here, in MongoDB's
// order: null (and missing) first, then numbers, strings and ObjectIDs.
func memTypeRank(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case int32, int64:
		return 1
	case string:
		return 2
	}
	return 3
}

// compare orders values as MongoDB sorts them.
func memCompare(a, b any) int {
	if r := cmp.Compare(memTypeRank(a), memTypeRank(b)); r != 0 {
		return r
	}
	switch x := a.(type) {
	case int32:
		return cmp.Compare(int64(x), memInt64(b))
	case int64:
		return cmp.Compare(x, memInt64(b))
	case string:
		return cmp.Compare(x, b.(string))
	case bson.ObjectID:
		y := b.(bson.ObjectID)
		return strings.Compare(x.Hex(), y.Hex())
	}
	return 0
}

func memInt64(v any) int64 {
	if x, ok := v.(int32); ok {
		return int64(x)
	}
	return v.(int64)
}

func memMatches(d memDoc, cond bson.D) bool {
	for _, e := range cond {
		switch e.Key {
		case "$or":
			ok := false
			for _, c := range e.Value.(bson.A) {
				ok = ok || memMatches(d, c.(bson.D))
			}
			if !ok {
				return false
			}
			continue
		case "$and":
			for _, c := range e.Value.(bson.A) {
				if !memMatches(d, c.(bson.D)) {
					return false
				}
			}
			continue
		}
		v := memField(d, e.Key)
		if ops, ok := e.Value.(bson.D); ok {
			for _, op := range ops {
				// $gt and $lt compare within one type bracket, never with null.
				sameType := v != nil && op.Value != nil && memTypeRank(v) == memTypeRank(op.Value)
				switch op.Key {
				case "$gt":
					if !sameType || memCompare(v, op.Value) <= 0 {
						return false
					}
				case "$lt":
					if !sameType || memCompare(v, op.Value) >= 0 {
						return false
					}
				case "$ne":
					if memCompare(v, op.Value) == 0 && (v == nil) == (op.Value == nil) {
						return false
					}
				default:
					panic("operator not modelled: " + op.Key)
				}
			}
			continue
		}
		if (v == nil) != (e.Value == nil) || memCompare(v, e.Value) != 0 {
			return false
		}
	}
	return true
}

func TestKeysetWalkCoversEveryDocumentOnce(t *testing.T) {
	qp := mustQueryParser(t, Policy{Sort: []string{"a", "b"}})
	var docs []memDoc
	n := 0
	newID := func() bson.ObjectID {
		n++
		var id bson.ObjectID
		id[10], id[11] = byte(n>>8), byte(n)
		return id
	}
	for i := range 40 {
		d := memDoc{{Key: "_id", Value: newID()}}
		if i%5 != 0 { // some documents have no a at all
			d = append(d, bson.E{Key: "a", Value: int32(i % 3)})
		}
		if i%7 == 0 {
			d = append(d, bson.E{Key: "b", Value: nil})
		} else {
			d = append(d, bson.E{Key: "b", Value: fmt.Sprint("s", i%4)})
		}
		docs = append(docs, d)
	}
	for _, sortSpec := range []string{"a,b", "-a,b", "a,-b", "-a,-b", "-b,a", "b"} {
		t.Run(sortSpec, func(t *testing.T) {
			q, err := qp.Parse("sort=" + sortSpec)
			if err != nil {
				t.Fatal(err)
			}
			order := func(coll []memDoc) []memDoc {
				s := slices.Clone(coll)
				slices.SortStableFunc(s, func(x, y memDoc) int {
					for _, e := range q.Sort {
						if c := memCompare(memField(x, e.Key), memField(y, e.Key)); c != 0 {
							return c * direction(e.Value)
						}
					}
					return 0
				})
				return s
			}
			coll := slices.Clone(docs)
			want := order(coll)
			var got []memDoc
			after := ""
			for page := 0; ; page++ {
				if page > 50 {
					t.Fatal("paging does not end")
				}
				pq, err := qp.Parse(joinQuery("sort="+sortSpec, after))
				if err != nil {
					t.Fatal(err)
				}
				var rest []memDoc
				for _, d := range order(coll) {
					if memMatches(d, pq.Filter) {
						rest = append(rest, d)
					}
				}
				pageDocs := rest[:min(7, len(rest))]
				got = append(got, pageDocs...)
				if len(pageDocs) < 7 {
					break
				}
				tok, err := qp.NextToken(pq, marshalRaw(t, pageDocs[len(pageDocs)-1]))
				if err != nil {
					t.Fatal(err)
				}
				after = "after=" + tok
				// An insert that sorts before the cursor must not shift
				// what comes next.
				coll = append(coll, memDoc{{Key: "_id", Value: newID()}, {Key: "a", Value: int32(-1)}, {Key: "b", Value: "s0"}})
			}
			// Inserted documents sort first under some sorts and last under
			// others; compare the original documents in order.
			var orig []memDoc
			for _, d := range got {
				if a, _ := memField(d, "a").(int32); a != -1 {
					orig = append(orig, d)
				}
			}
			if len(orig) != len(want) {
				t.Fatalf("got %d original documents, want %d", len(orig), len(want))
			}
			for i := range want {
				if memField(orig[i], "_id") != memField(want[i], "_id") {
					t.Fatalf("position %d: got %v, want %v", i, showDoc(orig[i]), showDoc(want[i]))
				}
			}
		})
	}
}
