package mongohttp

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The walks that prove the keyset conditions right run against the real
// server (integration/paging_test.go); these tests cover the tokens.

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
	tok, err := qp.nextToken(q, marshalRaw(t, doc))
	if err != nil {
		t.Fatalf("nextToken: %v", err)
	}
	return tok
}

func joinQuery(a, b string) string {
	if a == "" {
		return b
	}
	return a + "&" + b
}

// tokenAnchor parses query with an after token for doc and returns the
// anchor the token carried, as extended JSON.
func tokenAnchor(t *testing.T, qp *QueryParser, query string, doc bson.D) []string {
	t.Helper()
	tok := afterToken(t, qp, query, doc)
	q, err := qp.Parse(joinQuery(query, "after="+tok))
	if err != nil {
		t.Fatalf("Parse with its own token: %v", err)
	}
	var out []string
	for _, v := range q.anchor {
		out = append(out, v.String())
	}
	return out
}

func TestNextTokenAnchorsTheServersSortKey(t *testing.T) {
	qp := mustQueryParser(t, Policy{Sort: []string{"a", "p.c"}})
	id := queryOID
	date := queryMay1Noon
	tests := []struct {
		name  string
		query string
		a     any // the value of a; nothing when nil
		want  string
	}{
		{"number", "sort=a", int32(5), `{"$numberInt":"5"}`},
		{"missing", "sort=a", nil, `null`},
		{"null", "sort=a", bson.Null{}, `null`},
		{"empty array", "sort=a", bson.A{}, `[]`},
		{"array holding null", "sort=a", bson.A{nil, int32(8)}, `null`},
		{"array holding null, descending", "sort=-a", bson.A{nil, int32(8)}, `{"$numberInt":"8"}`},
		{"smallest element", "sort=a", bson.A{int32(3), 2.5, int64(10)}, `{"$numberDouble":"2.5"}`},
		{"largest element", "sort=-a", bson.A{int32(3), 2.5, int64(10)}, `{"$numberLong":"10"}`},
		{"smallest across types", "sort=a", bson.A{"b", int32(7), date}, `{"$numberInt":"7"}`},
		{"largest across types", "sort=-a", bson.A{"b", int32(7), date}, date2JSON(date)},
		{"int64 beyond doubles", "sort=-a", bson.A{float64(1 << 53), int64(1<<53 + 1)}, `{"$numberLong":"9007199254740993"}`},
		{"strings by bytes", "sort=a", bson.A{"b", "B", "é"}, `"B"`},
		{"binaries by length first", "sort=a", bson.A{bson.Binary{Data: []byte{0, 0}}, bson.Binary{Data: []byte{9}}}, `{"$binary":{"base64":"CQ==","subType":"00"}}`},
		{"booleans", "sort=-a", bson.A{false, true}, `true`},
		{"timestamps", "sort=a", bson.A{bson.Timestamp{T: 2, I: 1}, bson.Timestamp{T: 1, I: 9}}, `{"$timestamp":{"t":1,"i":9}}`},
		{"one document", "sort=a", bson.A{bson.D{{Key: "x", Value: int32(1)}}, int32(1)}, `{"$numberInt":"1"}`},
		{"document", "sort=a", bson.D{{Key: "x", Value: int32(1)}}, `{"x":{"$numberInt":"1"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := qD{{Key: "_id", Value: id}}
			if tt.a != nil {
				doc = append(doc, bson.E{Key: "a", Value: tt.a})
			}
			got := tokenAnchor(t, qp, tt.query, doc)
			if len(got) != 2 || strings.ReplaceAll(got[0], " ", "") != tt.want {
				t.Errorf("anchor %v, want [%s, _id]", got, tt.want)
			}
		})
	}
	// Dotted paths: through documents, a scalar on the way is missing.
	for doc, want := range map[string]bson.D{
		`{"$numberLong":"7"}`: {{Key: "_id", Value: id}, {Key: "p", Value: qD{{Key: "c", Value: int64(7)}}}},
		`null`:                {{Key: "_id", Value: id}, {Key: "p", Value: "flat"}},
	} {
		if got := tokenAnchor(t, qp, "sort=p.c", want); got[0] != doc {
			t.Errorf("p.c of %s: anchor %s, want %s", showDoc(want), got[0], doc)
		}
	}
}

func date2JSON(d bson.DateTime) string {
	raw, _ := bson.Marshal(qD{{Key: "v", Value: d}})
	return bson.Raw(raw).Lookup("v").String()
}

func TestNextTokenRefusesWhatCannotAnchor(t *testing.T) {
	qp := mustQueryParser(t, Policy{Sort: []string{"name", "p.c"}})
	q, err := qp.Parse("sort=name")
	if err != nil {
		t.Fatal(err)
	}
	withName := func(v any) bson.Raw { return marshalRaw(t, qD{{Key: "_id", Value: queryOID}, {Key: "name", Value: v}}) }
	tests := []struct {
		name string
		doc  bson.Raw
	}{
		{"regular expression", withName(bson.Regex{Pattern: "a"})},
		{"regular expression in an array", withName(bson.A{int32(1), bson.Regex{Pattern: "a"}})},
		{"MinKey", withName(bson.MinKey{})},
		{"MaxKey", withName(bson.MaxKey{})},
		{"undefined", withName(bson.Undefined{})},
		{"symbol", withName(bson.Symbol("s"))},
		{"JavaScript", withName(bson.JavaScript("1"))},
		{"code with scope", withName(bson.CodeWithScope{Code: "1", Scope: qD{}})},
		{"DBPointer", withName(bson.DBPointer{DB: "a", Pointer: queryOID})},
		{"nested array", withName(bson.A{bson.A{int32(1)}})},
		{"NaN", withName(math.NaN())},
		{"NaN in an array", withName(bson.A{int32(1), math.NaN()})},
		{"decimal NaN", withName(bson.NewDecimal128(0x7c00000000000000, 0))},
		{"two documents in an array", withName(bson.A{qD{{Key: "x", Value: 1}}, qD{{Key: "y", Value: 1}}})},
		{"decimal among numbers", withName(bson.A{int32(1), bson.NewDecimal128(0x3040000000000000, 2)})},
		{"no _id", marshalRaw(t, qD{{Key: "name", Value: "a"}})},
		{"token too long", withName(strings.Repeat("n", MaxCursorLength))},
		{"malformed document", bson.Raw{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := qp.nextToken(q, tt.doc); err == nil {
				t.Errorf("nextToken = %q, want an error", tok)
			}
		})
	}
	pc, err := qp.Parse("sort=p.c")
	if err != nil {
		t.Fatal(err)
	}
	through := marshalRaw(t, qD{{Key: "_id", Value: queryOID}, {Key: "p", Value: qA{qD{{Key: "c", Value: int32(1)}}}}})
	if tok, err := qp.nextToken(pc, through); err == nil {
		t.Errorf("a path through an array of documents made token %q", tok)
	}
	if _, err := qp.nextToken(nil, withName("a")); err == nil {
		t.Error("nextToken(nil query) did not fail")
	}
	// A key just under the cap makes a token that leaves room for an offset.
	tok, err := qp.nextToken(q, withName(strings.Repeat("n", 600)))
	if err != nil || len(tok) > MaxCursorLength-32 {
		t.Errorf("token of %d characters, %v", len(tok), err)
	}
}

// TestKeysetConditionOfAScalarField shows the condition for one common
// case; the integration tests check what such conditions select.
func TestKeysetConditionOfAScalarField(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	tok := afterToken(t, qp, "sort=-age&age[gte]=30", qD{{Key: "_id", Value: queryOID}, {Key: "age", Value: int32(40)}})
	q, err := qp.Parse("sort=-age&age[gte]=30&after=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	client := qD{{Key: "age", Value: qD{{Key: "$gte", Value: int64(30)}}}}
	types := qA{"number", "string", "object", "binData", "objectId", "bool", "date", "timestamp", "regex"}
	below := qD{{Key: "$or", Value: qA{
		qD{{Key: "age", Value: qD{{Key: "$lt", Value: int32(40)}}}},
		qD{{Key: "age", Value: qD{{Key: "$eq", Value: nil}}}},
		qD{{Key: "age", Value: qD{{Key: "$size", Value: int32(0)}}}},
	}}}
	notAbove := qD{{Key: "$nor", Value: qA{
		qD{{Key: "age", Value: qD{{Key: "$gte", Value: int32(40)}}}},
		qD{{Key: "age", Value: qD{{Key: "$type", Value: types[1:]}}}},
	}}}
	equal := qD{{Key: "$and", Value: qA{
		qD{{Key: "age", Value: qD{{Key: "$gte", Value: int32(40)}}}},
		qD{{Key: "$nor", Value: qA{
			qD{{Key: "age", Value: qD{{Key: "$gt", Value: int32(40)}}}},
			qD{{Key: "age", Value: qD{{Key: "$type", Value: types[1:]}}}},
		}}},
	}}}
	afterID := qD{{Key: "$or", Value: qA{
		qD{{Key: "_id", Value: qD{{Key: "$gt", Value: queryOID}}}},
		qD{{Key: "_id", Value: qD{{Key: "$type", Value: qA{"bool", "date", "timestamp", "regex"}}}}},
	}}}
	ks := qD{{Key: "$or", Value: qA{
		qD{{Key: "$and", Value: qA{below, notAbove}}},
		qD{{Key: "$and", Value: qA{equal, afterID}}},
	}}}
	sameQueryDoc(t, "Filter", q.Filter, qD{{Key: "$and", Value: qA{client, ks}}})
	sameQueryDoc(t, "CountFilter", q.CountFilter, client)
	if q.Skip != 0 {
		t.Errorf("Skip = %d", q.Skip)
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

// TestTokensAreBoundToTheirQuery: a token works only with the scope, sort
// and client filter it was made for.
func TestTokensAreBoundToTheirQuery(t *testing.T) {
	posts := mustQueryParser(t, queryTestPolicy())
	posts.scope = "app.posts"
	users := mustQueryParser(t, queryTestPolicy())
	users.scope = "app.users"
	doc := qD{{Key: "_id", Value: queryOID}, {Key: "age", Value: int32(40)}}
	const made = "sort=-age&age[gte]=30&name=Ada"
	tok := afterToken(t, posts, made, doc)
	if _, err := posts.Parse(made + "&limit=5&count=exact&after=" + tok); err != nil {
		t.Fatalf("the token's own query, with another limit and a count: %v", err)
	}
	// The parsed filter is bound, not its spelling.
	if _, err := posts.Parse(`sort=-age&filter={"age":{"$gte":30},"name":"Ada"}&after=` + tok); err != nil {
		t.Fatalf("the same filter written as JSON: %v", err)
	}
	tests := []struct {
		name  string
		qp    *QueryParser
		query string
	}{
		{"another collection", users, made},
		{"another sort", posts, "sort=age&age[gte]=30&name=Ada"},
		{"another filter value", posts, "sort=-age&age[gte]=31&name=Ada"},
		{"a filter left out", posts, "sort=-age&age[gte]=30"},
		{"a filter added", posts, made + "&email=x"},
		{"the filters reordered", posts, "sort=-age&name=Ada&age[gte]=30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.qp.Parse(tt.query + "&after=" + tok); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("err = %v, want invalid_cursor", err)
			}
		})
	}
}

// TestTokensAreBoundToTheirScope: a token made under one BaseFilter result
// is refused under another, and without one, and the reverse.
func TestTokensAreBoundToTheirScope(t *testing.T) {
	qp := mustQueryParser(t, queryTestPolicy())
	doc := qD{{Key: "_id", Value: queryOID}, {Key: "age", Value: int32(40)}}
	const made = "sort=-age&age[gte]=30"
	scopeA := bson.D{{Key: "author_id", Value: queryOID}}
	scopeB := bson.D{{Key: "author_id", Value: bson.NewObjectID()}}
	tokenUnder := func(base bson.D) string {
		q, err := qp.parse(made)
		if err != nil {
			t.Fatal(err)
		}
		if err := qp.bind(q, base); err != nil {
			t.Fatal(err)
		}
		tok, err := qp.nextToken(q, marshalRaw(t, doc))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	bindAfter := func(tok string, base bson.D) error {
		q, err := qp.parse(made + "&after=" + tok)
		if err != nil {
			return err
		}
		return qp.bind(q, base)
	}
	scopes := []struct {
		name string
		base bson.D
	}{{"none", nil}, {"A", scopeA}, {"B", scopeB}, {"A and more", append(bson.D{{Key: "x", Value: 1}}, scopeA...)}}
	for _, made := range scopes {
		tok := tokenUnder(made.base)
		for _, used := range scopes {
			err := bindAfter(tok, used.base)
			if used.name == made.name {
				if err != nil {
					t.Errorf("a token of scope %s in its own scope: %v", made.name, err)
				}
			} else if !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("a token of scope %s under scope %s: %v, want invalid_cursor", made.name, used.name, err)
			}
		}
	}
	// An empty scope is no scope.
	if err := bindAfter(tokenUnder(nil), bson.D{}); err != nil {
		t.Errorf("an empty BaseFilter result: %v", err)
	}
}

func TestOffsetTokens(t *testing.T) {
	p := queryTestPolicy()
	p.MaxSkip = 50
	qp := mustQueryParser(t, p)
	first, err := qp.Parse("sort=name&name[gte]=B&skip=5")
	if err != nil {
		t.Fatal(err)
	}
	digest, err := filterDigest(first)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := qp.offsetToken(first, digest, 20)
	if err != nil {
		t.Fatal(err)
	}
	q, err := qp.Parse("sort=name&name[gte]=B&after=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	// Without an anchor, the next page is the same query further on.
	if q.Skip != 25 || q.anchor != nil {
		t.Errorf("Skip %d, anchor %v; want 25 past no anchor", q.Skip, q.anchor)
	}
	sameQueryDoc(t, "Filter", q.Filter, first.Filter)

	// With an anchor, it counts on from the anchor.
	key := afterToken(t, qp, "sort=name&name[gte]=B", qD{{Key: "_id", Value: queryOID}, {Key: "name", Value: "Bo"}})
	anchored, err := qp.Parse("sort=name&name[gte]=B&after=" + key)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err = qp.offsetToken(anchored, digest, 30); err != nil {
		t.Fatal(err)
	}
	q, err = qp.Parse("sort=name&name[gte]=B&after=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	if q.Skip != 30 || len(q.anchor) != 2 {
		t.Errorf("Skip %d, anchor %v; want 30 past the anchor", q.Skip, q.anchor)
	}
	sameQueryDoc(t, "Filter", q.Filter, anchored.Filter)
	if _, err := qp.Parse("sort=name&after=" + tok); !errors.Is(err, ErrInvalidCursor) {
		t.Errorf("an offset token with another filter: %v, want invalid_cursor", err)
	}
	// The server walks the offset, so it is bounded like ?skip=.
	if tok, err := qp.offsetToken(q, digest, 21); err == nil {
		t.Errorf("an offset of 51 past MaxSkip 50 made token %q", tok)
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
